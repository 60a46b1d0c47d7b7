"""ONNX export: one case per rule (capture -> ONNX -> onnxruntime vs jax), networks, errors."""
import jax
import jax.numpy as jnp
import numpy as np
import onnx
import onnxruntime as ort
import pytest

import msjax_exporters
from msjax_exporters import to_onnx
from msjax_exporters.capture import capture
from msjax_exporters.op_table import spelling
from msjax.common.tensor import Parameter, Tensor
from msjax.errors import ExportError, UnsupportedOpError
from msjax.graph_io import export, load
from msjax.nn.cell import Cell
from export_cases import FnCell

RNG = np.random.default_rng(0)
F = RNG.normal(size=(2, 3)).astype(np.float32)          # generic float input
G = RNG.normal(size=(2, 3)).astype(np.float32)
P = np.abs(F) + 0.5                                      # positive
M = RNG.normal(size=(2, 4, 3)).astype(np.float32)
IMG = RNG.normal(size=(1, 2, 6, 6)).astype(np.float32)
KER = RNG.normal(size=(3, 2, 3, 3)).astype(np.float32)
IDS = np.array([[0, 2], [3, 1]], np.int32)
TABLE = RNG.normal(size=(4, 3)).astype(np.float32)


def run_onnx(path, feeds):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return session.run(None, {n: np.asarray(f) for n, f in zip(names, feeds)})


def roundtrip(net, inputs, tmp_path, feeds=None, **options):
    """Export ``net`` on ``inputs`` to ONNX and return (onnx outputs on ``feeds``, the model)."""
    file = tmp_path / "net"
    export(net, *inputs, file_name=str(file), file_format="ONNX", **options)
    model = onnx.load(str(file) + ".onnx")
    return run_onnx(str(file) + ".onnx", feeds or inputs), model


# one line per rule: (primitive, function, example inputs)
CASES = [
    ("neg", lambda x: -x, [F]),
    ("exp", jnp.exp, [F]),
    ("log", jnp.log, [P]),
    ("tanh", jnp.tanh, [F]),
    ("logistic", jax.nn.sigmoid, [F]),
    ("sqrt", jnp.sqrt, [P]),
    ("abs", jnp.abs, [F]),
    ("sign", jnp.sign, [F]),
    ("floor", jnp.floor, [F]),
    ("ceil", jnp.ceil, [F]),
    ("erf", jax.lax.erf, [F]),
    ("sin", jnp.sin, [F]),
    ("cos", jnp.cos, [F]),
    ("tan", jax.lax.tan, [F]),
    ("copy", lambda x: x, [F]),
    ("add", jnp.add, [F, G]),
    ("sub", jnp.subtract, [F, G]),
    ("mul", jnp.multiply, [F, G]),
    ("mul", lambda x: (x.sum() * 2.0, jnp.broadcast_to(x.max() * 0.5, (1, 2, 1, 1))), [F]),   # 0-d constants keep rank 0
    ("div", jnp.divide, [F, P]),
    ("max", jnp.maximum, [F, G]),
    ("min", jnp.minimum, [F, G]),
    ("pow", jnp.power, [P, G]),
    ("eq", lambda x, y: x == jnp.round(y), [np.round(F), G]),
    ("ne", lambda x, y: x != y, [F, G]),
    ("lt", jnp.less, [F, G]),
    ("le", jnp.less_equal, [F, G]),
    ("gt", jnp.greater, [F, G]),
    ("ge", jnp.greater_equal, [F, G]),
    ("rsqrt", jax.lax.rsqrt, [P]),
    ("square", jax.lax.square, [F]),
    ("log1p", jnp.log1p, [P]),
    ("expm1", jnp.expm1, [F]),
    ("exp2", jnp.exp2, [F]),
    ("integer_pow", lambda x: (x ** 3, x ** -2, x ** 0), [P]),
    ("rem", jax.lax.rem, [F * 5, P]),
    ("round", jnp.round, [F * 3]),
    ("and", lambda x, y: ((x > 0) & (y > 0), x.astype(jnp.int32) & 3), [F * 5, G]),
    ("or", lambda x, y: ((x > 0) | (y > 0), x.astype(jnp.int32) | 3), [F * 5, G]),
    ("xor", lambda x, y: (x > 0) ^ (y > 0), [F, G]),
    ("not", lambda x: (~(x > 0), ~x.astype(jnp.int32)), [F * 5]),
    ("convert_element_type", lambda x: (x.astype(jnp.int32), x.astype(jnp.float16)), [F * 5]),
    ("reshape", lambda x: x.reshape(3, 2), [F]),
    ("squeeze", lambda x: jnp.squeeze(x, 0), [F[:1]]),
    ("broadcast_in_dim", lambda x: jnp.broadcast_to(x[:, None, :], (2, 4, 3)), [F]),
    ("transpose", lambda x: jnp.transpose(x, (2, 0, 1)), [M]),
    ("concatenate", lambda x, y: jnp.concatenate([x, y], axis=1), [F, G]),
    ("split", lambda x: jnp.split(x, [1], axis=1), [F]),
    ("slice", lambda x: x[1:, ::2], [F]),
    ("rev", lambda x: (jnp.flip(x, 1), jnp.flip(M, (0, 2)) + x[:, None, :]), [F]),
    ("stack", lambda x, y: (jnp.stack([x, y]), jnp.stack([x, y, x], -1)), [F, G]),
    ("tile", lambda x: (jnp.tile(x, (2, 3)), jnp.tile(x, (2, 1, 3))), [F]),
    ("cond", lambda x: (jax.lax.cond(x.sum() > 0, lambda v: v * 2.0, lambda v: jnp.exp(-v), x),
                        jax.lax.switch(jnp.int32(x[0, 0] > 0) + 1, [jnp.sin, jnp.cos, lambda v: v + 1.0], x)), [F]),
    ("while", lambda x: jax.lax.while_loop(lambda c: (c[0] < 4) & (c[1].sum() < 50.0),
                                           lambda c: (c[0] + 1, c[1] * 1.5 + x), (0, jnp.abs(x))), [F]),
    ("pad", lambda x: jnp.pad(x, ((1, 0), (0, 2)), constant_values=-1.0), [F]),
    ("iota", lambda x: x + jnp.arange(3, dtype=jnp.float32), [F]),
    ("select_n", lambda x, y: jnp.where(x > 0, x, y), [F, G]),
    ("clamp", lambda x: jax.lax.clamp(-0.5, x, 0.5), [F]),
    ("reduce_sum", lambda x: jnp.sum(x, axis=(0, 2)), [M]),
    ("reduce_max", lambda x: jnp.max(x, axis=1), [M]),
    ("reduce_min", lambda x: jnp.min(x, axis=-1), [M]),
    ("reduce_prod", lambda x: jnp.prod(x, axis=0), [M]),
    ("argmax", lambda x: jnp.argmax(x, axis=1), [M]),
    ("argmin", lambda x: jnp.argmin(x, axis=2), [M]),
    ("cumsum", lambda x: (jnp.cumsum(x, axis=1), jax.lax.cumsum(x, axis=0, reverse=True)), [F]),
    ("dot_general", lambda x, w: (x @ w.T, x.T @ x, jnp.einsum("bij,bkj->bik", M, M),
                                  jnp.einsum("bij,bjk->bik", M, jnp.swapaxes(M, 1, 2)),
                                  jnp.einsum("bij,kj->kbi", M, w), M @ w[0]), [F, G]),
    ("conv_general_dilated", lambda x, k: (
        jax.lax.conv_general_dilated(x, k, (2, 1), ((1, 1), (0, 2)), rhs_dilation=(1, 2)),
        jax.lax.conv_general_dilated(x.transpose(0, 2, 3, 1), k.transpose(2, 3, 1, 0), (1, 1), "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC")),
        jax.lax.conv_general_dilated(x, k[:, :1], (1, 1), "VALID", feature_group_count=2),
        jax.lax.conv_transpose(x, k, (2, 2), "SAME", dimension_numbers=("NCHW", "OIHW", "NCHW")),
        jax.lax.conv_general_dilated(x, k, (1, 1), ((2, 0), (1, 3)), lhs_dilation=(2, 3), rhs_dilation=(1, 2)),
        jax.lax.conv_general_dilated(jnp.stack([x] * 3, 2), jnp.stack([k] * 2, 2), (1, 2, 1), "SAME")),
     [IMG, KER[:2]]),
    ("reduce_window_max", lambda x: jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 1, 3, 3), (1, 1, 2, 2),
                                                          ((0, 0), (0, 0), (1, 1), (1, 1))), [IMG]),
    ("reduce_window_sum", lambda x: jax.lax.reduce_window(x, 0.0, jax.lax.add, (1, 1, 2, 2), (1, 1, 2, 2),
                                                          "VALID") / 4, [IMG]),
    ("gather", lambda t, i: (t[i], jnp.take(t, i, axis=0)), [TABLE, IDS]),
]


def test_every_rule_has_a_case():
    assert sorted({op for op, _, _ in CASES}) == sorted(to_onnx.RULES)


def test_the_table_names_the_op_each_rule_writes():
    written = {}
    for op, fn, inputs in CASES:
        model = to_onnx.to_model(capture(FnCell(fn), *inputs))
        written.setdefault(op, set()).update(n.op_type for n in model.graph.node)
    for op, types in written.items():
        assert spelling("ONNX", op) in types, (op, spelling("ONNX", op), types)


def test_refused_nodes_are_listed_at_once():
    net = FnCell(lambda x, y: ((x > 0) & (y > 0), x.astype(jnp.int32) & 3, ~x.astype(jnp.int32)))
    with pytest.raises(UnsupportedOpError) as info:
        to_onnx.to_model(capture(net, F, G), opset_version=13)
    message = str(info.value)
    assert "2 node(s)" in message and "integer and needs opset 18" in message and "integer not needs" in message
    assert info.value.unsupported == {"and": ["<top level>"], "not": ["<top level>"]}


@pytest.mark.parametrize("op,fn,inputs", CASES, ids=[c[0] for c in CASES])
def test_rule(op, fn, inputs, tmp_path):
    net = FnCell(fn)
    graph = capture(net, *inputs)
    assert op in {n.op for n in graph.nodes}
    got, _ = roundtrip(net, inputs, tmp_path)
    want = jax.tree.leaves(fn(*[jnp.asarray(i) for i in inputs]))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == np.asarray(w).dtype and g.shape == w.shape
        np.testing.assert_allclose(g, np.asarray(w), rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------ networks
class Dense(Cell):
    def __init__(self, n_in, n_out, seed):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.weight = Parameter(rng.normal(size=(n_out, n_in)).astype(np.float32) / np.sqrt(n_in))
        self.bias = Parameter(rng.normal(size=n_out).astype(np.float32))

    def construct(self, x):
        return x @ self.weight.T + self.bias


class MLP(Cell):
    def __init__(self):
        super().__init__()
        self.fc1 = Dense(8, 16, 1)
        self.fc2 = Dense(16, 4, 2)

    def construct(self, x):
        return self.fc2(jax.nn.relu(self.fc1(x)))


def test_mlp_model_conventions_and_values(tmp_path):
    net = MLP()
    x = RNG.normal(size=(3, 8)).astype(np.float32)
    (got,), model = roundtrip(net, [Tensor(x)], tmp_path)
    np.testing.assert_allclose(got, net(Tensor(x)).asnumpy(), rtol=1e-5, atol=1e-5)
    assert model.producer_name == "msjax" and model.opset_import[0].version == to_onnx.DEFAULT_OPSET
    assert model.ir_version == onnx.helper.find_min_ir_version_for(model.opset_import)
    assert [i.name for i in model.graph.input] == ["x"]
    inits = {i.name: i for i in model.graph.initializer}
    for name, param in net.parameters_dict().items():          # dotted names, checkpoint bytes
        assert inits[name].raw_data == param.asnumpy().astype("<f4").tobytes()


def test_dynamic_batch_and_opset(tmp_path):
    net = MLP()
    x3 = RNG.normal(size=(3, 8)).astype(np.float32)
    x5 = RNG.normal(size=(5, 8)).astype(np.float32)
    (got,), model = roundtrip(net, [x3], tmp_path, feeds=[x5], dynamic_batch=True, opset_version=13)
    np.testing.assert_allclose(got, net(Tensor(x5)).asnumpy(), rtol=1e-5, atol=1e-5)
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert model.opset_import[0].version == 13
    with pytest.raises(ExportError, match="opset_version 7"):
        export(net, x3, file_name=str(tmp_path / "bad"), file_format="ONNX", opset_version=7)


class Bad(Cell):
    def __init__(self):
        super().__init__()
        self.inner = FnCell(lambda x: jax.lax.cbrt(x) + jax.lax.erf_inv(x * 0.1))
        self.other = FnCell(lambda x: jnp.sort(x, axis=-1))

    def construct(self, x):
        return self.other(self.inner(x)) + jax.lax.cbrt(x)


def test_unsupported_ops_are_listed_together_with_layers(tmp_path):
    with pytest.raises(UnsupportedOpError) as info:
        export(Bad(), F, file_name=str(tmp_path / "bad"), file_format="ONNX")
    message = str(info.value)
    assert "cbrt (in inner, <top level>)" in message and "erf_inv (in inner)" in message
    assert "sort (in other)" in message
    assert info.value.unsupported == {"cbrt": ["inner", "<top level>"], "erf_inv": ["inner"], "sort": ["other"]}
    assert not (tmp_path / "bad.onnx").exists()


def test_export_api_errors_and_registry(tmp_path):
    assert msjax_exporters.get_emitter("ONNX") is to_onnx
    assert msjax_exporters.suffix_for("GEIR") == ".air"
    from msjax.common.formats import EXPORT_FORMATS
    assert sorted(msjax_exporters.FORMATS) == sorted(EXPORT_FORMATS)     # one emitter per format the CLI offers
    export(MLP(), F @ np.ones((3, 8), np.float32), file_name=str(tmp_path / "plain"), file_format="ONNX")
    export(MLP(), F @ np.ones((3, 8), np.float32), file_name=str(tmp_path / "plain"), file_format="ONNX")
    assert ((tmp_path / "plain.onnx").stat().st_mode & 0o777) == 0o400       # read-only, as MindSpore
    with pytest.raises(ExportError, match="file_format 'PB'"):
        export(MLP(), F, file_name=str(tmp_path / "m"), file_format="PB")
    with pytest.raises(ExportError, match="customized encryption"):
        export(MLP(), np.ones((1, 8), np.float32), file_name=str(tmp_path / "m"), file_format="ONNX",
               enc_key=b"0" * 16, enc_mode="AES-GCM")
    export(MLP(), np.ones((1, 8), np.float32), file_name=str(tmp_path / "m.onnx"), file_format="ONNX",
           enc_key=b"k", enc_mode=lambda data, key: key + data)
    assert (tmp_path / "m.onnx").read_bytes()[:1] == b"k"
    with pytest.raises(ExportError, match="end with '.mindir'"):
        load(str(tmp_path / "m.onnx"))
    with pytest.raises(ExportError, match="does not exist"):
        load(str(tmp_path / "none.mindir"))


# ------------------------------------------------------------------------------ real networks
def assert_close_to_net(got, want):
    """Within 1e-5 of the output's scale (float32 accumulation order differs between runtimes)."""
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-5 * max(1.0, np.abs(want).max())


def test_lenet5_matches_mindspore_files(tmp_path, fixtures_dir):
    """MindSpore's LeNet5 weights, exported by us: MindSpore's output and MindSpore's ONNX bytes."""
    import msjax
    from msjax.models import LeNet5

    net = LeNet5()
    assert msjax.load_param_into_net(net, msjax.load_checkpoint(str(fixtures_dir / "lenet5.ckpt"))) == ([], [])
    x = np.load(fixtures_dir / "lenet5_input.npy")
    (got,), model = roundtrip(net, [Tensor(x)], tmp_path)
    assert_close_to_net(got, np.load(fixtures_dir / "lenet5_output.npy"))          # MindSpore's own output
    assert_close_to_net(got, net(Tensor(x)).asnumpy())
    theirs = onnx.load(str(fixtures_dir / "lenet5.onnx")).graph
    ours = [i for i in model.graph.initializer if not i.name.startswith("const")]
    assert [(i.name, i.raw_data) for i in ours] == [(i.name, i.raw_data) for i in theirs.initializer]
    assert [i.name for i in model.graph.input] == [i.name for i in theirs.input] == ["x"]
    assert {"Conv", "MaxPool", "MatMul"} <= {n.op_type for n in model.graph.node}


def test_lenet5_dynamic_batch(tmp_path):
    from msjax.models import LeNet5

    net = LeNet5()
    x3, x5 = (RNG.normal(size=(b, 1, 32, 32)).astype(np.float32) for b in (3, 5))
    (got,), _ = roundtrip(net, [x3], tmp_path, feeds=[x5], dynamic_batch=True)
    assert_close_to_net(got, net(Tensor(x5)).asnumpy())


def test_resnet50(tmp_path):
    from msjax.models import resnet50

    net = resnet50(class_num=10)
    x = RNG.normal(size=(1, 3, 32, 32)).astype(np.float32)
    (got,), model = roundtrip(net, [Tensor(x)], tmp_path)
    assert_close_to_net(got, net(Tensor(x)).asnumpy())
    names = [i.name for i in model.graph.initializer if not i.name.startswith("const")]
    assert names == list(net.parameters_dict())                  # all 267, in MindSpore's order


def _encoder_block():
    from msjax import nn

    class EncoderBlock(nn.Cell):
        def __init__(self, vocab=11, dim=8, heads=2, hidden=16):
            super().__init__()
            self.heads = heads
            self.embedding = nn.Embedding(vocab, dim)
            self.query, self.key, self.value = nn.Dense(dim, dim), nn.Dense(dim, dim), nn.Dense(dim, dim)
            self.out = nn.Dense(dim, dim)
            self.softmax = nn.Softmax(axis=-1)
            self.norm1, self.norm2 = nn.LayerNorm((dim,)), nn.LayerNorm((dim,))
            self.ff1, self.gelu, self.ff2 = nn.Dense(dim, hidden), nn.GELU(), nn.Dense(hidden, dim)
            self.dropout = nn.Dropout(p=0.1)

        def construct(self, ids):
            x = self.embedding(ids)
            b, t, d = x.shape

            def heads(v):
                return v.reshape(b, t, self.heads, d // self.heads).transpose(0, 2, 1, 3)

            q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
            attention = self.softmax(q @ k.transpose(0, 1, 3, 2) / np.sqrt(d // self.heads).astype(np.float32))
            h = (attention @ v).transpose(0, 2, 1, 3).reshape(b, t, d)
            x = self.norm1(x + self.dropout(self.out(h)))
            return self.norm2(x + self.dropout(self.ff2(self.gelu(self.ff1(x)))))

    return EncoderBlock()


def test_transformer_encoder_block(tmp_path):
    net = _encoder_block()
    ids = np.array([[1, 5, 7, 2], [0, 10, 3, 3]], np.int32)
    (got,), model = roundtrip(net, [Tensor(ids)], tmp_path)
    assert_close_to_net(got, net(Tensor(ids)).asnumpy())
    ops = {n.op_type for n in model.graph.node}
    assert {"GatherND", "MatMul", "Exp", "ReduceMax", "Tanh", "Sqrt"} <= ops
    assert [i.name for i in model.graph.input] == ["ids"]
