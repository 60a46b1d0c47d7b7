"""MindSpore 2.10 parity of the API around checkpoints, each case run in real MindSpore and in msjax.

1. ``ModelCheckpoint.step_end`` outside ``Model.train`` (a hand-built ``RunContext``, no batch):
   the checkpoint is always written; graph.meta only when the network ran compiled (GRAPH_MODE),
   from its last input signature.
2. Error types: ``load_param_into_net`` mismatches are ``RuntimeError``s, ``load_checkpoint``'s
   failures ``ValueError``s, an unloadable MINDIR a ``RuntimeError``.
3. ``load_checkpoint(choice_func=f)`` where ``f`` raises: ``ValueError`` chained to ``f``'s error
   for a .ckpt; ``f``'s error itself for safetensors.
4. ``load_checkpoint_async``: signature, a future whose ``result()`` is the param dict.
6. Old import paths: ``mindspore.train.serialization``, ``mindspore.train.callback``, ``mindspore.train``.

All MindSpore work runs in one subprocess (``world``); it reads the files msjax wrote, so both
sides see the same bytes.
"""
from __future__ import annotations

import builtins
import importlib
import inspect
import os
import warnings

import numpy as np
import pytest

import msjax
from msjax import Parameter, Tensor, nn
from msjax.train.callback import CheckpointConfig, ModelCheckpoint, RunContext
from msjax.train.callback._callback import InternalCallbackParam
from oracle import requires_mindspore, run_mindspore

pytestmark = [requires_mindspore, pytest.mark.mindspore]

KEY = b"0123456789abcdef"
X = np.arange(12, dtype=np.float32).reshape(4, 3) / 10

#: (case, expression over ``ms``/``d`` run in both worlds, with ``ms`` MindSpore or msjax)
ERROR_CASES = {
    "shape": "ms.load_param_into_net(net(), {'weight': ms.Parameter(np.zeros((3, 3), np.float32), name='weight')})",
    "dtype": "ms.load_param_into_net(net(), {'weight': ms.Parameter(np.zeros((2, 3), np.int32), name='weight')})",
    "dtype_strict": "ms.load_param_into_net(net(), {'weight': ms.Parameter(np.zeros((2, 3), np.float16), "
                    "name='weight'), 'bias': ms.Parameter(np.zeros(2, np.float32), name='bias')}, strict_load=True)",
    "missing": "ms.load_checkpoint(d + '/missing.ckpt')",
    "garbage": "ms.load_checkpoint(d + '/garbage.ckpt')",
    "truncated": "ms.load_checkpoint(d + '/truncated.ckpt')",
    "wrong_key": "ms.load_checkpoint(d + '/enc.ckpt', dec_key=b'fedcba9876543210')",
    "no_key": "ms.load_checkpoint(d + '/enc.ckpt')",
    "crc": "ms.load_checkpoint(d + '/crc_damaged.ckpt', crc_check=True)",
    "mindir_garbage": "ms.load(d + '/garbage.mindir')",
    "mindir_missing": "ms.load(d + '/missing.mindir')",
    "choice_ckpt": "ms.load_checkpoint(d + '/net.ckpt', choice_func=lambda name: 1 / 0)",
    "choice_safetensors": "ms.load_checkpoint(d + '/net.safetensors', format='safetensors', "
                          "choice_func=lambda name: {}[name])",
    "async_missing": "ms.load_checkpoint_async(d + '/missing.ckpt').result()",
}

#: (module under mindspore/msjax, names): the old import paths msjax keeps
PATHS = {
    "train.serialization": ["save_checkpoint", "load_checkpoint", "load_param_into_net", "export", "load",
                            "load_checkpoint_async", "ckpt_to_safetensors", "safetensors_to_ckpt"],
    "train.callback": ["Callback", "RunContext", "ModelCheckpoint", "CheckpointConfig", "LossMonitor",
                       "TimeMonitor", "LambdaCallback"],
    "train": ["Model", "save_checkpoint", "load_checkpoint", "load_param_into_net", "export", "load",
              "load_checkpoint_async", "ckpt_to_safetensors", "safetensors_to_ckpt", "Callback", "RunContext",
              "ModelCheckpoint", "CheckpointConfig", "LossMonitor", "TimeMonitor", "LambdaCallback"],
    "": ["save_checkpoint", "load_checkpoint", "load_checkpoint_async", "load_param_into_net", "export", "load",
         "ckpt_to_safetensors", "safetensors_to_ckpt"],
    "serialization": [],
}

_MS_CODE = r"""
import importlib, inspect
from mindspore.train.callback import ModelCheckpoint, CheckpointConfig, RunContext
from mindspore.train.callback._callback import InternalCallbackParam
d = DIR

def net():
    n = nn.Dense(3, 2)
    n.weight.set_data(Tensor(inputs["w"]))
    n.bias.set_data(Tensor(inputs["b"]))
    return n

# 1. ModelCheckpoint.step_end with a hand-built RunContext
for case in ("never", "graph", "pynative"):
    folder = os.path.join(d, "ms_cb_" + case)
    network = net()
    if case != "never":
        ms.set_context(mode=ms.GRAPH_MODE if case == "graph" else ms.PYNATIVE_MODE)
        network(Tensor(inputs["x"]))
        ms.set_context(mode=ms.GRAPH_MODE)
    cb = InternalCallbackParam()
    cb.train_network, cb.epoch_num, cb.cur_epoch_num, cb.cur_step_num, cb.batch_num = network, 1, 1, 1, 1
    ckpt = ModelCheckpoint(prefix="p", directory=folder, config=CheckpointConfig(save_checkpoint_steps=1))
    ckpt.step_end(RunContext(cb))
    outputs["files|" + case] = np.array(sorted(os.listdir(folder)) or [""])

# 2, 3. exception types (and the chained cause)
for case, expr in CASES.items():
    try:
        eval(expr)
        outputs["err|" + case] = np.array("ok")
    except Exception as exc:
        outputs["err|" + case] = np.array(type(exc).__name__)
        cause = exc.__cause__
        outputs["cause|" + case] = np.array("" if cause is None else type(cause).__name__)

# 4. load_checkpoint_async
sig = inspect.signature(ms.load_checkpoint_async)
outputs["async|signature"] = np.array([f"{p.name}={p.default!r}" for p in sig.parameters.values()])
future = ms.load_checkpoint_async(d + "/net.ckpt")
outputs["async|type"] = np.array(type(future).__name__)
params = future.result()
outputs["async|names"] = np.array(list(params))
outputs["async|weight"] = params["weight"].asnumpy()
into = nn.Dense(3, 2)
ms.load_checkpoint_async(d + "/net.safetensors", net=into).result()
outputs["async|into"] = into.weight.asnumpy()

# 6. import paths
found = []
for module, names in PATHS.items():
    try:
        mod = importlib.import_module("mindspore" + ("." + module if module else ""))
    except ImportError:
        found.append(module + ":<missing>")
        continue
    found += [module + ":" + n for n in names if hasattr(mod, n)]
outputs["paths"] = np.array(found)
"""


def _net():
    net = nn.Dense(3, 2)
    net.weight.set_data(np.asarray(_net.w))
    net.bias.set_data(np.asarray(_net.b))
    return net


_net.w = np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5
_net.b = np.array([0.5, -1.0], np.float32)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The shared files (written by msjax) and MindSpore's outcome on them."""
    d = tmp_path_factory.mktemp("parity")
    net = _net()
    msjax.save_checkpoint(net, str(d / "net.ckpt"))
    msjax.save_checkpoint(net, str(d / "net.safetensors"), format="safetensors")
    msjax.save_checkpoint(net, str(d / "enc.ckpt"), enc_key=KEY)
    msjax.save_checkpoint(net, str(d / "crc.ckpt"), crc_check=True)
    data = (d / "net.ckpt").read_bytes()
    (d / "truncated.ckpt").write_bytes(data[:len(data) // 2])
    (d / "garbage.ckpt").write_bytes(b"\x07not a checkpoint\xff" * 8)
    (d / "garbage.mindir").write_bytes(b"\x07not a mindir\xff" * 8)
    crc = bytearray((d / "crc.ckpt").read_bytes())
    crc[crc.index(np.float32(-2.5).tobytes())] ^= 0x01           # one bit of weight[0, 0]
    (d / "crc_damaged.ckpt").write_bytes(bytes(crc))
    code = (f"DIR = {str(d)!r}\nCASES = {ERROR_CASES!r}\nPATHS = {PATHS!r}\n") + _MS_CODE
    outputs = run_mindspore(code, inputs={"x": X, "w": _net.w, "b": _net.b}, cwd=str(d))
    return d, outputs


def _run_ours(expr, d):
    env = {"ms": msjax, "np": np, "net": _net, "d": str(d)}
    try:
        eval(expr, env)
    except Exception as exc:         # noqa: BLE001  (compared with MindSpore's)
        return exc
    return None


# ------------------------------------------------------------------ 1. graph.meta outside Model.train
def _step_end(folder, network):
    cb = InternalCallbackParam()
    cb.train_network, cb.epoch_num, cb.cur_epoch_num, cb.cur_step_num, cb.batch_num = network, 1, 1, 1, 1
    ckpt = ModelCheckpoint(prefix="p", directory=str(folder), config=CheckpointConfig(save_checkpoint_steps=1))
    ckpt.step_end(RunContext(cb))
    return sorted(os.listdir(folder))


@pytest.mark.parametrize("case", ["never", "graph", "pynative"])
def test_step_end_outside_model_train_matches_mindspore(world, tmp_path, case):
    d, ms = world
    network = _net()
    if case != "never":
        previous = msjax.get_context("mode")
        msjax.set_context(mode=msjax.GRAPH_MODE if case == "graph" else msjax.PYNATIVE_MODE)
        try:
            network(Tensor(X))
        finally:
            msjax.set_context(mode=previous)
    with warnings.catch_warnings():
        warnings.simplefilter("error")               # no failure, not even a warning
        files = _step_end(tmp_path, network)
    assert files == [f for f in ms[f"files|{case}"].tolist() if f]
    loaded = msjax.load_checkpoint(str(tmp_path / "p-1_1.ckpt"))
    np.testing.assert_array_equal(loaded["weight"].asnumpy(), _net.w)
    if "p-graph.meta" in files:                       # ours and MindSpore's take the input shape of the last call
        from msjax_exporters.graph_meta import read_graph_meta

        def input_dims(path):
            first = read_graph_meta(path).graph.parameters[0]
            return [dim.size for dim in first.type.tensor_type.shape.dim]
        assert input_dims(tmp_path / "p-graph.meta") == input_dims(d / f"ms_cb_{case}" / "p-graph.meta") == [4, 3]


def test_step_end_uses_the_last_call_and_a_failing_graph_only_warns(tmp_path, monkeypatch):
    network = _net()
    network(Tensor(X))
    network(Tensor(np.ones((7, 3), np.float32)))
    from msjax_exporters.graph_meta import read_graph_meta
    os.makedirs(tmp_path / "a")
    _step_end(tmp_path / "a", network)
    first = read_graph_meta(tmp_path / "a" / "p-graph.meta").graph.parameters[0]
    assert [dim.size for dim in first.type.tensor_type.shape.dim] == [7, 3]

    import msjax_exporters.graph_meta as graph_meta

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(graph_meta, "write_graph_meta", broken)
    os.makedirs(tmp_path / "b")
    with pytest.warns(RuntimeWarning, match="graph.meta was not written.*No space left"):
        files = _step_end(tmp_path / "b", network)
    assert files == ["p-1_1.ckpt"]


# ------------------------------------------------------------------ 2, 3. exception types
@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_exception_types_match_mindspore(world, case):
    d, ms = world
    want = str(ms[f"err|{case}"])
    exc = _run_ours(ERROR_CASES[case], d)
    if want == "ok":
        assert exc is None, repr(exc)
        return
    assert exc is not None, f"MindSpore raised {want}, msjax nothing"
    assert want in vars(builtins), f"MindSpore raised its own {want}"
    assert isinstance(exc, getattr(builtins, want)), (want, repr(exc))
    cause = str(ms[f"cause|{case}"])
    if case.startswith("choice"):                     # the caller's error stays visible
        ours = exc.__cause__ if case == "choice_ckpt" else exc
        assert type(ours).__name__ == (cause or want), (cause, repr(exc))


def test_error_classes_keep_one_hierarchy():
    from msjax import errors
    for name in ("CheckpointError", "CheckpointWriteError", "ParameterLoadError", "ExportError", "ExportWriteError",
                 "UnsupportedOpError", "DatasetError", "LayerArgumentError"):
        cls = getattr(errors, name)
        assert issubclass(cls, errors.MsjaxError) and issubclass(cls, ValueError), name
    assert issubclass(errors.ParameterLoadError, RuntimeError)
    assert issubclass(errors.ExportError, RuntimeError)
    assert not issubclass(errors.CheckpointError, RuntimeError)      # MindSpore: ValueError only
    assert issubclass(errors.CheckpointWriteError, OSError) and issubclass(errors.ExportWriteError, OSError)


def test_choice_func_error_names_the_parameter_and_the_file(world):
    d, _ = world
    with pytest.raises(ValueError, match=r"choice_func raised ZeroDivisionError.*'weight'.*net\.ckpt") as info:
        msjax.load_checkpoint(str(d / "net.ckpt"), choice_func=lambda name: 1 / 0)
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert not isinstance(info.value, msjax.errors.CheckpointError)     # the file is fine
    with pytest.raises(KeyError):
        msjax.load_checkpoint(str(d / "net.safetensors"), format="safetensors", choice_func=lambda name: {}[name])


# ------------------------------------------------------------------ 4. load_checkpoint_async
def test_load_checkpoint_async_matches_mindspore(world):
    d, ms = world
    sig = inspect.signature(msjax.load_checkpoint_async)
    assert [f"{p.name}={p.default!r}" for p in sig.parameters.values()] == ms["async|signature"].tolist()
    future = msjax.load_checkpoint_async(str(d / "net.ckpt"))
    assert type(future).__name__ == str(ms["async|type"])
    params = future.result()
    assert list(params) == ms["async|names"].tolist()
    np.testing.assert_array_equal(params["weight"].asnumpy(), ms["async|weight"])
    into = nn.Dense(3, 2)
    msjax.load_checkpoint_async(str(d / "net.safetensors"), net=into).result()
    np.testing.assert_array_equal(into.weight.asnumpy(), ms["async|into"])
    assert msjax.checkpoint.load_checkpoint_async is msjax.load_checkpoint_async


# ------------------------------------------------------------------ 6. import paths
def test_old_import_paths_match_mindspore(world):
    _, ms = world
    theirs = set(ms["paths"].tolist())
    for module, names in PATHS.items():
        full = "msjax" + ("." + module if module else "")
        if f"{module}:<missing>" in theirs:
            with pytest.raises(ImportError):
                importlib.import_module(full)
            continue
        mod = importlib.import_module(full)
        for name in names:
            assert f"{module}:{name}" in theirs, f"MindSpore 2.10 has no {module}.{name}; drop it from PATHS"
            assert hasattr(mod, name), f"{full}.{name} is missing"
            top = getattr(msjax, name, None) or getattr(msjax.train, name)
            assert getattr(mod, name) is top, f"{full}.{name} is not the same object as msjax's"


def test_init_parameters_data_maps_each_parameter_to_itself():
    net = _net()
    mapping = net.init_parameters_data()
    params = list(net.get_parameters())
    assert len(mapping) == len(params) and list(mapping) == params
    assert all(mapping[p] is p for p in params)
    assert all(isinstance(p, Parameter) and p.init_data() is p for p in params)
