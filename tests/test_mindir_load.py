"""MINDIR -> JAX: GraphCell runs MindSpore's own MINDIR files (fixture and freshly exported).

One MindSpore subprocess exports a network that uses one MindSpore primitive per line (with the
Load/UpdateState/Depend/MakeTuple/TupleGetItem plumbing MindSpore adds) and returns its outputs;
our GraphCell must reproduce each within 1e-5.
"""
import numpy as np
import pytest

from msjax_exporters import from_mindir
from msjax_exporters.graph_cell import GraphCell
from msjax.common.tensor import Tensor
from msjax.errors import ExportError, UnsupportedOpError
from msjax.graph_io import load
from msjax.nn.cell import TRACE_COUNTS
from oracle import requires_mindspore, run_mindspore

# one line per MindSpore primitive: (primitive, expression over x (2,3,8,8), v (2,4), p (2,4) > 0)
OPS = [
    ("Conv2D+BiasAdd", "self.conv(x)"),
    ("BatchNorm", "self.bn(x)"),
    ("MaxPool", "ops.MaxPool(3, 2, 'same')(x)"),
    ("AvgPool", "ops.AvgPool(2, 2)(x)"),
    ("MatMul", "self.fc(v)"),
    ("BatchMatMul", "ops.BatchMatMul(transpose_b=True)(x, x)"),
    ("ReLU", "ops.ReLU()(x)"),
    ("Exp", "ops.Exp()(v)"),
    ("Log", "ops.Log()(p)"),
    ("Sqrt", "ops.Sqrt()(p)"),
    ("Rsqrt", "ops.Rsqrt()(p)"),
    ("Tanh", "ops.Tanh()(v)"),
    ("Erf", "ops.Erf()(v)"),
    ("Sigmoid", "ops.Sigmoid()(v)"),
    ("GeLU", "ops.GeLU()(v)"),
    ("Neg", "ops.Neg()(v)"),
    ("Abs", "ops.Abs()(v)"),
    ("Square", "ops.Square()(v)"),
    ("Sin", "ops.Sin()(v)"),
    ("Cos", "ops.Cos()(v)"),
    ("Floor", "ops.Floor()(v * 3)"),
    ("Sign", "ops.Sign()(v)"),
    ("Add", "ops.Add()(v, 1.5)"),
    ("Sub", "ops.Sub()(v, p)"),
    ("Mul", "ops.Mul()(v, p)"),
    ("RealDiv", "ops.RealDiv()(v, p)"),
    ("Div", "ops.Div()(v, 3.0)"),
    ("Maximum", "ops.Maximum()(v, p)"),
    ("Minimum", "ops.Minimum()(v, p)"),
    ("Pow", "ops.Pow()(p, 1.5)"),
    ("Equal", "ops.Equal()(v, v)"),
    ("Less", "ops.Less()(v, 0.0)"),
    ("Greater", "ops.Greater()(v, 0.0)"),
    ("Select", "ops.Select()(v > 0, v, p)"),
    ("Cast", "ops.Cast()(v * 4, ms.int32)"),
    ("Reshape", "ops.Reshape()(x, (6, 64))"),
    ("Flatten", "ops.Flatten()(x)"),
    ("Transpose", "ops.Transpose()(x, (0, 2, 3, 1))"),
    ("ExpandDims", "ops.ExpandDims()(v, 1)"),
    ("Squeeze", "ops.Squeeze(1)(ops.ExpandDims()(v, 1))"),
    ("BroadcastTo", "ops.BroadcastTo((3, 2, 4))(v)"),
    ("Concat", "ops.Concat(1)((v, p))"),
    ("StridedSlice", "x[:, 1:3, ::2, 2]"),
    ("Gather", "ops.Gather()(v, ms.Tensor(np.array([1, 0, 1], np.int32)), 0)"),
    ("Pad", "ops.Pad(((0, 0), (1, 2)))(v)"),
    ("Softmax", "ops.Softmax()(v)"),
    ("LayerNorm", "ops.LayerNorm(-1, -1)(v, ops.OnesLike()(v[0]), ops.ZerosLike()(v[0]))[0]"),
    ("ReduceSum", "ops.ReduceSum()(x, (2, 3))"),
    ("ReduceMean", "ops.ReduceMean(keep_dims=True)(x, (2, 3))"),
    ("ReduceMax", "ops.ReduceMax()(x, 1)"),
    ("ReduceMin", "ops.ReduceMin()(v)"),
    ("ArgMaxWithValue", "ops.ArgMaxWithValue(axis=1)(v)[1]"),
    ("ReLU6", "ops.ReLU6()(v * 4)"),
    ("HSwish", "ops.HSwish()(v * 4)"),
    ("HSigmoid", "ops.HSigmoid()(v * 4)"),
    ("SiLU", "ops.silu(v)"),
    ("MatMulExt", "ops.matmul(v, ops.Transpose()(p, (1, 0)))"),
    ("Split", "ops.split(v, 2, 1)[1]"),
    ("Unstack", "ops.unstack(x, 1)[2]"),
    ("Stack+make_list", "ops.Stack(1)([v, p])"),
    ("ReverseV2", "ops.ReverseV2((1,))(v)"),
    ("Tile", "ops.tile(v, (2, 3))"),
    ("SumExt", "v.sum(1)"),
    ("AdaptiveAvgPool2D", "ops.AdaptiveAvgPool2D((3, 5))(x)"),
    ("AvgPool3D", "ops.AvgPool3D((1, 3, 3), (1, 2, 2), 'pad', (0, 0, 1, 1, 1, 1), ceil_mode=True, "
                  "count_include_pad=False)(ops.ExpandDims()(x, 2))"),
    ("AvgPool3D", "ops.AvgPool3D((1, 3, 3), (1, 2, 2), 'pad', (0, 0, 1, 1, 1, 1), ceil_mode=True)"
                  "(ops.ExpandDims()(x, 2))"),
    ("AvgPool3D", "ops.AvgPool3D((1, 2, 2), (1, 2, 2), divisor_override=3)(ops.ExpandDims()(x, 2))"),
    ("MaxPool3DWithArgmax", "ops.MaxPool3DWithArgmax((1, 3, 3), (1, 2, 2), (0, 1, 1), ceil_mode=True)"
                            "(ops.ExpandDims()(x, 2))[0]"),
    ("MaxPool3DWithArgmax", "ops.Cast()(ops.MaxPool3DWithArgmax((1, 3, 3), (1, 2, 2), (0, 1, 1))"
                            "(ops.ExpandDims()(x, 2))[1], ms.int32)"),
    ("Conv3D", "ops.Conv3D(2, (1, 3, 3), pad_mode='pad', pad=(0, 0, 1, 0, 1, 1), stride=(1, 2, 1), dilation=(1, 1, 2))"
               "(ops.ExpandDims()(x, 2), ops.ExpandDims()(x[:, :, :3, :3], 2))"),
    ("Conv2DTranspose", "ops.Conv2DTranspose(3, 3, pad_mode='same', stride=2)"
                        "(x, ops.Transpose()(x[:, :, :3, :3], (1, 0, 2, 3)), (2, 2, 16, 15))"),
]

# MindSpore compiles a Cell from its source file, so the network is written to a module first
_NET = """
import numpy as np
import mindspore as ms
from mindspore import nn, ops


class Zoo(nn.Cell):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=2, pad_mode="pad", padding=1, has_bias=True)
        self.bn = nn.BatchNorm2d(3, moving_mean_init="normal", moving_var_init="ones")
        self.fc = nn.Dense(4, 5)
    def construct(self, x, v):
        p = ops.Abs()(v) + 0.5
        return ({exprs},)
"""

_RUN = """
sys.path.insert(0, os.path.dirname(str(inputs["mindir_path"])))
from zoo_net import Zoo
ms.set_seed(1)
net = Zoo()
net.set_train(False)
x, v = ms.Tensor(inputs["x"]), ms.Tensor(inputs["v"])
for i, o in enumerate(net(x, v)):
    outputs[str(i)] = o.asnumpy()
ms.export(net, x, v, file_name=str(inputs["mindir_path"]), file_format="MINDIR")
"""

X = np.random.default_rng(1).normal(size=(2, 3, 8, 8)).astype(np.float32)
V = np.random.default_rng(2).normal(size=(2, 4)).astype(np.float32)


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """MindSpore runs and exports the one-op-per-line network; returns (its outputs, our GraphCell)."""
    folder = tmp_path_factory.mktemp("zoo")
    (folder / "zoo_net.py").write_text(_NET.replace("{exprs}", ", ".join(expr for _, expr in OPS)))
    path = str(folder / "zoo")
    out = run_mindspore(_RUN, {"x": X, "v": V, "mindir_path": np.array(path)})
    return out, load(path + ".mindir")


@requires_mindspore
def test_zoo_file_uses_every_primitive(zoo):
    used = {op.prim for op in zoo[1]._graph.ops}
    listed = {p for name, _ in OPS for p in name.split("+")}
    assert listed <= used, listed - used
    assert {"Load", "UpdateState", "Depend", "MakeTuple", "TupleGetItem"} <= used


@requires_mindspore
@pytest.mark.parametrize("index", range(len(OPS)), ids=[name for name, _ in OPS])
def test_graph_cell_matches_mindspore(zoo, index):
    expected, cell = zoo
    got = cell(Tensor(X), Tensor(V))[index].asnumpy()
    want = expected[str(index)]
    assert got.shape == want.shape and got.dtype == want.dtype, (got.dtype, want.dtype)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_lenet5_fixture_reproduces_mindspore(fixtures_dir):
    net = GraphCell(load(str(fixtures_dir / "lenet5.mindir")))   # nn.GraphCell(ms.load(f)) as in MindSpore
    x = np.load(fixtures_dir / "lenet5_input.npy")
    out = net(Tensor(x))
    np.testing.assert_allclose(out.asnumpy(), np.load(fixtures_dir / "lenet5_output.npy"), rtol=1e-5, atol=1e-5)
    assert list(net.parameters_dict()) == ["conv1.weight", "conv2.weight", "fc1.weight", "fc1.bias",
                                           "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"]
    assert net.parameters_dict()["fc3.bias"].shape == (10,)


def test_graph_cell_compiles_once_per_shape(fixtures_dir):
    net = load(str(fixtures_dir / "lenet5.mindir"))
    before = TRACE_COUNTS["GraphCell"]
    x = np.load(fixtures_dir / "lenet5_input.npy")
    first = net(Tensor(x)).asnumpy()
    second = net(Tensor(x * 2)).asnumpy()
    assert TRACE_COUNTS["GraphCell"] == before + 1
    assert not np.allclose(first, second)


def test_params_init_replaces_weights(fixtures_dir):
    graph = load(str(fixtures_dir / "lenet5.mindir"))
    zero = GraphCell(graph, params_init={"fc3.bias": Tensor(np.full(10, 7, np.float32)),
                                         "fc3.weight": Tensor(np.zeros((10, 84), np.float32))})
    out = zero(Tensor(np.load(fixtures_dir / "lenet5_input.npy"))).asnumpy()
    np.testing.assert_array_equal(out, np.full((4, 10), 7, np.float32))
    # as in MindSpore: unknown names are ignored, a wrong shape is a ValueError naming both
    GraphCell(graph, params_init={"fc9.bias": Tensor(np.zeros(10, np.float32))})
    with pytest.raises(ValueError, match=r"fc3.bias.*shape \[3\]"):
        GraphCell(graph, params_init={"fc3.bias": Tensor(np.zeros(3, np.float32))})


def test_wrong_input_shape_names_the_input(fixtures_dir):
    net = load(str(fixtures_dir / "lenet5.mindir"))
    with pytest.raises(ExportError, match=r"input 'x' must have shape \[4, 1, 32, 32\]"):
        net(Tensor(np.zeros((1, 1, 28, 28), np.float32)))


def test_bad_files_name_the_file(tmp_path, fixtures_dir):
    junk = tmp_path / "junk.mindir"
    junk.write_bytes(b"\xff\xff\xff\xff not a protobuf")
    with pytest.raises(ExportError, match="junk.mindir"):
        load(str(junk))
    with pytest.raises(ExportError, match="does not exist"):
        load(str(tmp_path / "missing.mindir"))
    data = (fixtures_dir / "lenet5.mindir").read_bytes()
    cut = tmp_path / "cut.mindir"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ExportError, match="cut.mindir"):
        load(str(cut))


def test_unknown_primitives_are_listed_at_once(tmp_path, fixtures_dir):
    model = from_mindir.pb.ModelProto()
    model.ParseFromString((fixtures_dir / "lenet5.mindir").read_bytes())
    for prim in model.primitives:
        if prim.op_type in ("ReLU", "Flatten"):
            prim.op_type = "Fancy" + prim.op_type
    path = tmp_path / "fancy.mindir"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(UnsupportedOpError, match="FancyFlatten, FancyReLU"):
        load(str(path))


def test_reserved_names_cover_what_a_graph_cell_sets_on_itself(fixtures_dir):
    """from_mindir refuses a parameter named like a GraphCell attribute without importing graph_cell
    (the reader sits below it); its list must cover every attribute a GraphCell really has."""
    cell = load(str(fixtures_dir / "lenet5.mindir"))
    cell(Tensor(np.load(fixtures_dir / "lenet5_input.npy")))       # what a call caches on it too
    own = (set(vars(cell)) | set(dir(GraphCell))) - set(cell.parameters_dict())
    assert own <= from_mindir._reserved_names(), sorted(own - from_mindir._reserved_names())
