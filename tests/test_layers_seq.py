"""Recurrent, attention and Transformer layers against real MindSpore 2.10.

One row per case: (id, class name, constructor kwargs, call arguments, call kwargs). msjax builds
the layer and moves its parameters off their defaults; they are copied into the MindSpore layer by
position (after checking the names match), and one oracle call computes MindSpore's outputs and
the gradients of ``sum_i sum(out_i * cotangent_i)`` with respect to every float input and every
trainable parameter. Call arguments: ``F(shape)`` a float input, ``B(rows)`` a bool mask,
``I(values)`` an int32 tensor, ``M(rows)`` a float mask, ``None`` and tuples of those.
A constructor kwarg ``{"cell": name, "kwargs": {...}}`` is a layer built from that row.
"""
import json
import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import msjax
from msjax import nn
from msjax.common.tensor import unwrap
from msjax.errors import LayerArgumentError
from oracle import once_per_session, requires_mindspore, run_mindspore


def F(*shape):
    return {"kind": "float", "shape": list(shape)}


def B(rows):
    return {"kind": "bool", "value": rows}


def M(rows):
    return {"kind": "mask", "value": rows}


def I(values):  # noqa: E743
    return {"kind": "int", "value": values}


def T(*items):
    return {"kind": "tuple", "items": list(items)}


def cell(name, **kwargs):
    return {"cell": name, "kwargs": kwargs}


_CAUSAL = [[0.0, -1e9, -1e9], [0.0, 0.0, -1e9], [0.0, 0.0, 0.0]]
_KPM = [[False, False, False, True], [False, False, False, False]]
ENC = dict(d_model=8, nhead=2, dim_feedforward=16, dropout=0.0)

ROWS = [
    ("rnn_tanh", "RNN", dict(input_size=3, hidden_size=4), [F(5, 2, 3)], {}),
    ("rnn_relu_2l_bi_hx", "RNN", dict(input_size=3, hidden_size=4, num_layers=2, bidirectional=True,
                                      nonlinearity="relu"), [F(5, 2, 3), F(4, 2, 4)], {}),
    ("gru_bf_nobias", "GRU", dict(input_size=3, hidden_size=4, has_bias=False, batch_first=True), [F(2, 5, 3)], {}),
    ("gru_bi_seq", "GRU", dict(input_size=3, hidden_size=4, bidirectional=True),
     [F(5, 3, 3), None, I([5, 2, 4])], {}),
    ("lstm", "LSTM", dict(input_size=3, hidden_size=4), [F(5, 2, 3)], {}),
    ("lstm_2l_bi_bf_hx", "LSTM", dict(input_size=3, hidden_size=4, num_layers=2, bidirectional=True,
                                      batch_first=True), [F(2, 5, 3), T(F(4, 2, 4), F(4, 2, 4))], {}),
    ("lstm_seq_hx", "LSTM", dict(input_size=3, hidden_size=4), [F(5, 2, 3), T(F(1, 2, 4), F(1, 2, 4)), I([2, 5])],
     {}),
    ("rnncell", "RNNCell", dict(input_size=3, hidden_size=4), [F(2, 3), F(2, 4)], {}),
    ("rnncell_relu_nobias", "RNNCell", dict(input_size=3, hidden_size=4, has_bias=False, nonlinearity="relu"),
     [F(2, 3), F(2, 4)], {}),
    ("lstmcell", "LSTMCell", dict(input_size=3, hidden_size=4), [F(2, 3), T(F(2, 4), F(2, 4))], {}),
    ("grucell", "GRUCell", dict(input_size=3, hidden_size=4), [F(2, 3), F(2, 4)], {}),
    ("mha_cross", "MultiheadAttention", dict(embed_dim=8, num_heads=2), [F(3, 2, 8), F(4, 2, 8), F(4, 2, 8)], {}),
    ("mha_kvdim_bf_kpm", "MultiheadAttention", dict(embed_dim=8, num_heads=2, kdim=3, vdim=5, batch_first=True),
     [F(2, 3, 8), F(2, 4, 3), F(2, 4, 5), B(_KPM)], dict(average_attn_weights=False)),
    ("mha_biaskv_zero_masks", "MultiheadAttention", dict(embed_dim=8, num_heads=2, add_bias_kv=True,
                                                         add_zero_attn=True, has_bias=False),
     [F(3, 2, 8), F(4, 2, 8), F(4, 2, 8), B(_KPM), True, M([[0.0, -1.0, 0.5, 0.0]] * 3)], {}),
    ("mha_unbatched_boolmask", "MultiheadAttention", dict(embed_dim=8, num_heads=4),
     [F(3, 8), F(4, 8), F(4, 8)], dict(attn_mask=B([[False, True, False, False]] * 3))),
    ("mha_3d_mask_noweights", "MultiheadAttention", dict(embed_dim=8, num_heads=2),
     [F(3, 2, 8), F(3, 2, 8), F(3, 2, 8)], dict(attn_mask=M([_CAUSAL] * 4), need_weights=False)),
    ("enc", "TransformerEncoderLayer", ENC, [F(3, 2, 8)], {}),
    ("enc_gelu_normfirst_bf_kpm", "TransformerEncoderLayer", dict(ENC, activation="gelu", norm_first=True,
                                                                  batch_first=True),
     [F(2, 4, 8)], dict(src_key_padding_mask=B(_KPM))),
    ("dec_causal", "TransformerDecoderLayer", ENC, [F(3, 2, 8), F(4, 2, 8)], dict(tgt_mask=M(_CAUSAL))),
    ("dec_normfirst_gelu_bf", "TransformerDecoderLayer", dict(ENC, norm_first=True, activation="gelu",
                                                              batch_first=True),
     [F(2, 3, 8), F(2, 4, 8)], dict(memory_key_padding_mask=B(_KPM))),
    ("encoder_2_norm", "TransformerEncoder", dict(encoder_layer=cell("TransformerEncoderLayer", **ENC),
                                                  num_layers=2, norm=cell("LayerNorm", normalized_shape=[8])),
     [F(3, 2, 8)], dict(src_mask=M(_CAUSAL))),
    ("decoder_2", "TransformerDecoder", dict(decoder_layer=cell("TransformerDecoderLayer", **ENC), num_layers=2),
     [F(3, 2, 8), F(4, 2, 8)], {}),
    ("transformer", "Transformer", dict(ENC, num_encoder_layers=1, num_decoder_layers=1),
     [F(4, 2, 8), F(3, 2, 8)], dict(tgt_mask=M(_CAUSAL))),
]

MS_CODE = """
import json, tempfile
# GRAPH_MODE compiles construct from its source file, so each row's loss cell lives in a real file
helper_dir = tempfile.mkdtemp()
with open(os.path.join(helper_dir, "ms_seq_loss_cells.py"), "w") as fh:
    fh.write(inputs["helper"].item())
sys.path.insert(0, helper_dir)
import ms_seq_loss_cells as cells
spec = json.loads(inputs["spec"].item())

def build(cls, kwargs):
    kwargs = {k: (build(v["cell"], v["kwargs"]) if isinstance(v, dict) else v) for k, v in kwargs.items()}
    if "normalized_shape" in kwargs:
        kwargs["normalized_shape"] = tuple(kwargs["normalized_shape"])
    return getattr(nn, cls)(**kwargs)

def run_row(index, rid, cls, kwargs, nparams, nargs, floats, ncot):
    net = build(cls, kwargs)
    named = list(net.parameters_and_names())
    outputs[rid + "__names"] = np.array([n for n, _ in named])
    assert len(named) == nparams, [n for n, _ in named]
    for i, (_, p) in enumerate(named):
        p.set_data(Tensor(inputs[f"{rid}__p{i}"]))
    net.set_train(False)
    args = [Tensor(inputs[f"{rid}__a{i}"]) for i in range(nargs)]
    cots = [Tensor(inputs[f"{rid}__c{i}"]) for i in range(ncot)]
    loss_cell = getattr(cells, f"Loss{index}")(net, *cots)
    grad_fn = ms.value_and_grad(loss_cell, grad_position=tuple(floats), weights=net.trainable_params(),
                                has_aux=True)
    (_, outs), (gx, gw) = grad_fn(*args)
    outs = outs if isinstance(outs, tuple) else (outs,)
    gx = gx if isinstance(gx, tuple) else (gx,)
    for i, o in enumerate(outs):
        outputs[f"{rid}__out{i}"] = o.asnumpy()
    for i, g in enumerate(gx):
        outputs[f"{rid}__gx{i}"] = g.asnumpy()
    for i, g in enumerate(gw):
        outputs[f"{rid}__gw{i}"] = g.asnumpy()

for index, row in enumerate(spec):
    try:
        run_row(index, *row)
    except Exception as exc:  # one failing row must not hide the others
        outputs[f"{row[0]}__error"] = np.array(f"{type(exc).__name__}: {exc}"[-3000:])

# the files msjax.export wrote, run by MindSpore's own loader
for key in json.loads(inputs["mindir"].item()):
    graph = nn.GraphCell(ms.load(str(inputs[key + "__file"])))
    outputs[key + "__mindir"] = graph(*[Tensor(inputs[key + "__in"])]).asnumpy()
"""


def _loss_cell_source(index, layout, nargs, kw_names, kw_static, paths):
    """MindSpore source of one row's loss cell: call the net as the row says, flatten, dot with cotangents."""
    counter = iter(range(nargs))

    def expr(a):
        if a == "leaf":
            return f"a{next(counter)}"
        if isinstance(a, list):
            return "(" + ", ".join(expr(x) for x in a) + ",)"
        return repr(a)
    call = [expr(a) for a in layout]
    call += [f"{k}=a{next(counter)}" for k in kw_names] + [f"{k}={v!r}" for k, v in kw_static.items()]
    params = ", ".join(f"a{i}" for i in range(nargs))
    leaves = ", ".join("out" + "".join(f"[{i}]" for i in path) for path in paths)
    loss = " + ".join(f"(leaves[{i}] * self.c{i}).sum()" for i in range(len(paths)))
    cots = ", ".join(f"c{i}" for i in range(len(paths)))
    sets = "".join(f"\n        self.c{i} = c{i}" for i in range(len(paths)))
    return (f"\n\nclass Loss{index}(nn.Cell):\n    def __init__(self, net, {cots}):\n        super().__init__()"
            f"\n        self.net = net{sets}\n\n    def construct(self, {params}):\n"
            f"        out = self.net({', '.join(call)})\n        leaves = ({leaves},)\n"
            f"        return {loss}, leaves\n")


def _build_cell(cls, kwargs):
    kwargs = {k: (_build_cell(v["cell"], v["kwargs"]) if isinstance(v, dict) else v) for k, v in kwargs.items()}
    if "normalized_shape" in kwargs:
        kwargs["normalized_shape"] = tuple(kwargs["normalized_shape"])
    return getattr(nn, cls)(**kwargs)


def _array(spec, rng):
    if spec["kind"] == "float":
        return rng.normal(0, 1, spec["shape"]).astype(np.float32)
    if spec["kind"] == "bool":
        return np.array(spec["value"], bool)
    if spec["kind"] == "int":
        return np.array(spec["value"], np.int32)
    return np.array(spec["value"], np.float32)


def _prepare(row):
    """The msjax cell (parameters moved), the array inputs (positional, then keyword) and their layout."""
    rid, cls, kwargs, args, call_kwargs = row
    msjax.set_seed(zlib.crc32(rid.encode()))
    net = _build_cell(cls, kwargs)
    rng = np.random.default_rng(len(rid))
    for _, p in net.parameters_and_names():
        p.set_data((np.asarray(p.asnumpy()) + rng.normal(0, 0.3, p.shape)).astype(np.float32))
    leaves = []

    def walk(a):
        if isinstance(a, dict) and a["kind"] == "tuple":
            return [walk(x) for x in a["items"]]
        if isinstance(a, dict):
            leaves.append(_array(a, rng))
            return "leaf"
        return a

    layout = [walk(a) for a in args]
    kw_names = [k for k, v in call_kwargs.items() if isinstance(v, dict)]
    leaves += [_array(call_kwargs[k], rng) for k in kw_names]
    kw_static = {k: v for k, v in call_kwargs.items() if not isinstance(v, dict)}
    return net, leaves, layout, kw_names, kw_static


def _call(module, layout, leaves, kw_names, kw_static):
    it = iter(leaves)

    def fill(a):
        if a == "leaf":
            return next(it)
        return tuple(fill(x) for x in a) if isinstance(a, list) else a
    args = [fill(a) for a in layout]
    return module(*args, **{k: next(it) for k in kw_names}, **kw_static)


def _jax_run(net, leaves, layout, kw_names, kw_static, rid):
    """Outputs, float-input grads and trainable-parameter grads of sum(out * cotangent), jitted;
    plus the cotangents, the float inputs' positions and each output's index path."""
    net.set_train(False)
    graphdef, state, rest = nnx.split(net, nnx.Param, ...)
    floats = [i for i, x in enumerate(leaves) if x.dtype == np.float32]

    def forward(state, float_leaves):
        module = nnx.merge(graphdef, state, rest)
        all_leaves = [jnp.asarray(x) for x in leaves]
        for i, x in zip(floats, float_leaves):
            all_leaves[i] = x
        return unwrap(_call(module, layout, all_leaves, kw_names, kw_static))

    float_leaves = [jnp.asarray(leaves[i]) for i in floats]
    shapes, _ = jax.tree_util.tree_flatten_with_path(jax.eval_shape(forward, state, float_leaves))
    paths = [[k.idx for k in path] for path, _ in shapes]
    crng = np.random.default_rng(zlib.crc32(rid.encode()) + 1)
    cots = [crng.normal(0, 1, s.shape).astype(np.float32) for _, s in shapes]

    def loss(state, float_leaves):
        outs = jax.tree.leaves(forward(state, float_leaves))
        return sum(jnp.sum(o * c) for o, c in zip(outs, cots)), outs

    (gstate, gx), outs = jax.jit(jax.grad(loss, argnums=(0, 1), has_aux=True))(state, float_leaves)
    gnet = nnx.merge(graphdef, gstate, rest)
    gw = [np.asarray(p.get_value()) for _, p in gnet.parameters_and_names() if p.requires_grad]
    return [np.asarray(o) for o in outs], [np.asarray(g) for g in gx], gw, cots, floats, paths


class Wrapped(nn.Cell):
    """One layer called on one tensor, its first output kept (what export needs)."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def construct(self, x):
        out = self.layer(x)
        return out[0] if isinstance(out, tuple) else out


def _exported(layer, shape):
    msjax.set_seed(5)
    net = Wrapped(layer).set_train(False)
    return net, np.random.default_rng(5).normal(0, 1, shape).astype(np.float32)


#: networks exported to MINDIR in the fixture and run by MindSpore in the same oracle call
EXPORTED = {
    "encoder_layer": _exported(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0), (3, 2, 8)),
    "encoder_layer_gelu_normfirst": _exported(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, activation="gelu",
                                                                         norm_first=True), (3, 2, 8)),
}


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """msjax and MindSpore results for every row and exported file, MindSpore's in one oracle call
    (once per session: xdist workers share it)."""
    return once_per_session(tmp_path_factory, "layers_seq_compared", lambda: _compare(tmp_path_factory))


def _compare(tmp_path_factory):
    ours, inputs, spec, helper = {}, {}, [], "from mindspore import nn\n"
    for index, row in enumerate(ROWS):
        rid, cls, kwargs = row[:3]
        net, leaves, layout, kw_names, kw_static = _prepare(row)
        params = [np.asarray(p.asnumpy()) for _, p in net.parameters_and_names()]
        for i, p in enumerate(params):
            inputs[f"{rid}__p{i}"] = p
        for i, x in enumerate(leaves):
            inputs[f"{rid}__a{i}"] = x
        outs, gx, gw, cots, floats, paths = _jax_run(net, leaves, layout, kw_names, kw_static, rid)
        for i, c in enumerate(cots):
            inputs[f"{rid}__c{i}"] = c
        ours[rid] = (outs, gx, gw, [n for n, _ in net.parameters_and_names()])
        helper += _loss_cell_source(index, layout, len(leaves), kw_names, kw_static, paths)
        spec.append([rid, cls, kwargs, len(params), len(leaves), floats, len(cots)])
    inputs["spec"] = np.array(json.dumps(spec))
    inputs["helper"] = np.array(helper)
    export_dir = tmp_path_factory.mktemp("seq_export")
    for key, (net, x) in EXPORTED.items():
        file = export_dir / key
        msjax.export(net, msjax.Tensor(x), file_name=str(file), file_format="MINDIR")
        inputs[key + "__file"], inputs[key + "__in"] = np.array(str(file) + ".mindir"), x
        ours[key + "__mindir"] = net(msjax.Tensor(x)).asnumpy()
    inputs["mindir"] = np.array(json.dumps(list(EXPORTED)))
    return ours, run_mindspore(MS_CODE, inputs)


def _close(actual, expected, what):
    scale = max(1.0, float(np.max(np.abs(expected))) if expected.size else 1.0)
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=3e-5 * scale, err_msg=what)


@requires_mindspore
@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_layer_matches_mindspore(compared, row):
    ours, theirs = compared
    rid = row[0]
    outs, gx, gw, names = ours[rid]
    assert names == list(theirs[rid + "__names"]), "parameter names/order differ from MindSpore"
    assert rid + "__error" not in theirs, f"MindSpore failed: {theirs.get(rid + '__error')}"
    assert f"{rid}__out{len(outs)}" not in theirs and f"{rid}__out{len(outs) - 1}" in theirs, "output count"
    for i, o in enumerate(outs):
        assert o.shape == theirs[f"{rid}__out{i}"].shape, f"output {i} shape"
        _close(o, theirs[f"{rid}__out{i}"], f"{rid}: output {i}")
    for i, g in enumerate(gx):
        _close(g, theirs[f"{rid}__gx{i}"], f"{rid}: gradient of float input {i}")
    assert f"{rid}__gw{len(gw)}" not in theirs, "MindSpore has more trainable parameters"
    assert len(gw) == len(names) and f"{rid}__gw{len(gw) - 1}" in theirs
    for i, (g, name) in enumerate(zip(gw, names)):
        _close(g, theirs[f"{rid}__gw{i}"], f"{rid}: gradient of {name}")


def _bad(fn, error, match):
    with pytest.raises(error, match=match):
        fn()


BAD_ARGUMENTS = [
    (lambda: nn.LSTM(3, 4, dropout=0), TypeError, "LSTM: 'dropout' must be a float"),
    (lambda: nn.GRU(3, 0), LayerArgumentError, "GRU: 'hidden_size' must be > 0"),
    (lambda: nn.RNN(3, 2.0), TypeError, "RNN: 'hidden_size' must be an int"),
    (lambda: nn.LSTM(3, 4, has_bias=1), TypeError, "'has_bias' must be a bool"),
    (lambda: nn.LSTM(3, 4, dropout=1.0), LayerArgumentError, r"'dropout' must be in \[0, 1\)"),
    (lambda: nn.RNN(3, 4, nonlinearity="sigmoid"), LayerArgumentError, "'nonlinearity' must be 'tanh' or 'relu'"),
    (lambda: nn.RNNCell(3, 4, nonlinearity="gelu"), LayerArgumentError, "RNNCell: 'nonlinearity'"),
    (lambda: nn.MultiheadAttention(7, 2), LayerArgumentError, "'embed_dim' .7. must be divisible by 'num_heads'"),
    (lambda: nn.TransformerEncoderLayer(8, 2, 16, activation=nn.ReLU()), LayerArgumentError,
     "refuses other callables and Cell instances"),
    (lambda: nn.TransformerDecoderLayer(8, 2, 16, activation="tanh"), LayerArgumentError,
     "'activation' must be 'relu' or 'gelu'"),
    (lambda: nn.TransformerEncoder(nn.TransformerDecoderLayer(8, 2, 16), 2), TypeError,
     "must be a TransformerEncoderLayer"),
]


@pytest.mark.parametrize("fn, error, match", BAD_ARGUMENTS, ids=[b[2][:30] for b in BAD_ARGUMENTS])
def test_bad_arguments_raise_errors_naming_the_layer_and_argument(fn, error, match):
    _bad(fn, error, match)


def test_bad_inputs_are_named():
    x = msjax.Tensor(np.ones((5, 2, 3), np.float32))
    _bad(lambda: nn.LSTM(3, 4)(x, (msjax.Tensor(np.ones((1, 3, 4), np.float32)),) * 2), LayerArgumentError,
         r"'hx\[0\]' has shape \(1, 3, 4\), expected \(1, 2, 4\)")
    _bad(lambda: nn.LSTM(3, 4)(x, msjax.Tensor(np.ones((1, 2, 4), np.float32))), TypeError, "tuple .h_0, c_0.")
    _bad(lambda: nn.GRU(3, 4)(x, None, msjax.Tensor(np.array([3.0, 5.0], np.float32))), TypeError,
         "'seq_length' must be an int32/int64")
    _bad(lambda: nn.GRU(3, 4)(msjax.Tensor(np.ones((5, 3), np.float32))), LayerArgumentError, "'x' must be 3-D")
    _bad(lambda: nn.GRU(3, 4)(msjax.Tensor(np.ones((5, 2, 3), np.int32))), TypeError, "float16/float32")
    q = msjax.Tensor(np.ones((3, 2, 8), np.float32))
    mha = nn.MultiheadAttention(8, 2)
    _bad(lambda: mha(q, q, q, key_padding_mask=msjax.Tensor(np.zeros((2, 3), np.int32))), LayerArgumentError,
         "'key_padding_mask' must be bool or float")
    _bad(lambda: mha(q, q, q, attn_mask=msjax.Tensor(np.zeros((2, 3), np.float32))), LayerArgumentError,
         r"'attn_mask' has shape \(2, 3\), expected \(3, 3\) or \(4, 3, 3\)")


def test_default_initialisers_follow_mindspore():
    bound = 1 / np.sqrt(50)
    lstm = nn.LSTM(7, 50, bidirectional=True)
    values = np.concatenate([p.asnumpy().ravel() for p in lstm.get_parameters()])
    assert 0.95 * bound < np.abs(values).max() <= bound       # Uniform(1/sqrt(hidden_size)) for all
    assert nn.GRUCell(3, 50).weight_hh.shape == (150, 50)
    mha = nn.MultiheadAttention(64, 4)
    assert not mha.in_proj_bias.asnumpy().any()               # zeros
    w = mha.in_proj_weight.asnumpy()                          # XavierUniform: bound sqrt(6 / (fan_in + fan_out))
    assert 0.95 * np.sqrt(6 / (64 + 192)) < np.abs(w).max() <= np.sqrt(6 / (64 + 192))
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16), 2)
    first, second = (dict(layer.parameters_and_names()) for layer in enc.layers)
    assert all(np.array_equal(first[k].asnumpy(), second[k].asnumpy()) for k in first)   # copies of one layer
    assert first["dense1.weight"] is not second["dense1.weight"]
    t = nn.Transformer(8, 2, 1, 1, 16)
    dense = t.encoder.layers[0].dense1.weight.asnumpy()       # redrawn: XavierUniform(16, 8)
    assert np.abs(dense).max() <= np.sqrt(6 / 24) and np.abs(dense).max() > 1 / np.sqrt(8)


def test_compiled_call_matches_inline_and_dropout_only_trains():
    x = msjax.Tensor(np.random.default_rng(0).normal(size=(5, 2, 3)).astype(np.float32))
    lstm = nn.LSTM(3, 4, num_layers=2, dropout=0.5)
    with_context = msjax.context.get_context("mode")
    eval_out = lstm(x)[0].asnumpy()                           # GRAPH_MODE: one jitted call
    msjax.context.set_context(mode=msjax.context.PYNATIVE_MODE)
    try:
        np.testing.assert_allclose(lstm(x)[0].asnumpy(), eval_out, rtol=1e-6, atol=1e-6)
    finally:
        msjax.context.set_context(mode=with_context)
    lstm.set_train(True)
    first, second = lstm(x)[0].asnumpy(), lstm(x)[0].asnumpy()
    assert not np.allclose(first, eval_out) and not np.allclose(first, second)
    q = msjax.Tensor(np.ones((3, 2, 8), np.float32))
    mha = nn.MultiheadAttention(8, 2, dropout=0.5)
    out, weights = mha(q, q, q)
    np.testing.assert_allclose(weights.asnumpy().sum(-1), 1.0, rtol=1e-5)
    mha.set_train(True)
    assert not np.allclose(mha(q, q, q)[1].asnumpy().sum(-1), 1.0)


#: (msjax layer, its PyTorch twin, input shapes, how to call each) for the conversion round trip
TORCH_PAIRS = [
    ("lstm_2l_bi", lambda: nn.LSTM(3, 4, num_layers=2, bidirectional=True),
     lambda T: T.LSTM(3, 4, num_layers=2, bidirectional=True), [(5, 2, 3)]),
    ("gru_bf", lambda: nn.GRU(3, 4, batch_first=True), lambda T: T.GRU(3, 4, batch_first=True), [(2, 5, 3)]),
    ("rnn_relu", lambda: nn.RNN(3, 4, nonlinearity="relu"), lambda T: T.RNN(3, 4, nonlinearity="relu"),
     [(5, 2, 3)]),
    ("mha", lambda: nn.MultiheadAttention(8, 2, kdim=3, vdim=5),
     lambda T: T.MultiheadAttention(8, 2, kdim=3, vdim=5), [(3, 2, 8), (4, 2, 3), (4, 2, 5)]),
    ("encoder_layer", lambda: nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0),
     lambda T: T.TransformerEncoderLayer(8, 2, 16, dropout=0.0), [(3, 2, 8)]),
    ("transformer", lambda: nn.Transformer(8, 2, 1, 1, 16, dropout=0.0, activation="gelu"),
     lambda T: T.Transformer(8, 2, 1, 1, 16, dropout=0.0, activation="gelu"), [(4, 2, 8), (3, 2, 8)]),
]


@pytest.mark.parametrize("ms_layer, torch_layer, shapes", [p[1:] for p in TORCH_PAIRS],
                         ids=[p[0] for p in TORCH_PAIRS])
def test_torch_weights_convert_by_name_and_compute_the_same(tmp_path, ms_layer, torch_layer, shapes):
    """names_of_net covers the torch state dict exactly; the converted .ckpt loads strictly and
    gives torch's output (gate orders, packed projections and LayerNorm eps agree)."""
    torch = pytest.importorskip("torch", reason="install the test extras: pip install -e '.[test]'")
    from msjax.checkpoint.torch_format import convert_torch_checkpoint, names_of_net
    torch.manual_seed(0)
    tnet, net = torch_layer(torch.nn).eval(), ms_layer()
    with torch.no_grad():
        for p in tnet.parameters():
            p.add_(torch.randn_like(p) * 0.2)        # off the defaults (zero biases, ones in the norms)
    state = tnet.state_dict()
    expected = names_of_net(net)
    assert set(expected) == set(state) and set(expected.values()) == set(net.parameters_dict())
    torch.save(state, tmp_path / "w.pth")
    convert_torch_checkpoint(tmp_path / "w.pth", tmp_path / "w.ckpt", net=net)
    assert msjax.load_param_into_net(net, msjax.load_checkpoint(str(tmp_path / "w.ckpt")),
                                     strict_load=True) == ([], [])
    rng = np.random.default_rng(1)
    xs = [rng.normal(0, 1, s).astype(np.float32) for s in shapes]
    with torch.no_grad():
        theirs = tnet(*[torch.from_numpy(x) for x in xs])
    ours = net(*[msjax.Tensor(x) for x in xs])
    theirs = [t for t in jax.tree.leaves(theirs, is_leaf=lambda t: isinstance(t, torch.Tensor))]
    ours = jax.tree.leaves(unwrap(ours))
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(np.asarray(a), b.numpy(), rtol=1e-4, atol=1e-5)


@requires_mindspore
@pytest.mark.parametrize("key", list(EXPORTED))
def test_exported_mindir_runs_in_mindspore(compared, key):
    ours, theirs = compared
    np.testing.assert_allclose(theirs[key + "__mindir"], ours[key + "__mindir"], rtol=1e-5, atol=1e-5)


EXPORTED_ONNX = [
    ("encoder_layer", lambda: nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0), (3, 2, 8)),
    ("lstm", lambda: nn.LSTM(3, 4), (5, 2, 3)),          # capture unrolls its lax.scan
]


@pytest.mark.parametrize("key, layer, shape", EXPORTED_ONNX, ids=["encoder_layer", "lstm"])
def test_exported_onnx_runs_in_onnxruntime(tmp_path, key, layer, shape):
    ort = pytest.importorskip("onnxruntime")
    net, x = _exported(layer(), shape)
    msjax.export(net, msjax.Tensor(x), file_name=str(tmp_path / key), file_format="ONNX")
    session = ort.InferenceSession(str(tmp_path / f"{key}.onnx"), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {session.get_inputs()[0].name: x})
    np.testing.assert_allclose(out, net(msjax.Tensor(x)).asnumpy(), rtol=1e-5, atol=1e-5)
