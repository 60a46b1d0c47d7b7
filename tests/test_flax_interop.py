"""Plain ``flax.nnx`` modules <-> MindSpore .ckpt (``msjax.checkpoint.nnx_interop``), against real
MindSpore 2.10.

Each row of ``MODELS`` is one architecture written twice: as a plain nnx module (NHWC, as flax
computes) and as a MindSpore Cell (NCHW, ``pad_mode="same"`` for nnx's 'SAME'). The nnx CNN is
trained a few steps with optax; the others get random values. msjax saves each; in one oracle call
MindSpore loads every file with ``strict_load=True`` (nothing may be left over) and runs it, and
saves its own randomised copy, which the nnx module then loads strictly. Outputs agree within 1e-5.
"""
import numpy as np
import optax
import pytest
from flax import nnx

from msjax.checkpoint.matching import load_param_into_net
from msjax.checkpoint.nnx_interop import load_param_into_nnx, nnx_parameters
from msjax.checkpoint.serialization import load_checkpoint, save_checkpoint
from msjax.errors import ParameterLoadError
from oracle import once_per_session, requires_mindspore, run_mindspore


class NnxCNN(nnx.Module):
    def __init__(self, rngs):
        self.features = nnx.List([nnx.Conv(3, 4, (3, 3), use_bias=False, rngs=rngs), nnx.BatchNorm(4, rngs=rngs),
                                  nnx.Conv(4, 8, (3, 3), feature_group_count=2, rngs=rngs),
                                  nnx.BatchNorm(8, rngs=rngs)])
        self.fc = nnx.Linear(8, 10, rngs=rngs)

    def __call__(self, x):
        f = self.features
        x = nnx.max_pool(nnx.relu(f[1](f[0](x))), (2, 2), strides=(2, 2))
        x = nnx.relu(f[3](f[2](x)))
        return self.fc(x.mean(axis=(1, 2)))


class NnxText(nnx.Module):
    def __init__(self, rngs):
        self.emb = nnx.Embed(20, 8, rngs=rngs)
        self.conv = nnx.Conv(8, 8, (3,), rngs=rngs)
        self.drop = nnx.Dropout(0.1, rngs=rngs)                  # rng state: not saved
        self.norm = nnx.LayerNorm(8, epsilon=1e-5, rngs=rngs)
        self.head = nnx.Linear(8, 3, rngs=rngs)

    def __call__(self, ids):
        return self.head(self.norm(self.drop(self.conv(self.emb(ids)))).mean(axis=1))


class NnxVol(nnx.Module):
    def __init__(self, rngs):
        self.conv = nnx.Conv(2, 4, (3, 3, 3), rngs=rngs)
        self.norm = nnx.GroupNorm(4, num_groups=2, epsilon=1e-5, rngs=rngs)
        self.head = nnx.Linear(4, 2, rngs=rngs)

    def __call__(self, x):
        x = self.conv(x).mean(axis=1)                            # NDHWC -> NHWC
        return self.head(self.norm(x).mean(axis=(1, 2)))


class NnxUp(nnx.Module):
    def __init__(self, rngs):
        self.up = nnx.ConvTranspose(3, 4, (3, 3), strides=(2, 2), rngs=rngs)
        self.out = nnx.ConvTranspose(4, 2, (3, 3), transpose_kernel=True, rngs=rngs)

    def __call__(self, x):
        return self.out(nnx.relu(self.up(x)))


MS_DEFS = """
from mindspore import nn

class CNN(nn.Cell):
    def __init__(self):
        super().__init__()
        self.features = nn.CellList([nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 8, 3, group=2, has_bias=True),
                                     nn.BatchNorm2d(8)])
        self.pool, self.relu, self.fc = nn.MaxPool2d(2, 2), nn.ReLU(), nn.Dense(8, 10)

    def construct(self, x):
        f = self.features
        x = self.relu(f[3](f[2](self.pool(self.relu(f[1](f[0](x)))))))
        return self.fc(x.mean(axis=(2, 3)))

class Text(nn.Cell):
    def __init__(self):
        super().__init__()
        self.emb, self.conv = nn.Embedding(20, 8), nn.Conv1d(8, 8, 3, has_bias=True)
        self.norm, self.head = nn.LayerNorm((8,), epsilon=1e-5), nn.Dense(8, 3)

    def construct(self, ids):
        h = self.conv(self.emb(ids).transpose(0, 2, 1)).transpose(0, 2, 1)
        return self.head(self.norm(h).mean(axis=1))

class Vol(nn.Cell):
    def __init__(self):
        super().__init__()
        self.conv, self.norm = nn.Conv3d(2, 4, 3, has_bias=True), nn.GroupNorm(2, 4, eps=1e-5)
        self.head = nn.Dense(4, 2)

    def construct(self, x):
        return self.head(self.norm(self.conv(x).mean(axis=2)).mean(axis=(2, 3)))

class Up(nn.Cell):
    def __init__(self):
        super().__init__()
        self.up = nn.Conv2dTranspose(3, 4, 3, stride=2, pad_mode="same", has_bias=True)
        self.out = nn.Conv2dTranspose(4, 2, 3, pad_mode="same", has_bias=True)
        self.relu = nn.ReLU()

    def construct(self, x):
        return self.out(self.relu(self.up(x)))
"""

_RNG = np.random.default_rng(0)
#: name, nnx module, MindSpore Cell (expression), the nnx input, axes that lay it out for MindSpore
MODELS = [
    ("cnn", NnxCNN, "CNN()", _RNG.normal(0, 1, (4, 8, 8, 3)).astype(np.float32), (0, 3, 1, 2)),
    ("text", NnxText, "Text()", _RNG.integers(0, 20, (3, 6)).astype(np.int32), (0, 1)),
    ("vol", NnxVol, "Vol()", _RNG.normal(0, 1, (2, 4, 5, 5, 2)).astype(np.float32), (0, 4, 1, 2, 3)),
    ("conv_transpose", NnxUp, "Up()", _RNG.normal(0, 1, (2, 5, 5, 3)).astype(np.float32), (0, 3, 1, 2)),
    ("batchnorm_root", lambda rngs: nnx.BatchNorm(3, rngs=rngs), "nn.BatchNorm2d(3)",
     _RNG.normal(0, 1, (2, 4, 4, 3)).astype(np.float32), (0, 3, 1, 2)),
]


def _randomise(module, seed):
    """Every saved value off its initialiser (variances positive), so no comparison is vacuous."""
    rng = np.random.default_rng(seed)
    for path, var in nnx.iter_graph(module):
        if isinstance(var, (nnx.Param, nnx.BatchStat)):
            value = rng.normal(0, 0.5, var.get_value().shape).astype(np.float32)
            var.set_value(np.abs(value) + np.float32(0.5) if path[-1] == "var" else value)


def _train(model, x, steps=3):
    """A few optax steps in train mode (BatchNorm uses and updates its batch statistics)."""
    labels = np.arange(len(x)) % 10
    optimizer = nnx.Optimizer(model, optax.sgd(0.1, momentum=0.9), wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer):
        def loss_fn(m):
            return optax.softmax_cross_entropy_with_integer_labels(m(x), labels).mean()
        _, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)

    for _ in range(steps):
        step(model, optimizer)


def _eval(model, x):
    model.eval()
    return np.asarray(nnx.jit(lambda m, x: m(x))(model, x))


def _compare(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("flax_interop")
    results, inputs, spec = {}, {}, []
    for name, build, ms_cell, x, axes in MODELS:
        model = build(nnx.Rngs(0))
        if name == "cnn":
            _train(model, x)
        else:
            _randomise(model, 1)
        ours, theirs = str(tmp / f"{name}_msjax.ckpt"), str(tmp / f"{name}_mindspore.ckpt")
        save_checkpoint(model, ours)
        results[name] = {"ours_y": _eval(model, x), "names": list(nnx_parameters(model)), "mindspore_ckpt": theirs}
        inputs[f"{name}__x"] = x.transpose(axes)
        spec.append((name, ms_cell, ours, theirs))
    (tmp / "flax_interop_cells.py").write_text(MS_DEFS)       # GRAPH_MODE compiles from a source file
    out = run_mindspore(f"""
sys.path.insert(0, {str(tmp)!r})
from flax_interop_cells import CNN, Text, Up, Vol
rng = np.random.default_rng(2)
for name, cell, ours, theirs in {spec!r}:
    x = Tensor(inputs[name + "__x"])
    net = eval(cell)
    left = ms.load_param_into_net(net, ms.load_checkpoint(ours), strict_load=True)
    outputs[name + "__left"] = np.array([*left[0], *left[1]], dtype=str)
    net.set_train(False)
    outputs[name + "__on_ours"] = net(x).asnumpy()
    net = eval(cell)
    for p in net.get_parameters():
        value = rng.normal(0, 0.5, p.shape).astype(np.float32)
        p.set_data(Tensor(np.abs(value) + 0.5 if "variance" in p.name else value))
    net.set_train(False)
    outputs[name + "__theirs_y"] = net(x).asnumpy()
    ms.save_checkpoint(net, theirs)
    outputs[name + "__names"] = np.array(list(ms.load_checkpoint(theirs)), dtype=str)
""", inputs)
    for name, *_, axes in MODELS:
        back = lambda y: y.transpose(np.argsort(axes)) if y.ndim == len(axes) else y  # noqa: B023, E731
        results[name].update(left=list(out[f"{name}__left"]), on_ours=back(out[f"{name}__on_ours"]),
                             theirs_y=back(out[f"{name}__theirs_y"]), mindspore_names=list(out[f"{name}__names"]))
    return results


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """Our side and MindSpore's for every model, MindSpore's in one oracle call per session."""
    return once_per_session(tmp_path_factory, "flax_interop_compared", lambda: _compare(tmp_path_factory))


@requires_mindspore
@pytest.mark.parametrize("name", [m[0] for m in MODELS])
def test_mindspore_loads_our_checkpoint_strictly(compared, name):
    got = compared[name]
    assert got["left"] == []                                       # strict, nothing left over either way
    assert sorted(got["names"]) == sorted(got["mindspore_names"])  # nnx's order is sorted, MindSpore's not
    assert np.abs(got["ours_y"]).max() > 0.1                       # not a vacuous comparison
    np.testing.assert_allclose(got["on_ours"], got["ours_y"], rtol=1e-5, atol=1e-5)


@requires_mindspore
@pytest.mark.parametrize("name", [m[0] for m in MODELS])
def test_nnx_loads_mindspore_checkpoint_strictly(compared, name):
    _, build, _, x, _ = next(m for m in MODELS if m[0] == name)
    model = build(nnx.Rngs(7))
    param_dict = load_checkpoint(compared[name]["mindspore_ckpt"])
    assert load_param_into_nnx(model, param_dict, strict_load=True) == ([], [])
    y = _eval(model, x)
    assert np.abs(y).max() > 0.1
    np.testing.assert_allclose(y, compared[name]["theirs_y"], rtol=1e-5, atol=1e-5)


@requires_mindspore
def test_load_checkpoint_with_a_plain_module_as_net(compared):
    model = NnxCNN(nnx.Rngs(7))
    load_checkpoint(compared["cnn"]["mindspore_ckpt"], net=model, strict_load=True)
    np.testing.assert_allclose(_eval(model, MODELS[0][3]), compared["cnn"]["theirs_y"], rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------ names, layouts, errors (no MindSpore)

def test_default_names_and_mindspore_layouts():
    model = NnxCNN(nnx.Rngs(0))
    got = {name: (p.shape, p.requires_grad) for name, p in nnx_parameters(model).items()}
    assert list(got) == ["fc.weight", "fc.bias", "features.0.weight", "features.1.moving_mean",
                         "features.1.moving_variance", "features.1.gamma", "features.1.beta", "features.2.weight",
                         "features.2.bias", "features.3.moving_mean", "features.3.moving_variance",
                         "features.3.gamma", "features.3.beta"]
    assert got["features.0.weight"] == ((4, 3, 3, 3), True)          # OIHW from HWIO
    assert got["features.1.moving_mean"] == ((4,), False)
    assert got["features.2.weight"] == ((8, 2, 3, 3), True)           # grouped: (out, in/groups, kh, kw)
    assert got["fc.weight"] == ((10, 8), True)                        # (out, in) from (in, out)
    np.testing.assert_array_equal(nnx_parameters(model)["fc.weight"].asnumpy(), np.asarray(model.fc.kernel).T)
    text = nnx_parameters(NnxText(nnx.Rngs(0)))
    assert text["conv.weight"].shape == (8, 8, 1, 3)                  # MindSpore's Conv1d is 4-d
    assert "emb.embedding_table" in text and not any("rngs" in n for n in text)


def test_save_module_and_param_dict_forms_agree(tmp_path):
    model = NnxText(nnx.Rngs(0))
    save_checkpoint(model, tmp_path / "a.ckpt")
    save_checkpoint(nnx_parameters(model), tmp_path / "b.ckpt")
    a, b = load_checkpoint(str(tmp_path / "a.ckpt")), load_checkpoint(str(tmp_path / "b.ckpt"))
    assert list(a) == list(b)
    for name in a:
        np.testing.assert_array_equal(a[name].asnumpy(), b[name].asnumpy())


def _drop(name):
    return lambda d: {k: v for k, v in d.items() if k != name}


def _prefixed(d):
    return {"backbone." + k: v for k, v in d.items()}


def _with(name, fn):
    return lambda d: {**d, name: fn(d[name].asnumpy())}


NAMES = list(nnx_parameters(NnxCNN(nnx.Rngs(0))))
#: id, edit of the checkpoint's dict, strict_load, (param_not_load, ckpt_not_load) or the error's text
LOADS = [
    ("missing", _drop("fc.bias"), False, (["fc.bias"], [])),
    ("missing_strict", _drop("fc.bias"), True, (["fc.bias"], [])),
    ("extra", lambda d: {**d, "head.weight": d["fc.weight"]}, False, ([], ["head.weight"])),
    ("extra_strict", lambda d: {**d, "head.weight": d["fc.weight"]}, True, ([], ["head.weight"])),
    ("prefix", _prefixed, False, ([], [])),
    ("prefix_strict", _prefixed, True, (NAMES, ["backbone." + n for n in NAMES])),
    ("wrong_shape", _with("fc.weight", lambda a: a.T), False,
     "parameter 'fc.weight' has shape (10, 8) in the network but 'fc.weight' has shape (8, 10)"),
    ("wrong_shape_strict", _with("fc.weight", lambda a: a.T), True, "'fc.weight' has shape (10, 8)"),
    ("float16", _with("fc.bias", lambda a: a.astype(np.float16)), False, ([], [])),
    ("float16_strict", _with("fc.bias", lambda a: a.astype(np.float16)), True,
     "parameter 'fc.bias' has dtype Float32 in the network but 'fc.bias' has dtype Float16"),
]


@pytest.mark.parametrize(("edit", "strict", "expected"), [r[1:] for r in LOADS], ids=[r[0] for r in LOADS])
def test_load_reports_as_load_param_into_net(edit, strict, expected):
    source = NnxCNN(nnx.Rngs(0))
    _randomise(source, 3)
    param_dict = edit(nnx_parameters(source))
    model = NnxCNN(nnx.Rngs(1))
    before = {k: np.asarray(v) for k, v in nnx_parameters(model).items()}
    if isinstance(expected, str):
        with pytest.raises(ParameterLoadError, match=expected.replace("(", r"\(").replace(")", r"\)")):
            load_param_into_nnx(model, param_dict, strict_load=strict)
        after = nnx_parameters(model)
        assert all(np.array_equal(before[k], after[k].asnumpy()) for k in before)      # nothing assigned
        return
    assert load_param_into_nnx(model, dict(param_dict), strict_load=strict) == expected
    assert load_param_into_net(NnxCNN(nnx.Rngs(1)), dict(param_dict), strict_load=strict) == expected
    want, after = nnx_parameters(source), nnx_parameters(model)
    for name in after:
        if name not in expected[0]:
            np.testing.assert_allclose(after[name].asnumpy(), want[name].asnumpy(), rtol=1e-3)
        else:
            np.testing.assert_array_equal(after[name].asnumpy(), before[name])


def test_name_fn_renames_and_skips_but_keeps_layouts():
    def name_fn(path):
        return None if path[0] == "fc" else "net." + ".".join(map(str, path))

    source, model = NnxCNN(nnx.Rngs(0)), NnxCNN(nnx.Rngs(1))
    named = nnx_parameters(source, name_fn=name_fn)
    assert "net.features.0.kernel" in named and not any("fc" in n for n in named)
    assert named["net.features.0.kernel"].shape == (4, 3, 3, 3)
    assert load_param_into_nnx(model, named, strict_load=True, name_fn=name_fn) == ([], [])
    np.testing.assert_array_equal(np.asarray(model.features[0].kernel), np.asarray(source.features[0].kernel))
    assert not np.array_equal(np.asarray(model.fc.kernel), np.asarray(source.fc.kernel))


@pytest.mark.parametrize(("call", "error", "text"), [
    (lambda m: nnx_parameters(m, name_fn=lambda p: "w"), ParameterLoadError, "both map to the checkpoint name 'w'"),
    (lambda m: nnx_parameters(m, name_fn=lambda p: 3), TypeError, "name_fn must return"),
    (lambda m: nnx_parameters(m, name_fn="w"), TypeError, "'name_fn' must be a callable"),
    (lambda m: load_param_into_nnx(m, [], strict_load=True), TypeError, "'parameter_dict' must be a dict"),
    (lambda m: load_param_into_nnx(m, {}, strict_load=1), TypeError, "'strict_load' must be a bool"),
    (lambda m: load_param_into_net(object(), {}), TypeError, "must be a Cell or a flax.nnx.Module"),
], ids=["name_collision", "name_not_str", "name_fn_not_callable", "dict_not_dict", "strict_not_bool",
        "net_not_module"])
def test_argument_errors(call, error, text):
    with pytest.raises(error, match=text):
        call(NnxCNN(nnx.Rngs(0)))
