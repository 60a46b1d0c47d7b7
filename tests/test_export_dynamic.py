"""Dynamic-shape export: ``Tensor(shape=[None, ...], dtype=...)`` inputs -> symbolic dims.

The data-less Tensor behaves as MindSpore 2.10's; capture traces it with JAX shape polymorphism;
ONNX gets ``dim_param`` dims and run-time shapes (onnxruntime runs it at two batch sizes); MINDIR
gets MindSpore's -1 dims (real MindSpore and our reader run it at two batch sizes, and our reader
runs MindSpore's own dynamic-shape files). Static exports are unchanged (the other export tests).
"""
import jax.numpy as jnp
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from jax import lax

import msjax
from msjax_exporters import ir, to_mindir, to_onnx
from msjax_exporters.capture import capture
from msjax_exporters.graph_cell import load as load_mindir
from msjax import nn
from msjax._proto import mind_ir_pb2 as pb
from msjax.common.initializer import One
from msjax.common.tensor import Parameter, Tensor
from msjax.errors import ExportError, UnsupportedOpError
from msjax.graph_io import export
from msjax.models import LeNet5
from oracle import run_mindspore

RNG = np.random.default_rng(0)
BATCHES = (2, 5)


class MLP(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Dense(3, 8)
        self.fc2 = nn.Dense(8, 2)
        self.relu = nn.ReLU()

    def construct(self, x):
        return self.fc2(self.relu(self.fc1(x)))


class Shapes(nn.Cell):
    """Shape-dependent ops on a (batch, seq, 4) input: a rank-3 matmul, a reshape to
    (batch, 3*seq), a slice to the batch's end, broadcasts that keep or make a symbolic dim, and
    (ONNX only) a mean over the batch (``dim_as_value``)."""

    def __init__(self, with_mean=False):
        super().__init__()
        self.w = Parameter(RNG.normal(size=(4, 3)).astype(np.float32), name="w")
        self.b = Parameter(RNG.normal(size=(1, 3)).astype(np.float32), name="b")
        self.with_mean = with_mean

    def construct(self, x):
        h = x @ self.w
        flat = h.reshape(h.shape[0], -1)
        first = lax.slice(flat, (0, 1), (flat.shape[0], 2))
        wide = jnp.broadcast_to(first, (flat.shape[0], 5)) + 1.0
        bias = jnp.broadcast_to(self.b, (x.shape[0], 3))
        if self.with_mean:
            return flat * 2.0, wide, bias, h.mean(axis=0)
        return flat * 2.0, wide, bias


def dynamic(*shape):
    return Tensor(shape=list(shape), dtype=msjax.float32)


def samples(shape, sizes=BATCHES):
    """One input per batch size (and seq = batch - 1 for a second None dim)."""
    out = []
    for b in sizes:
        concrete = [b if i == 0 else (b - 1 if d is None else d) for i, d in enumerate(shape)]
        out.append(RNG.normal(size=concrete).astype(np.float32))
    return out


def outputs(result):
    """A call's outputs as a list of numpy arrays (one output or a tuple of them)."""
    return [np.asarray(r) for r in (result if isinstance(result, tuple) else (result,))]


def want(net, x):
    return outputs(net(Tensor(x)))


NETS = {"lenet": (LeNet5, [None, 1, 32, 32]), "mlp": (MLP, [None, 3]), "shapes": (Shapes, [None, None, 4])}


# ------------------------------------------------------------------------------ the Tensor
def test_dataless_tensor_is_mindspores():
    t = Tensor(shape=[None, 3], dtype=msjax.float32)
    assert t.shape == (-1, 3) and t.dtype == msjax.float32 and t.ndim == 2 and t.size == 0
    assert repr(t) == "Tensor(shape=[-1, 3], dtype=Float32, value=\n)"
    with pytest.raises(ValueError, match="negative dimensions are not allowed"):
        t.asnumpy()
    with pytest.raises(ValueError, match="should return >= 0"):
        len(t)
    assert Tensor(shape=(-1, 3), dtype=msjax.int32).shape == (-1, 3)          # -1 spells None too
    assert Tensor(shape=[None, None], dtype=msjax.float32).shape == (-1, -1)
    assert Tensor(dtype=msjax.float32).shape == (-2,)                        # dtype only: unknown rank
    static = Tensor(shape=(2, 3), dtype=msjax.float32)                       # static: zeros
    np.testing.assert_array_equal(static.asnumpy(), np.zeros((2, 3), np.float32))
    np.testing.assert_array_equal(Tensor(shape=3, dtype=msjax.float32, init=One()).asnumpy(), np.ones(3))
    with pytest.raises(ValueError, match="dtype must not be None"):
        Tensor(shape=[None, 3])
    with pytest.raises(ValueError, match="init must be None"):
        Tensor(shape=[None, 3], dtype=msjax.float32, init=One())
    with pytest.raises(ValueError, match="'shape' should be set to None"):
        Tensor(np.ones(3), shape=[3])
    with pytest.raises(ValueError, match="at the same time"):
        Tensor(init=One(), dtype=msjax.float32)
    with pytest.raises(TypeError, match="NoneType"):
        Tensor(shape=(2, 3))
    with pytest.raises(TypeError, match="NoneType"):
        Tensor()


# ------------------------------------------------------------------------------ capture
def test_capture_gives_symbolic_dims():
    graph = capture(LeNet5(), dynamic(None, 1, 32, 32))
    batch = ir.Dim.symbol("batch")
    assert graph.is_dynamic and [v.shape for v in graph.inputs] == [(batch, 1, 32, 32)]
    assert [v.shape for v in graph.outputs] == [(batch, 10)]
    assert graph.symbol_sources() == {"batch": ("x", 0)}
    (flatten,) = [n for n in graph.nodes if n.op == "reshape"]
    assert flatten.params["new_sizes"] == (batch, 400)

    graph = capture(Shapes(), dynamic(None, None, 4))
    flat = next(n for n in graph.nodes if n.op == "reshape").outputs[0].shape
    seq = ir.Dim.symbol("x_dim1")
    assert flat == (batch, ir.Dim("mul", (3, seq))) and str(flat[1]) == "3*x_dim1"
    assert graph.symbol_sources() == {"batch": ("x", 0), "x_dim1": ("x", 1)}
    assert not capture(MLP(), Tensor(np.ones((2, 3), np.float32))).is_dynamic


def test_capture_errors_name_the_dynamic_shapes():
    with pytest.raises(ExportError, match=r"MLP with dynamic input shapes \['\(batch, x_dim1\)'\]"):
        capture(MLP(), dynamic(None, None))          # the Dense weight needs 3 features
    with pytest.raises(ExportError, match="dynamic rank"):
        capture(MLP(), Tensor(dtype=msjax.float32))


# ------------------------------------------------------------------------------ ONNX
@pytest.mark.parametrize("name", ["lenet", "mlp", "shapes"])
def test_onnx_runs_at_two_batch_sizes(tmp_path, name):
    cls, shape = NETS[name]
    net = cls(with_mean=True) if cls is Shapes else cls()
    export(net, dynamic(*shape), file_name=str(tmp_path / name), file_format="ONNX")
    model = onnx.load(str(tmp_path / f"{name}.onnx"))
    dims = [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in model.graph.input]
    assert dims == [["batch" if i == 0 else ("x_dim1" if d is None else d) for i, d in enumerate(shape)]]
    assert model.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    session = ort.InferenceSession(str(tmp_path / f"{name}.onnx"), providers=["CPUExecutionProvider"])
    shapes_seen = set()
    for x in samples(shape):
        got = session.run(None, {"x": x})
        for g, w in zip(got, want(net, x)):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
        shapes_seen.add(got[0].shape)
    assert len(shapes_seen) == 2
    if name == "shapes":
        assert [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
                for v in model.graph.output] == [["batch", "3*x_dim1"], ["batch", 5], ["batch", 3], ["x_dim1", 3]]
        ops = {n.op_type for n in model.graph.node}
        assert {"Shape", "Gather", "Concat", "Mul"} <= ops        # run-time shapes where needed


def test_onnx_minus_one_is_none_and_dynamic_batch_is_moot():
    net = MLP()
    a = to_onnx.to_model(capture(net, dynamic(None, 3))).SerializeToString()
    b = to_onnx.to_model(capture(net, Tensor(shape=(-1, 3), dtype=msjax.float32)), dynamic_batch=True)
    assert a == b.SerializeToString()


# ------------------------------------------------------------------------------ MINDIR
@pytest.fixture(scope="module")
def mindir_files(tmp_path_factory):
    """Our dynamic LeNet5, MLP and Shapes MINDIR files, their inputs and msjax's outputs."""
    root = tmp_path_factory.mktemp("dynamic_mindir")
    files = {}
    for name, (cls, shape) in NETS.items():
        net = cls()
        export(net, dynamic(*shape), file_name=str(root / name), file_format="MINDIR")
        xs = samples(shape)
        files[name] = (str(root / f"{name}.mindir"), xs, [want(net, x) for x in xs])
    return root, files


def _input_dims(path):
    model = pb.ModelProto()
    with open(path, "rb") as f:
        model.ParseFromString(f.read())
    return [list(v.tensor[0].dims) for v in model.graph.input]


def test_mindir_writes_minus_one_and_our_reader_runs_it(mindir_files):
    _, files = mindir_files
    assert _input_dims(files["lenet"][0]) == [[-1, 1, 32, 32]]
    assert _input_dims(files["shapes"][0]) == [[-1, -1, 4]]
    for name, (path, xs, wants) in files.items():
        cell = load_mindir(path)
        for x, w in zip(xs, wants):
            for g, e in zip(outputs(cell(Tensor(x))), w):
                np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-6, err_msg=name)
        with pytest.raises(ExportError, match=r"must have shape \[-1"):
            cell(Tensor(np.ones([2] + [7] * (xs[0].ndim - 1), np.float32)))
    model = to_mindir.to_model_proto(capture(Shapes(), dynamic(None, None, 4)))
    used = {p.op_type for p in model.primitives}
    assert {"Shape", "TupleGetItem", "ScalarMul", "MakeTuple"} <= used    # as MindSpore writes x.shape math


def test_mindir_dim_as_value_is_reported():
    with pytest.raises(UnsupportedOpError, match="dim_as_value"):
        to_mindir.to_model_proto(capture(Shapes(with_mean=True), dynamic(None, None, 4)))


MS_NETS = """
from mindspore import nn, ops


class MLP(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.relu = nn.Dense(3, 8), nn.Dense(8, 2), nn.ReLU()

    def construct(self, x):
        return self.fc2(self.relu(self.fc1(x)))


class Reshape(nn.Cell):
    def construct(self, x):
        s = x.shape
        return ops.reshape(x, (s[0] * s[1], s[2] // 2, -1, s[3] % 2 + 1)) * 2
"""


def test_mindspore_runs_ours_and_we_run_mindspores(mindir_files):
    """One MindSpore process: load + GraphCell our three files at two batch sizes; export its own
    dynamic MLP and a ``x.shape``-arithmetic net (Shape/TupleGetItem/ScalarMul...) for our reader."""
    root, files = mindir_files
    inputs = {f"{name}_{i}": x for name, (_, xs, _) in files.items() for i, x in enumerate(xs)}
    ms_inputs = {f"ms_{net}_{i}": x for net, shape in (("mlp", [None, 3]), ("reshape", [None, None, 2, 2]))
                 for i, x in enumerate(samples(shape))}
    (root / "ms_dynamic_nets.py").write_text(MS_NETS)
    code = f"""
files = {{name: path for name, path in {[(n, f[0]) for n, f in files.items()]!r}}}
for name, path in files.items():
    cell = nn.GraphCell(ms.load(path))
    for i in range(2):
        out = cell(Tensor(inputs[f"{{name}}_{{i}}"]))
        for j, o in enumerate(out if isinstance(out, tuple) else (out,)):
            outputs[f"{{name}}_{{i}}_{{j}}"] = o.asnumpy()

sys.path.insert(0, {str(root)!r})
from ms_dynamic_nets import MLP, Reshape      # MindSpore compiles nets from source files only
for name, net, shape in (("mlp", MLP(), [None, 3]), ("reshape", Reshape(), [None, None, 2, 2])):
    ms.export(net, Tensor(shape=shape, dtype=ms.float32), file_name={str(root)!r} + "/ms_" + name,
              file_format="MINDIR")
    for i in range(2):
        outputs[f"ms_{{name}}_{{i}}"] = net(Tensor(inputs[f"ms_{{name}}_{{i}}"])).asnumpy()
"""
    got = run_mindspore(code, inputs={**inputs, **ms_inputs})
    for name, (_, xs, wants) in files.items():
        for i, w in enumerate(wants):
            assert xs[i].shape[0] == BATCHES[i]
            for j, e in enumerate(w):
                np.testing.assert_allclose(got[f"{name}_{i}_{j}"], e, rtol=1e-5, atol=1e-5,
                                           err_msg=f"{name} batch {BATCHES[i]} output {j}")
    assert _input_dims(root / "ms_mlp.mindir") == _input_dims(files["mlp"][0]) == [[-1, 3]]
    for name in ("mlp", "reshape"):
        cell = load_mindir(str(root / f"ms_{name}.mindir"))
        for i in range(2):
            x = ms_inputs[f"ms_{name}_{i}"]
            np.testing.assert_allclose(outputs(cell(Tensor(x)))[0], got[f"ms_{name}_{i}"], rtol=1e-5,
                                       atol=1e-6, err_msg=f"MindSpore's {name} at {x.shape}")


def test_air_says_it_needs_static_shapes(tmp_path):
    with pytest.raises(ExportError, match="dim batch is symbolic"):
        export(MLP(), dynamic(None, 3), file_name=str(tmp_path / "mlp"), file_format="AIR")
