"""AIR export: one case per primitive rule, whole networks, the file layout and the schema.

No Ascend toolchain exists off Ascend hardware (MindSpore 2.10 refuses AIR export on CPU), so
exported graphs are run by our own AIR reader (msjax_exporters.from_air) and compared with msjax.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from msjax.graph_io import export
from msjax_exporters import get_emitter, to_air
from msjax_exporters.capture import capture
from msjax_exporters.from_air import AirGraph, load, read_model
from msjax import nn
from msjax._proto import ge_ir_pb2
from msjax.common.tensor import Tensor
from msjax.errors import ExportError, UnsupportedOpError
from export_cases import FnCell

RNG = np.random.default_rng(0)


def _cell(fn, params=()):
    """A Cell whose construct is ``fn(*inputs, *params)``."""
    return FnCell(fn, params)


def _roundtrip(net, *inputs, jit=True):
    model = to_air.to_model(capture(net, *[Tensor(x) for x in inputs]))
    return model, AirGraph(ge_ir_pb2.ModelDef.FromString(model.SerializeToString()), jit=jit)


def f32(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


POS = np.abs(f32(2, 3)) + 0.5
# (case id, fn, inputs, parameters, GE op type the rule must emit)
CASES = [
    ("add", lambda x, y: x + y, [f32(2, 3), f32(2, 3)], [], "Add"),
    ("add_bias", lambda x, b: x + b[None, :, None, None], [f32(1, 3, 2, 2)], [f32(3)], "BiasAdd"),
    ("sub", lambda x, y: x - y, [f32(2, 3), f32(2, 3)], [], "Sub"),
    ("mul", lambda x, y: x * y, [f32(2, 3), f32(2, 3)], [], "Mul"),
    ("div", lambda x, y: x / y, [f32(2, 3), POS], [], "RealDiv"),
    ("div_int", lambda x: lax.div(x, jnp.int32(2)), [np.array([-5, 7], np.int32)], [], "TruncateDiv"),
    ("max_relu", jax.nn.relu, [f32(2, 3)], [], "Relu"),
    ("max", jnp.maximum, [f32(2, 3), f32(2, 3)], [], "Maximum"),
    ("min", jnp.minimum, [f32(2, 3), f32(2, 3)], [], "Minimum"),
    ("pow", lambda x, y: x ** y, [POS, f32(2, 3)], [], "Pow"),
    ("integer_pow", lambda x: x ** 3, [f32(2, 3)], [], "Pow"),
    ("square", lambda x: x ** 2, [f32(2, 3)], [], "Square"),
    ("exp2", jnp.exp2, [f32(2, 3)], [], "Pow"),
    ("neg", jnp.negative, [f32(2, 3)], [], "Neg"),
    ("exp", jnp.exp, [f32(2, 3)], [], "Exp"),
    ("log", jnp.log, [POS], [], "Log"),
    ("log1p", jnp.log1p, [POS], [], "Log1p"),
    ("expm1", jnp.expm1, [f32(2, 3)], [], "Expm1"),
    ("tanh", jnp.tanh, [f32(2, 3)], [], "Tanh"),
    ("logistic", jax.nn.sigmoid, [f32(2, 3)], [], "Sigmoid"),
    ("sqrt", jnp.sqrt, [POS], [], "Sqrt"),
    ("rsqrt", lax.rsqrt, [POS], [], "Rsqrt"),
    ("abs", jnp.abs, [f32(2, 3)], [], "Abs"),
    ("erf", lax.erf, [f32(2, 3)], [], "Erf"),
    ("sign", jnp.sign, [f32(2, 3)], [], "Sign"),
    ("floor", jnp.floor, [f32(2, 3)], [], "Floor"),
    ("ceil", jnp.ceil, [f32(2, 3)], [], "Ceil"),
    ("sin", jnp.sin, [f32(2, 3)], [], "Sin"),
    ("cos", jnp.cos, [f32(2, 3)], [], "Cos"),
    ("is_finite", jnp.isfinite, [f32(2, 3)], [], "IsFinite"),
    ("compare", lambda x, y: [x > y, x >= y, x < y, x <= y, x == y, x != y], [f32(2, 3), f32(2, 3)], [],
     "GreaterEqual"),
    ("logical", lambda x, y: [(x > 0) & (y > 0), (x > 0) | (y > 0), ~(x > 0)], [f32(2, 3), f32(2, 3)], [],
     "LogicalAnd"),
    ("select_n", lambda x, y: jnp.where(x > 0, x, y), [f32(2, 3), f32(2, 3)], [], "Select"),
    ("clamp", lambda x: lax.clamp(-0.5, x, 0.5), [f32(2, 3)], [], "ClipByValue"),
    ("convert_element_type", lambda x: x.astype(jnp.float16), [f32(2, 3)], [], "Cast"),
    ("reshape", lambda x: x.reshape(3, 2), [f32(2, 3)], [], "Reshape"),
    ("squeeze", lambda x: jnp.squeeze(x, 1), [f32(2, 1, 3)], [], "Reshape"),
    ("expand_dims", lambda x: jnp.expand_dims(x, 1), [f32(2, 3)], [], "Reshape"),
    ("broadcast_in_dim", lambda x: jnp.broadcast_to(x, (4, 2, 3)), [f32(2, 3)], [], "BroadcastTo"),
    ("transpose", lambda x: jnp.transpose(x, (2, 0, 1)), [f32(2, 3, 4)], [], "Transpose"),
    ("reduce_sum", lambda x: x.sum(axis=1), [f32(2, 3)], [], "ReduceSum"),
    ("reduce_max", lambda x: x.max(axis=(0, 1)), [f32(2, 3)], [], "ReduceMax"),
    ("reduce_min", lambda x: x.min(axis=0), [f32(2, 3)], [], "ReduceMin"),
    ("reduce_prod", lambda x: x.prod(axis=1), [f32(2, 3)], [], "ReduceProd"),
    ("argmax", lambda x: jnp.argmax(x, axis=1), [f32(2, 3)], [], "ArgMaxV2"),
    ("argmin", lambda x: jnp.argmin(x, axis=0), [f32(2, 3)], [], "ArgMin"),
    ("concatenate", lambda x, y: jnp.concatenate([x, y], axis=1), [f32(2, 3), f32(2, 2)], [], "ConcatV2"),
    ("pad", lambda x: jnp.pad(x, ((1, 0), (0, 2))), [f32(2, 3)], [], "PadV3"),
    ("slice", lambda x: x[:, 1:3], [f32(2, 4)], [], "StridedSlice"),
    ("slice_strided", lambda x: x[::2, 1::2], [f32(4, 4)], [], "StridedSlice"),
    ("cumsum", lambda x: jnp.cumsum(x, axis=1), [f32(2, 3)], [], "Cumsum"),
    ("copy", lambda x: x, [f32(2, 3)], [], "Identity"),
    ("conv_general_dilated", lambda x, w: lax.conv_general_dilated(
        x, w, (2, 1), ((1, 0), (2, 1)), rhs_dilation=(1, 2), dimension_numbers=("NCHW", "OIHW", "NCHW")),
     [f32(1, 2, 6, 6)], [f32(3, 2, 3, 3)], "Conv2D"),
    ("conv_grouped", lambda x, w: lax.conv_general_dilated(
        x, w, (1, 1), "VALID", feature_group_count=2, dimension_numbers=("NCHW", "OIHW", "NCHW")),
     [f32(1, 4, 5, 5)], [f32(4, 2, 3, 3)], "Conv2D"),
    ("dot_general", lambda x, w: x @ w, [f32(2, 3)], [f32(3, 4)], "MatMulV2"),
    ("dot_general_transposed", lambda x, w: x @ w.T, [f32(2, 3)], [f32(4, 3)], "MatMulV2"),
    ("dot_general_batch", lambda x, y: jnp.einsum("bij,bkj->bik", x, y), [f32(2, 3, 4), f32(2, 5, 4)], [],
     "BatchMatMulV2"),
    ("dot_general_broadcast", lambda x, w: x @ w, [f32(2, 3, 4)], [f32(4, 5)], "BatchMatMulV2"),
    ("reduce_window_max", lambda x: lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID"),
     [f32(1, 2, 4, 4)], [], "MaxPool"),
    ("reduce_window_max_padded", lambda x: lax.reduce_window(
        x, -jnp.inf, lax.max, (1, 1, 3, 3), (1, 1, 2, 2), ((0, 0), (0, 0), (1, 1), (0, 1))),
     [f32(1, 2, 5, 5)], [], "MaxPoolV3"),
]


@pytest.mark.parametrize("case_id, fn, inputs, params, op_type", CASES, ids=[c[0] for c in CASES])
def test_rule(case_id, fn, inputs, params, op_type):
    net = _cell(fn, params)
    model, graph = _roundtrip(net, *inputs)
    assert op_type in {op.type for op in model.graph[0].op}
    want = jax.tree.leaves(fn(*inputs, *params))
    got = graph(*inputs)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert np.asarray(g).dtype == np.asarray(w).dtype
        np.testing.assert_allclose(np.asarray(g, np.float64), np.asarray(w, np.float64), rtol=1e-5, atol=1e-5)


def test_every_rule_has_a_case():
    covered = set()
    for _, fn, inputs, params, _ in CASES:
        covered |= {n.op for n in capture(_cell(fn, params), *[Tensor(x) for x in inputs]).nodes}
    # primitives that jnp never emits on its own in these cases
    assert set(to_air.RULES) - covered <= {"add_any", "copy_p", "stop_gradient", "squeeze", "expand_dims",
                                          "square", "copy"}


def _lenet_and_input(fixtures_dir):
    from msjax.models import LeNet5
    return LeNet5(), np.load(fixtures_dir / "lenet5_input.npy")


def test_lenet5_runs_in_the_reader_and_matches(fixtures_dir, tmp_path):
    net, x = _lenet_and_input(fixtures_dir)
    export(net, Tensor(x), file_name=str(tmp_path / "lenet5"), file_format="AIR")
    graph = load(tmp_path / "lenet5.air")
    np.testing.assert_allclose(np.asarray(graph(x)[0]), net(Tensor(x)).asnumpy(), rtol=1e-5, atol=1e-5)
    ops = graph.graph.op
    assert [op.type for op in ops if op.type not in ("Const", "Data", "NetOutput")] == [
        "Conv2D", "Relu", "MaxPool", "Conv2D", "Relu", "MaxPool", "Reshape",
        "MatMulV2", "BiasAdd", "Relu", "MatMulV2", "BiasAdd", "Relu", "MatMulV2", "BiasAdd"]
    # weights: Const ops named by the dotted parameter names, holding the parameter bytes
    for name, param in net.parameters_dict().items():
        np.testing.assert_array_equal(graph.parameters[name], np.asarray(param.get_value()))
    conv = next(op for op in ops if op.type == "Conv2D")
    assert list(conv.attr["strides"].list.i) == [1, 1, 1, 1] and conv.attr["data_format"].s == b"NCHW"
    assert conv.input[1] == "conv1.weight:0" and conv.input_desc[0].layout == "NCHW"
    assert list(conv.output_desc[0].shape.dim) == [4, 6, 28, 28]
    matmul = next(op for op in ops if op.type == "MatMulV2")
    assert matmul.attr["transpose_x2"].b and matmul.input[1] == "fc1.weight:0"
    data = ops[0]
    assert (data.type, data.name, data.attr["index"].i) == ("Data", "x", 0)
    assert graph.graph.input == ["x:0"] and ops[-1].type == "NetOutput"
    assert graph.graph.output == list(ops[-1].input)


def test_resnet50_small_input_matches():
    from msjax.models import resnet50
    net = resnet50(class_num=10)
    x = f32(1, 3, 32, 32)
    model, graph = _roundtrip(net, x)
    types = {op.type for op in model.graph[0].op}
    assert {"Conv2D", "MaxPoolV3", "Relu", "Add", "MatMulV2", "BiasAdd", "ReduceSum"} <= types
    np.testing.assert_allclose(np.asarray(graph(x)[0]), net(Tensor(x)).asnumpy(), rtol=1e-5, atol=1e-5)
    assert list(graph.parameters)[:len(net.parameters_dict())] == list(net.parameters_dict())


def test_mlp_with_two_inputs_matches():
    class MLP(nn.Cell):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Dense(6, 8)
            self.relu = nn.ReLU()
            self.fc2 = nn.Dense(8, 3)

        def construct(self, x, y):
            return self.fc2(self.relu(self.fc1(x))) + y, x.sum()

    net, x, y = MLP(), f32(4, 6), f32(4, 3)
    model, graph = _roundtrip(net, x, y)
    assert [op.attr["index"].i for op in model.graph[0].op if op.type == "Data"] == [0, 1]
    for got, want in zip(graph(x, y), net(Tensor(x), Tensor(y))):
        np.testing.assert_allclose(np.asarray(got), want.asnumpy(), rtol=1e-5, atol=1e-5)


def _wire_fields(data):
    """A protobuf wire decoder that needs no descriptor: [(field number, wire type, value)]."""
    fields, pos = [], 0

    def varint():
        nonlocal pos
        shift = result = 0
        while True:
            b = data[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return result

    while pos < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            value = varint()
        elif wire == 1:
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == 2:
            n = varint()
            value, pos = data[pos:pos + n], pos + n
        elif wire == 5:
            value, pos = data[pos:pos + 4], pos + 4
        else:
            raise AssertionError(f"unexpected wire type {wire}")
        fields.append((number, wire, value))
    assert pos == len(data)
    return fields


def test_file_is_a_plain_serialized_modeldef(fixtures_dir, tmp_path):
    net, x = _lenet_and_input(fixtures_dir)
    get_emitter("GEIR").write(capture(net, Tensor(x)), str(tmp_path / "net.air"))
    data = (tmp_path / "net.air").read_bytes()
    model = read_model(tmp_path / "net.air")
    # schema round trip: serialize -> parse -> serialize gives the same bytes
    assert model.SerializeToString(deterministic=True) == data
    assert ge_ir_pb2.ModelDef.FromString(data) == model
    # no header: the first byte is ModelDef field 1 (name), then graph entries (field 7)
    top = _wire_fields(data)
    assert top[0][:2] == (1, 2) and top[0][2].decode() == model.name == "LeNet5"
    graphs = [v for n, _, v in top if n == 7]
    assert len(graphs) == 1
    ops = [_wire_fields(v) for n, _, v in _wire_fields(graphs[0]) if n == 6]
    assert [dict((k, v) for k, _, v in op if k in (1, 2)) for op in ops] == [
        {1: op.name.encode(), 2: op.type.encode()} for op in model.graph[0].op]


def test_unsupported_primitives_are_all_listed():
    net = _cell(lambda x: jnp.sort(x) + lax.cummax(x, axis=0))
    with pytest.raises(UnsupportedOpError) as info:
        to_air.to_model(capture(net, Tensor(f32(3))))
    assert "sort" in str(info.value) and "cummax" in str(info.value) and "AIR" in str(info.value)


def test_unsupported_parameters_name_the_layer():
    net = _cell(lambda x, w: lax.conv_general_dilated(x, w, (1, 1), ((0, 0), (0, 0)), lhs_dilation=(2, 2),
                                                      dimension_numbers=("NCHW", "OIHW", "NCHW")),
                [f32(1, 1, 2, 2)])
    with pytest.raises(UnsupportedOpError, match="conv_general_dilated"):
        to_air.to_model(capture(net, Tensor(f32(1, 1, 3, 3))))


def test_reader_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad.air"
    bad.write_bytes(b"\xff\xff\xff")
    with pytest.raises(ExportError, match="bad.air"):
        load(bad)
    empty = tmp_path / "empty.air"
    empty.write_bytes(ge_ir_pb2.ModelDef(name="m").SerializeToString())
    with pytest.raises(ExportError, match="no graph"):
        load(empty)
    with pytest.raises(ExportError, match="options"):
        to_air.write(capture(_cell(jnp.exp), Tensor(f32(2))), str(tmp_path / "x.air"), enc_key=b"k")
