"""save_checkpoint / load_checkpoint / load_param_into_net: MindSpore 2.10's API and meanings."""
from collections import OrderedDict

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import msjax
from msjax.common.tensor import Parameter, Tensor
from msjax.errors import ParameterLoadError
from msjax.nn.cell import Cell


class Dense(Cell):
    def __init__(self, n_in, n_out, seed=0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.weight = Parameter(rng.standard_normal((n_out, n_in)).astype(np.float32))
        self.bias = Parameter(np.zeros(n_out, np.float32))


class Net(Cell):
    def __init__(self, seed=0):
        super().__init__()
        self.fc1 = Dense(4, 3, seed)
        self.fc2 = Dense(3, 2, seed + 1)


class Wrapped(Cell):
    def __init__(self, seed=0):
        super().__init__()
        self.backbone = Net(seed)


class MomentumLike(Cell):
    """A Cell holding the parameter names nn.Momentum uses (resnet50_momentum_params.txt)."""

    def __init__(self, net):
        super().__init__()
        self.learning_rate = Parameter(np.array(0.0, np.float32))
        self.momentum = Parameter(np.array(0.0, np.float32))
        self.global_step = Parameter(np.zeros(1, np.int32))
        for name, p in net.parameters_and_names():
            self.insert_param_to_cell("m_" + name.replace(".", "_"),
                                      Parameter(np.zeros(p.shape, np.float32), name="moments." + p.name))


def _values(d):
    return {k: (v if isinstance(v, str) else np.asarray(v)) for k, v in d.items()}


def test_cell_save_order_and_round_trip(tmp_path):
    net = Net()
    path = str(tmp_path / "net.ckpt")
    assert msjax.save_checkpoint(net, path) is None
    loaded = msjax.load_checkpoint(path)
    assert list(loaded) == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert isinstance(loaded, OrderedDict) and all(isinstance(v, Parameter) for v in loaded.values())
    other = Net(seed=5)
    assert msjax.load_param_into_net(other, loaded) == ([], [])
    for (_, a), (_, b) in zip(net.parameters_and_names(), other.parameters_and_names()):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_every_save_obj_kind(tmp_path):
    net = Net()
    w = np.ones((2, 2), np.float32)
    kinds = {
        "list_params": ([p for _, p in net.parameters_and_names()], list(net.parameters_dict())),
        "list_dicts": ([{"name": "epoch_size", "data": Tensor(np.array(10, np.int32))},
                        {"name": "learning_rate", "data": Tensor(np.array(0.01, np.float32))}],
                       ["epoch_size", "learning_rate"]),
        "dict": ({"a": Parameter(w), "b": Tensor(w), "c": jnp.ones(3), "d": w, "e": "text"},
                 ["a", "b", "c", "d", "e"]),
    }
    for kind, (obj, names) in kinds.items():
        path = str(tmp_path / f"{kind}.ckpt")
        msjax.save_checkpoint(obj, path)
        assert list(msjax.load_checkpoint(path)) == names, kind
    hp = msjax.load_checkpoint(str(tmp_path / "list_dicts.ckpt"))
    assert int(hp["epoch_size"].asnumpy()) == 10 and hp["epoch_size"].asnumpy().dtype == np.int32
    assert msjax.load_checkpoint(str(tmp_path / "dict.ckpt"))["e"] == "text"
    with pytest.raises(TypeError):
        msjax.save_checkpoint(42, str(tmp_path / "x.ckpt"))
    with pytest.raises(TypeError):
        msjax.save_checkpoint([{"name": 1, "data": w}], str(tmp_path / "x.ckpt"))


def test_file_name_gets_the_format_suffix(tmp_path):
    msjax.save_checkpoint({"a": np.ones(1, np.float32)}, str(tmp_path / "noext"))
    assert (tmp_path / "noext.ckpt").exists()


def test_append_dict_types_and_position(tmp_path):
    path = str(tmp_path / "a.ckpt")
    msjax.save_checkpoint(Net(), path, append_dict={"epoch_num": 3, "lr": 0.01, "tag": "hello", "flag": True,
                                                    "t": Tensor(np.ones(2, np.float16))})
    d = msjax.load_checkpoint(path)
    assert list(d)[4:] == ["epoch_num", "lr", "tag", "flag", "t"]
    assert d["epoch_num"].asnumpy().dtype == np.int64 and d["lr"].asnumpy().dtype == np.float32
    assert d["flag"].asnumpy().dtype == np.bool_ and d["tag"] == "hello"
    for bad in (None, [1], np.float32(1)):
        with pytest.raises(TypeError):
            msjax.save_checkpoint(Net(), path, append_dict={"x": bad})


def test_choice_func_and_prefix_filters(tmp_path):
    path = str(tmp_path / "n.ckpt")
    msjax.save_checkpoint(Net(), path, choice_func=lambda n: n.startswith("fc1"))
    assert list(msjax.load_checkpoint(path)) == ["fc1.weight", "fc1.bias"]
    msjax.save_checkpoint(Net(), path)
    assert list(msjax.load_checkpoint(path, filter_prefix="fc1")) == ["fc2.weight", "fc2.bias"]
    assert list(msjax.load_checkpoint(path, filter_prefix=("fc1", "fc2.b"))) == ["fc2.weight"]
    assert list(msjax.load_checkpoint(path, specify_prefix=["fc2", "fc1.b"])) == ["fc1.bias", "fc2.weight", "fc2.bias"]
    # the prefixes win over choice_func, as in MindSpore
    assert list(msjax.load_checkpoint(path, specify_prefix="fc2.w", choice_func=lambda n: False)) == ["fc2.weight"]
    assert list(msjax.load_checkpoint(path, choice_func=lambda n: n.endswith("bias"))) == ["fc1.bias", "fc2.bias"]
    with pytest.raises(ValueError, match="empty"):
        msjax.load_checkpoint(path, specify_prefix="nothing")
    for bad in ([], [""], 3, ["ok", 3]):
        with pytest.raises((TypeError, ValueError)):
            msjax.load_checkpoint(path, filter_prefix=bad)


def test_edit_and_resave_flow(tmp_path):
    """MindSpore docs: load, delete/add/modify entries, save the dict, load it back."""
    path = str(tmp_path / "n.ckpt")
    msjax.save_checkpoint(Net(), path)
    d = msjax.load_checkpoint(path)
    del d["fc2.bias"]
    d["extra"] = Parameter(np.full(2, 7, np.float32), name="extra")
    d["fc1.bias"] = Parameter(np.ones(3, np.float32), name="fc1.bias")
    msjax.save_checkpoint(d, path)
    d2 = msjax.load_checkpoint(path)
    assert list(d2) == ["fc1.weight", "fc1.bias", "fc2.weight", "extra"]
    np.testing.assert_array_equal(d2["fc1.bias"].asnumpy(), np.ones(3, np.float32))
    np.testing.assert_array_equal(d2["extra"].asnumpy(), np.full(2, 7, np.float32))


def test_load_with_net_and_prefix_matching(tmp_path):
    path = str(tmp_path / "w.ckpt")
    wrapped = Wrapped(seed=3)
    msjax.save_checkpoint(wrapped, path)            # names "backbone.fc1.weight", ...
    net = Net(seed=9)
    d = msjax.load_checkpoint(path, net=net)        # non-strict: the "backbone." prefix is found
    np.testing.assert_array_equal(net.fc1.weight.get_value(), wrapped.backbone.fc1.weight.get_value())
    not_loaded, unused = msjax.load_param_into_net(Net(), d, strict_load=True)
    assert not_loaded == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"] and len(unused) == 4


def test_ambiguous_suffix_match_is_an_error_naming_both():
    d = {"a.fc1.weight": Parameter(np.ones((3, 4), np.float32)),
         "b.fc1.weight": Parameter(np.ones((3, 4), np.float32))}
    with pytest.raises(ParameterLoadError, match=r"'fc1.weight'.*'a.fc1.weight' and 'b.fc1.weight'"):
        msjax.load_param_into_net(Net(), d)


def test_shape_mismatch_names_parameter_shapes_and_file(tmp_path):
    path = str(tmp_path / "bad.ckpt")
    msjax.save_checkpoint({"fc1.weight": np.ones((5, 4), np.float32)}, path)
    with pytest.raises(ParameterLoadError, match=r"'fc1.weight'.*\(3, 4\).*\(5, 4\).*bad.ckpt"):
        msjax.load_checkpoint(path, net=Net())
    with pytest.raises(ParameterLoadError, match=r"bad.ckpt"):
        msjax.load_param_into_net(Net(), msjax.load_checkpoint(path))


def test_dtype_conversion_only_when_not_strict():
    d = {"fc1.bias": Parameter(np.ones(3, np.float16))}
    net = Net()
    msjax.load_param_into_net(net, d)
    assert net.fc1.bias.get_value().dtype == np.float32
    with pytest.raises(ParameterLoadError, match="dtype"):
        msjax.load_param_into_net(Net(), d, strict_load=True)
    with pytest.raises(ParameterLoadError, match="dtype"):
        msjax.load_param_into_net(Net(), {"fc1.bias": Parameter(np.ones(3, np.int32))})


def test_optimizer_state_names_load(fixtures_dir):
    """Momentum's moments.*, learning_rate, momentum, global_step load like any Cell's parameters."""
    net = Net()
    opt = MomentumLike(net)
    names = [p.name for _, p in opt.parameters_and_names()]
    assert names[:3] == ["learning_rate", "momentum", "global_step"] and names[3] == "moments.fc1.weight"
    d = {n: Parameter(np.full(p.shape, 0.5, p.get_value().dtype), name=n)
         for n, p in opt.parameters_dict().items()}
    assert msjax.load_param_into_net(opt, d) == ([], [])
    assert float(opt.momentum.get_value()) == 0.5
    # and the real training checkpoint from MindSpore loads into it
    train = msjax.load_checkpoint(str(fixtures_dir / "train" / "lenet-2_4.ckpt"))
    assert {"learning_rate", "momentum", "global_step", "moments.fc1.weight"} <= set(train)
    assert np.isclose(float(train["momentum"].asnumpy()), 0.9)


_DTYPES = [np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64, np.uint8,
           np.uint16, np.uint32, np.uint64, np.bool_, "bfloat16"]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.from_regex(r"[a-z][a-z0-9_.]{0,12}", fullmatch=True),
                          st.sampled_from(_DTYPES),
                          st.lists(st.integers(1, 4), max_size=3)), min_size=1, max_size=5,
                unique_by=lambda t: t[0]),
       st.sampled_from([{}, {"crc_check": True}, {"format": "safetensors"},
                        {"enc_key": b"0123456789abcdef", "enc_mode": "AES-CBC"}]))
def test_round_trip_property(tmp_path_factory, spec, options):
    rng = np.random.default_rng(len(spec))
    named = {}
    for name, dtype, shape in spec:
        dt = np.dtype(msjax.bfloat16.numpy if dtype == "bfloat16" else dtype)
        named[name] = (rng.standard_normal(shape) * 50).astype(dt)
    ext = "safetensors" if options.get("format") else "ckpt"
    path = str(tmp_path_factory.mktemp("rt") / f"x.{ext}")
    msjax.save_checkpoint(named, path, **options)
    load_opts = {k: v for k, v in options.items() if k in ("crc_check", "format")}
    if "enc_key" in options:
        load_opts.update(dec_key=options["enc_key"], dec_mode=options["enc_mode"])
    loaded = msjax.load_checkpoint(path, **load_opts)
    expected = sorted(named) if ext == "safetensors" else list(named)
    assert list(loaded) == expected
    for name, value in named.items():
        got = loaded[name].get_value()
        assert got.dtype == value.dtype and got.shape == value.shape
        assert got.tobytes() == value.tobytes()


def test_selected_loads_read_only_selected_tensors(tmp_path, monkeypatch):
    from msjax.checkpoint import codec
    path = str(tmp_path / "n.ckpt")
    msjax.save_checkpoint(Net(), path)
    read = []
    real = codec._assemble
    monkeypatch.setattr(codec, "_assemble", lambda f, group, file: read.append(group[0].tag) or real(f, group, file))
    msjax.load_checkpoint(path, specify_prefix="fc2")
    msjax.load_checkpoint(path, choice_func=lambda n: n == "fc1.bias")
    assert read == ["fc2.weight", "fc2.bias", "fc1.bias"]


def test_load_holds_no_second_copy(tmp_path):
    """Peak traced allocation while loading is about the data itself (no file buffer, no parse copy)."""
    import tracemalloc
    data = {f"t{i}": np.full((256, 1024), i, np.float32) for i in range(8)}         # 8 MiB
    path = str(tmp_path / "big.ckpt")
    msjax.save_checkpoint(data, path, fsync=False)
    tracemalloc.start()
    try:
        loaded = msjax.load_checkpoint(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    nbytes = sum(a.nbytes for a in data.values())
    assert len(loaded) == 8 and peak < 1.1 * nbytes
