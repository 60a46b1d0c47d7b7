"""Every layer against real MindSpore 2.10: same input, same parameters -> same output and gradients.

One row per layer: (id, class name, kwargs, input shape, modes). msjax builds each layer, its
parameters are copied into the MindSpore layer, and one oracle call computes MindSpore's forward
output, input gradient, parameter gradients of ``sum(out * cotangent)`` and, in train mode, the
updated BatchNorm statistics.
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
from oracle import requires_mindspore, run_mindspore

ROWS = [
    ("dense", "Dense", dict(in_channels=6, out_channels=4), (3, 6), ("eval",)),
    ("dense_relu_3d", "Dense", dict(in_channels=6, out_channels=4, activation="relu"), (2, 3, 6), ("eval",)),
    ("dense_nobias", "Dense", dict(in_channels=5, out_channels=3, has_bias=False), (4, 5), ("eval",)),
    ("conv_same_s2", "Conv2d", dict(in_channels=3, out_channels=4, kernel_size=3, stride=2, has_bias=True),
     (2, 3, 7, 8), ("eval",)),
    ("conv_valid_dil", "Conv2d", dict(in_channels=3, out_channels=4, kernel_size=(3, 2), pad_mode="valid",
                                      dilation=2), (2, 3, 9, 9), ("eval",)),
    ("conv_pad_group", "Conv2d", dict(in_channels=4, out_channels=6, kernel_size=3, pad_mode="pad",
                                      padding=(1, 0, 2, 1), group=2, has_bias=True), (2, 4, 6, 6), ("eval",)),
    ("conv_pad_int", "Conv2d", dict(in_channels=2, out_channels=3, kernel_size=3, stride=2, pad_mode="pad",
                                    padding=1), (1, 2, 6, 6), ("eval",)),
    ("bn2d", "BatchNorm2d", dict(num_features=3, momentum=0.8), (4, 3, 5, 5), ("train", "eval")),
    ("bn2d_eps", "BatchNorm2d", dict(num_features=2, eps=1e-4), (3, 2, 2, 3), ("train",)),
    ("bn1d", "BatchNorm1d", dict(num_features=5), (6, 5), ("train", "eval")),
    ("relu", "ReLU", {}, (3, 5), ("eval",)),
    ("gelu", "GELU", {}, (3, 5), ("eval",)),
    ("gelu_exact", "GELU", dict(approximate=False), (3, 5), ("eval",)),
    ("softmax", "Softmax", {}, (3, 5), ("eval",)),
    ("softmax_axis0", "Softmax", dict(axis=0), (3, 5), ("eval",)),
    ("sigmoid", "Sigmoid", {}, (3, 5), ("eval",)),
    ("tanh", "Tanh", {}, (3, 5), ("eval",)),
    ("maxpool_valid", "MaxPool2d", dict(kernel_size=2, stride=2), (2, 3, 6, 7), ("eval",)),
    ("maxpool_same", "MaxPool2d", dict(kernel_size=3, stride=2, pad_mode="same"), (2, 3, 7, 8), ("eval",)),
    ("maxpool_pad", "MaxPool2d", dict(kernel_size=3, stride=2, pad_mode="pad", padding=1), (2, 2, 7, 7), ("eval",)),
    ("avgpool_valid", "AvgPool2d", dict(kernel_size=2, stride=2), (2, 3, 6, 6), ("eval",)),
    ("avgpool_same", "AvgPool2d", dict(kernel_size=3, stride=2, pad_mode="same"), (2, 3, 7, 8), ("eval",)),
    ("avgpool_pad", "AvgPool2d", dict(kernel_size=3, stride=1, pad_mode="pad", padding=1), (1, 2, 5, 5), ("eval",)),
    ("avgpool_pad_excl", "AvgPool2d", dict(kernel_size=3, stride=2, pad_mode="pad", padding=1,
                                           count_include_pad=False), (1, 2, 5, 5), ("eval",)),
    ("flatten", "Flatten", {}, (2, 3, 4), ("eval",)),
    ("dropout_eval", "Dropout", dict(p=0.3), (2, 5), ("eval",)),
    ("embedding", "Embedding", dict(vocab_size=10, embedding_size=4), (2, 3), ("eval",)),
    ("embedding_onehot", "Embedding", dict(vocab_size=7, embedding_size=3, use_one_hot=True, padding_idx=0),
     (4,), ("eval",)),
    ("layernorm", "LayerNorm", dict(normalized_shape=(5,)), (3, 5), ("eval",)),
    ("layernorm_2d", "LayerNorm", dict(normalized_shape=(4, 5), begin_norm_axis=1, begin_params_axis=1,
                                       epsilon=1e-5), (3, 4, 5), ("eval",)),
    ("conv1d_same_s2", "Conv1d", dict(in_channels=3, out_channels=4, kernel_size=3, stride=2, has_bias=True),
     (2, 3, 9), ("eval",)),
    ("conv1d_pad_group_dil", "Conv1d", dict(in_channels=4, out_channels=6, kernel_size=3, pad_mode="pad", padding=2,
                                            dilation=2, group=2), (2, 4, 8), ("eval",)),
    ("conv1d_valid", "Conv1d", dict(in_channels=2, out_channels=3, kernel_size=4, pad_mode="valid"), (1, 2, 7),
     ("eval",)),
    ("conv3d_same_s2", "Conv3d", dict(in_channels=2, out_channels=3, kernel_size=3, stride=2, has_bias=True),
     (1, 2, 5, 6, 5), ("eval",)),
    ("conv3d_pad", "Conv3d", dict(in_channels=2, out_channels=4, kernel_size=(2, 3, 2), pad_mode="pad",
                                  padding=(1, 0, 1, 1, 0, 1)), (1, 2, 4, 6, 5), ("eval",)),
    ("conv3d_valid_group", "Conv3d", dict(in_channels=4, out_channels=4, kernel_size=2, pad_mode="valid", group=2,
                                          has_bias=True), (1, 4, 3, 4, 3), ("eval",)),
    ("convT_same_s2", "Conv2dTranspose", dict(in_channels=3, out_channels=4, kernel_size=3, stride=2, has_bias=True),
     (2, 3, 4, 5), ("eval",)),
    ("convT_valid_group", "Conv2dTranspose", dict(in_channels=4, out_channels=6, kernel_size=(3, 2), stride=2,
                                                  pad_mode="valid", group=2), (1, 4, 3, 4), ("eval",)),
    ("convT_pad_dil", "Conv2dTranspose", dict(in_channels=2, out_channels=3, kernel_size=3, stride=2, pad_mode="pad",
                                              padding=(1, 0, 1, 2), dilation=2, has_bias=True), (1, 2, 4, 4),
     ("eval",)),
    ("convT_outpad", "Conv2dTranspose", dict(in_channels=2, out_channels=2, kernel_size=3, stride=2, pad_mode="pad",
                                             padding=1, output_padding=1, has_bias=True), (1, 2, 3, 3), ("eval",)),
    ("bn3d", "BatchNorm3d", dict(num_features=3, momentum=0.8), (4, 3, 2, 3, 2), ("train", "eval")),
    ("groupnorm", "GroupNorm", dict(num_groups=2, num_channels=4), (2, 4, 3, 3), ("eval",)),
    ("groupnorm_fixed", "GroupNorm", dict(num_groups=3, num_channels=3, eps=1e-3, affine=False), (2, 3, 2, 4),
     ("eval",)),
    ("avgpool1d_valid", "AvgPool1d", dict(kernel_size=3, stride=2), (2, 3, 9), ("eval",)),
    ("avgpool1d_same", "AvgPool1d", dict(kernel_size=3, stride=2, pad_mode="same"), (2, 3, 8), ("eval",)),
    ("avgpool1d_pad_excl", "AvgPool1d", dict(kernel_size=3, stride=2, pad_mode="pad", padding=1,
                                             count_include_pad=False), (2, 2, 7), ("eval",)),
    ("maxpool1d_valid", "MaxPool1d", dict(kernel_size=2, stride=2), (2, 3, 9), ("eval",)),
    ("maxpool1d_same_2d", "MaxPool1d", dict(kernel_size=3, stride=2, pad_mode="same"), (3, 8), ("eval",)),
    ("maxpool1d_pad", "MaxPool1d", dict(kernel_size=3, stride=2, pad_mode="pad", padding=1), (2, 2, 7), ("eval",)),
    ("adaptive_avg", "AdaptiveAvgPool2d", dict(output_size=(2, 3)), (2, 3, 5, 7), ("eval",)),
    ("adaptive_avg_none", "AdaptiveAvgPool2d", dict(output_size=(None, 3)), (1, 2, 4, 5), ("eval",)),
    ("adaptive_avg_3d", "AdaptiveAvgPool2d", dict(output_size=3), (2, 5, 4), ("eval",)),
    ("adaptive_max", "AdaptiveMaxPool2d", dict(output_size=(2, 3)), (2, 3, 5, 7), ("eval",)),
    ("adaptive_max_int", "AdaptiveMaxPool2d", dict(output_size=3), (1, 2, 7, 6), ("eval",)),
    ("upsample_nearest", "Upsample", dict(size=(5, 7)), (1, 2, 3, 4), ("eval",)),
    ("upsample_nearest_down", "Upsample", dict(size=(2, 3)), (1, 2, 5, 7), ("eval",)),
    ("upsample_bilinear", "Upsample", dict(size=(5, 7), mode="bilinear"), (1, 2, 3, 4), ("eval",)),
    ("upsample_bilinear_ac", "Upsample", dict(size=(5, 7), mode="bilinear", align_corners=True), (1, 2, 3, 4),
     ("eval",)),
    ("upsample_bilinear_down", "Upsample", dict(size=(2, 3), mode="bilinear", align_corners=False), (1, 1, 5, 7),
     ("eval",)),
    ("pad_constant", "Pad", dict(paddings=((0, 0), (0, 0), (1, 2), (2, 1))), (1, 2, 3, 4), ("eval",)),
    ("pad_reflect", "Pad", dict(paddings=((0, 0), (1, 1), (2, 3)), mode="REFLECT"), (2, 3, 4), ("eval",)),
    ("pad_symmetric", "Pad", dict(paddings=((1, 3), (2, 4)), mode="SYMMETRIC"), (3, 4), ("eval",)),
    ("prelu", "PReLU", dict(channel=3), (2, 3, 4), ("eval",)),
    ("prelu_shared", "PReLU", dict(w=0.1), (3, 5), ("eval",)),
    ("leakyrelu", "LeakyReLU", {}, (3, 5), ("eval",)),
    ("leakyrelu_big", "LeakyReLU", dict(alpha=1.5), (3, 5), ("eval",)),
    ("relu6", "ReLU6", {}, (3, 5), ("eval",)),
    ("hswish", "HSwish", {}, (3, 5), ("eval",)),
    ("hsigmoid", "HSigmoid", {}, (3, 5), ("eval",)),
    ("silu", "SiLU", {}, (3, 5), ("eval",)),
    ("mish", "Mish", {}, (3, 5), ("eval",)),
    ("logsoftmax", "LogSoftmax", {}, (3, 5), ("eval",)),
    ("logsoftmax_axis0", "LogSoftmax", dict(axis=0), (3, 5), ("eval",)),
    ("identity", "Identity", {}, (3, 5), ("eval",)),
    ("dropout1d_eval", "Dropout1d", dict(p=0.4), (2, 3, 4), ("eval",)),
    ("dropout2d_eval", "Dropout2d", dict(p=0.4), (2, 3, 2, 2), ("eval",)),
]
#: inputs are scaled so the activations' kinks and saturations (relu6 at 6, hswish at +-3) are crossed
INPUT_SCALE = {"ReLU6": 4.0, "HSwish": 3.0, "HSigmoid": 3.0}
CASES = [(row, mode) for row in ROWS for mode in row[4]]
INT_INPUT = {"Embedding"}

MS_CODE = """
import json, tempfile
# GRAPH_MODE compiles construct from its source file, so the loss cell lives in a real file
helper_dir = tempfile.mkdtemp()
with open(os.path.join(helper_dir, "ms_loss_cell.py"), "w") as fh:
    fh.write(inputs["helper"].item())
sys.path.insert(0, helper_dir)
from ms_loss_cell import LossCell
rows = json.loads(inputs["spec"].item())
def tuples(value):  # json turned the layers' tuple arguments into lists
    return tuple(tuples(v) for v in value) if isinstance(value, list) else value
def run_row(rid, cls, kwargs, nparams, mode, int_input):
    kwargs = {k: tuples(v) for k, v in kwargs.items()}
    net = getattr(nn, cls)(**kwargs)
    named = list(net.parameters_and_names())
    assert len(named) == nparams, (rid, [n for n, _ in named])
    for i, (_, p) in enumerate(named):
        p.set_data(Tensor(inputs[f"{rid}__p{i}"]))
    net.set_train(mode == "train")
    weights = net.trainable_params()
    x = Tensor(inputs[f"{rid}__x"])
    c = Tensor(inputs[f"{rid}__c_{mode}"])
    grad_fn = ms.value_and_grad(LossCell(net, c), grad_position=None if int_input else 0, weights=weights,
                                has_aux=True)
    (_, out), grads = grad_fn(x)
    key = f"{rid}-{mode}"
    outputs[key + "__out"] = out.asnumpy()
    if not int_input:
        outputs[key + "__gx"] = grads[0].asnumpy()
        grads = grads[1]
    for i, g in enumerate(grads):
        outputs[key + f"__gw{i}"] = g.asnumpy()
    for i, (name, p) in enumerate(net.parameters_and_names()):
        outputs[key + f"__after{i}"] = p.asnumpy()
    outputs[key + "__names"] = np.array([n for n, _ in named])

for row in rows:
    try:
        run_row(*row)
    except Exception as exc:  # one failing row must not hide the others
        outputs[f"{row[0]}-{row[4]}__error"] = np.array(f"{type(exc).__name__}: {exc}"[-3000:])
"""


HELPER = """
from mindspore import nn


class LossCell(nn.Cell):
    def __init__(self, net, cotangent):
        super().__init__()
        self.net, self.cotangent = net, cotangent

    def construct(self, x):
        out = self.net(x)
        return (out * self.cotangent).sum(), out
"""


def _build(row):
    rid, cls, kwargs, shape, _ = row
    msjax.set_seed(zlib.crc32(rid.encode()))
    cell = getattr(nn, cls)(**kwargs)
    rng = np.random.default_rng(len(rid))
    for name, p in cell.parameters_and_names():  # move every parameter off its default value
        value = np.asarray(p.asnumpy())
        if "variance" in name:
            value = rng.uniform(0.5, 1.5, value.shape)
        else:
            value = value + rng.normal(0, 0.3, value.shape)
        p.set_data(value.astype(np.float32))
    if cls in INT_INPUT:
        x = rng.integers(0, kwargs["vocab_size"], shape).astype(np.int32)
    else:
        x = (rng.normal(0, 1, shape) * INPUT_SCALE.get(cls, 1.0)).astype(np.float32)
    return cell, x


def _jax_run(cell, x, cotangent, train):
    """Output, input grad, trainable-parameter grads (definition order) and the parameters after."""
    cell.set_train(train)
    graphdef, state, rest = nnx.split(cell, nnx.Param, ...)  # rest: RNG state (not differentiable)
    int_input = np.issubdtype(x.dtype, np.integer)

    def loss(state, x):
        module = nnx.merge(graphdef, state, rest)
        out = unwrap(module(x))
        return jnp.sum(out * cotangent), (out, nnx.state(module))

    argnums = 0 if int_input else (0, 1)
    grads, (out, new_state) = jax.jit(jax.grad(loss, argnums=argnums, has_aux=True))(state, jnp.asarray(x))
    gstate, gx = (grads, None) if int_input else grads
    gnet = nnx.merge(graphdef, gstate, rest)
    gw = [np.asarray(p.get_value()) for _, p in gnet.parameters_and_names() if p.requires_grad]
    after = nnx.merge(graphdef, new_state)
    return (np.asarray(out), None if gx is None else np.asarray(gx), gw,
            [np.asarray(p.get_value()) for _, p in after.parameters_and_names()])


@pytest.fixture(scope="module")
def compared():
    """msjax and MindSpore results for every (row, mode), MindSpore's in one oracle call."""
    ours, inputs, spec = {}, {}, []
    for row in ROWS:
        rid, cls, kwargs = row[:3]
        cell, x = _build(row)
        params = [np.asarray(p.asnumpy()) for _, p in cell.parameters_and_names()]
        inputs[f"{rid}__x"] = x
        for i, p in enumerate(params):
            inputs[f"{rid}__p{i}"] = p
        for mode in row[4]:
            graphdef, state = nnx.split(cell)
            fresh = nnx.merge(graphdef, state)  # each mode starts from the same parameters
            out_shape = jax.eval_shape(lambda x, g=graphdef, s=state: unwrap(nnx.merge(g, s)(x)), jnp.asarray(x)).shape
            c = np.random.default_rng(7).normal(0, 1, out_shape).astype(np.float32)
            inputs[f"{rid}__c_{mode}"] = c
            ours[f"{rid}-{mode}"] = (_jax_run(fresh, x, c, mode == "train"),
                                     [n for n, _ in cell.parameters_and_names()])
            spec.append([rid, cls, kwargs, len(params), mode, cls in INT_INPUT])
    inputs["spec"] = np.array(json.dumps(spec))
    inputs["helper"] = np.array(HELPER)
    return ours, run_mindspore(MS_CODE, inputs)


def _close(actual, expected, what):
    scale = max(1.0, float(np.max(np.abs(expected))) if expected.size else 1.0)
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=2e-5 * scale, err_msg=what)


@requires_mindspore
@pytest.mark.parametrize("row,mode", CASES, ids=[f"{r[0]}-{m}" for r, m in CASES])
def test_layer_matches_mindspore(compared, row, mode):
    ours, theirs = compared
    key = f"{row[0]}-{mode}"
    assert key + "__error" not in theirs, f"MindSpore failed: {theirs.get(key + '__error')}"
    (out, gx, gw, after), names = ours[key]
    assert names == list(theirs[key + "__names"]), "parameter names/order differ from MindSpore"
    assert out.shape == theirs[key + "__out"].shape
    _close(out, theirs[key + "__out"], f"{key}: forward output")
    if gx is not None:
        _close(gx, theirs[key + "__gx"], f"{key}: input gradient")
    ms_gw = [theirs[f"{key}__gw{i}"] for i in range(len(gw))]
    assert f"{key}__gw{len(gw)}" not in theirs, "MindSpore has more trainable parameters"
    for i, (a, b) in enumerate(zip(gw, ms_gw)):
        _close(a, b, f"{key}: gradient of trainable parameter {i}")
    for i, (a, name) in enumerate(zip(after, names)):
        _close(a, theirs[f"{key}__after{i}"], f"{key}: {name} after the call")


def test_bad_arguments_raise_layer_errors_naming_the_layer():
    with pytest.raises(LayerArgumentError, match="Conv2d: pad_mode"):
        nn.Conv2d(1, 1, 3, pad_mode="full")
    with pytest.raises(LayerArgumentError, match="needs pad_mode='pad'"):
        nn.Conv2d(1, 1, 3, padding=1)
    with pytest.raises(LayerArgumentError, match="group=2"):
        nn.Conv2d(3, 4, 3, group=2)
    with pytest.raises(LayerArgumentError, match=r"Dense: weight_init has shape \(3, 4\)"):
        nn.Dense(3, 4, weight_init=msjax.Tensor(np.ones((3, 4), np.float32)))
    with pytest.raises(LayerArgumentError, match="BatchNorm2d: expected a 4-D input"):
        nn.BatchNorm2d(2)(msjax.Tensor(np.ones((2, 2), np.float32)))
    with pytest.raises(LayerArgumentError, match="MaxPool2d: ceil_mode"):
        nn.MaxPool2d(2, 2, ceil_mode=True)
    with pytest.raises(LayerArgumentError, match="unknown activation 'swishy'"):
        nn.Dense(2, 2, activation="swishy")


def test_default_initialisers_follow_mindspore_bounds():
    dense = nn.Dense(16, 300)  # HeUniform(sqrt(5)) -> bound 1/sqrt(fan_in); bias Uniform(1/sqrt(in_channels))
    w, b = dense.weight.asnumpy(), dense.bias.asnumpy()
    assert 0.9 / 4 < np.abs(w).max() <= 1 / 4 and 0.8 / 4 < np.abs(b).max() <= 1 / 4
    conv = nn.Conv2d(4, 200, 3, has_bias=True)  # fan_in = 4 * 3 * 3 = 36
    assert 0.9 / 6 < np.abs(conv.weight.asnumpy()).max() <= 1 / 6
    assert 0.8 / 6 < np.abs(conv.bias.asnumpy()).max() <= 1 / 6
    assert conv.weight.shape == (200, 4, 3, 3) and str(conv.weight.dtype) == "Float32"
    emb = nn.Embedding(50, 40, padding_idx=3)  # 'normal' is Normal(sigma=0.01)
    table = emb.embedding_table.asnumpy()
    assert not table[3].any() and 0.008 < table.std() < 0.012


@pytest.mark.parametrize("cls, shape", [("Dropout1d", (16, 64, 3)), ("Dropout1d", (256, 5)),
                                        ("Dropout2d", (16, 64, 2, 3))])
def test_channel_dropout_drops_whole_channels_and_scales_the_rest(cls, shape):
    """Train mode is random (no oracle): whole channels are zero, the others x / (1 - p), about p dropped."""
    p = 0.3
    msjax.set_seed(11)
    layer = getattr(nn, cls)(p=p).set_train(True)
    x = np.random.default_rng(0).uniform(1, 2, shape).astype(np.float32)
    out = layer(msjax.Tensor(x)).asnumpy()
    spatial = (-1,) if cls == "Dropout1d" else (-2, -1)
    dropped = (out == 0).all(axis=spatial)
    kept = ~dropped
    assert ((out == 0) == dropped[(...,) + (None,) * len(spatial)]).all(), "a channel is only partly zeroed"
    np.testing.assert_allclose(out[kept], x[kept] / (1 - p), rtol=1e-6)
    assert abs(dropped.mean() - p) < 4 * np.sqrt(p * (1 - p) / dropped.size)
    again = layer(msjax.Tensor(x)).asnumpy()          # the stream advances: a new mask
    assert not np.array_equal((again == 0).all(axis=spatial), dropped)
    assert (layer.set_train(False)(msjax.Tensor(x)).asnumpy() == x).all()


def test_instance_norm_matches_torch_in_train_and_eval():
    """MindSpore 2.10 has no CPU InstanceNorm kernel, so PyTorch (affine, running stats) is the oracle."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    x = rng.normal(1, 2, (3, 4, 5, 6)).astype(np.float32)
    gamma, beta = rng.uniform(0.5, 1.5, 4).astype(np.float32), rng.normal(0, 1, 4).astype(np.float32)
    ref = torch.nn.InstanceNorm2d(4, eps=1e-5, momentum=0.2, affine=True, track_running_stats=True).train()
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(gamma))
        ref.bias.copy_(torch.from_numpy(beta))
        expected = ref(torch.from_numpy(x)).numpy()
    layer = nn.InstanceNorm2d(4, momentum=0.2)
    layer.gamma.set_data(gamma)
    layer.beta.set_data(beta)
    out = layer.set_train(True)(msjax.Tensor(x)).asnumpy()
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer.moving_mean.asnumpy(), ref.running_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.moving_variance.asnumpy(), ref.running_var.numpy(), rtol=1e-5, atol=1e-6)
    stats = layer.moving_mean.asnumpy().copy()
    # eval still normalises by the instance statistics (MindSpore's rule), and leaves the moving ones alone
    np.testing.assert_allclose(layer.set_train(False)(msjax.Tensor(x)).asnumpy(), expected, rtol=1e-5, atol=1e-5)
    assert (layer.moving_mean.asnumpy() == stats).all()
    assert [n for n, _ in layer.parameters_and_names()] == ["moving_mean", "moving_variance", "gamma", "beta"]
    assert [p.requires_grad for _, p in nn.InstanceNorm2d(2, affine=False).parameters_and_names()] == [False] * 4


BAD_ARGUMENTS = [
    (lambda: nn.Conv1d(2, 2, (3,)), TypeError, "Conv1d: kernel_size must be an int"),
    (lambda: nn.Conv1d(2, 2, 3, padding=1), LayerArgumentError, "needs pad_mode='pad'"),
    (lambda: nn.Conv3d(2, 2, (3, 3)), LayerArgumentError, "Conv3d: kernel_size must be .* 3 positive ints"),
    (lambda: nn.Conv3d(2, 2, 3, pad_mode="pad", padding=(1, 1, 1, 1)), LayerArgumentError,
     "Conv3d: padding must be .* 6"),
    (lambda: nn.Conv2dTranspose(2, 2, 3, stride=2, output_padding=1), LayerArgumentError,
     "output_padding=1 needs pad_mode='pad'"),
    (lambda: nn.Conv2dTranspose(2, 2, 3, pad_mode="pad", output_padding=1), LayerArgumentError,
     r"output_padding=1 must be in \[0, max\(stride, dilation\)\)"),
    (lambda: nn.GroupNorm(3, 4), LayerArgumentError, "GroupNorm: num_groups=3 must divide num_channels=4"),
    (lambda: nn.GroupNorm(2, 4, eps=1), LayerArgumentError, "GroupNorm: eps must be a float"),
    (lambda: nn.InstanceNorm2d(0, momentum=2.0), LayerArgumentError,
     "InstanceNorm2d: num_features must be a positive int, got 0"),
    (lambda: nn.AvgPool1d(kernel_size=(2,)), LayerArgumentError, "AvgPool1d: kernel_size must be a positive int"),
    (lambda: nn.MaxPool1d(2, padding=1), LayerArgumentError, "needs pad_mode='pad'"),
    (lambda: nn.AdaptiveAvgPool2d((2, 0)), LayerArgumentError, "AdaptiveAvgPool2d: output_size"),
    (lambda: nn.AdaptiveMaxPool2d(2, return_indices=True), LayerArgumentError, "return_indices=True"),
    (lambda: nn.Upsample(scale_factor=2.0), LayerArgumentError, "scale_factor.*give size=.*size is required"),
    (lambda: nn.Upsample(size=4, align_corners=True), LayerArgumentError, "align_corners cannot be set"),
    (lambda: nn.Upsample(size=4, mode="bicubic"), LayerArgumentError, "mode must be 'nearest' or 'bilinear'"),
    (lambda: nn.Pad([(1, 1)]), TypeError, "Pad: paddings must be a tuple"),
    (lambda: nn.Pad(((1, 1), (2,)), mode="REFLECT"), LayerArgumentError, r"\(before, after\) pair.*\[\(2,\)\]"),
    (lambda: nn.Pad(((1, 1),), mode="EDGE"), LayerArgumentError, "Pad: mode must be one of"),
    (lambda: nn.Pad(((1, 1),))(msjax.Tensor(np.ones((2, 2), np.float32))), LayerArgumentError,
     "paddings has 1 pairs but the input has 2 dimensions"),
    (lambda: nn.Pad(((2, 0), (0, 0)), mode="REFLECT")(msjax.Tensor(np.ones((2, 2), np.float32))),
     LayerArgumentError, r"REFLECT padding must be < .*\(0, \(2, 0\)\)"),
    (lambda: nn.PReLU(2, w=[0.1]), LayerArgumentError, "PReLU: w as a list needs 2 floats"),
    (lambda: nn.PReLU(2, w=1), TypeError, "PReLU: w must be a float, list or Tensor"),
    (lambda: nn.Dropout2d(p=1), TypeError, "Dropout2d: p must be a float"),
    (lambda: nn.Dropout1d(p=1.5), LayerArgumentError, r"Dropout1d: p must be in \[0, 1\]"),
    (lambda: nn.Dropout2d()(msjax.Tensor(np.ones((2, 2, 2), np.float32))), LayerArgumentError,
     "Dropout2d: expected a 4-D input"),
    (lambda: nn.BatchNorm3d(2)(msjax.Tensor(np.ones((2, 2, 2, 2), np.float32))), LayerArgumentError,
     "BatchNorm3d: expected a 5-D input"),
]


@pytest.mark.parametrize("make, error, match", BAD_ARGUMENTS, ids=[m for _, _, m in BAD_ARGUMENTS])
def test_new_layers_refuse_bad_arguments_by_name(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_get_activation_knows_mindspores_names_for_the_new_cells():
    names = {"relu6": "ReLU6", "leakyrelu": "LeakyReLU", "prelu": "PReLU", "hswish": "HSwish",
             "hsigmoid": "HSigmoid", "silu": "SiLU", "mish": "Mish", "logsoftmax": "LogSoftmax"}
    for name, cls in names.items():
        assert type(nn.get_activation(name)).__name__ == cls
    assert nn.Dense(3, 2, activation="hswish").activation.__class__.__name__ == "HSwish"


class NewLayersNet(nn.Cell):
    """The new layers that export, in one small network (Conv3d and Conv2dTranspose: tests/test_export_zoo.py)."""

    def __init__(self):
        super().__init__()
        self.pad = nn.Pad(((0, 0), (0, 0), (1, 1), (2, 1)), mode="REFLECT")
        self.prelu, self.group_norm, self.instance_norm = nn.PReLU(3), nn.GroupNorm(1, 3), nn.InstanceNorm2d(3)
        self.hswish, self.up = nn.HSwish(), nn.Upsample(size=(12, 13), mode="bilinear")
        self.max_pool, self.avg_pool = nn.AdaptiveMaxPool2d(6), nn.AdaptiveAvgPool2d((3, 4))
        self.conv1d, self.max1d, self.avg1d = nn.Conv1d(3, 4, 3, has_bias=True), nn.MaxPool1d(2, 2), nn.AvgPool1d(2, 2)
        self.tail = nn.SequentialCell([nn.Mish(), nn.LeakyReLU(), nn.ReLU6(), nn.SiLU(), nn.HSigmoid(),
                                       nn.Identity(), nn.Dropout1d(0.3), nn.LogSoftmax()])
        self.bn3d = nn.BatchNorm3d(4)

    def construct(self, x):
        x = self.avg_pool(self.max_pool(self.up(self.hswish(self.instance_norm(self.group_norm(self.prelu(
            self.pad(x))))))))
        x = self.avg1d(self.max1d(self.conv1d(x.reshape(x.shape[0], 3, -1))))
        return self.tail(self.bn3d(x.reshape(x.shape + (1, 1))).reshape(x.shape))


@requires_mindspore
def test_new_layers_export_to_onnx_and_mindir_that_mindspore_runs(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    msjax.set_seed(3)
    net = NewLayersNet().set_train(False)
    x = np.random.default_rng(2).normal(0, 2, (2, 3, 8, 8)).astype(np.float32)
    expected = net(msjax.Tensor(x)).asnumpy()
    msjax.export(net, msjax.Tensor(x), file_name=str(tmp_path / "net"), file_format="ONNX")
    session = ort.InferenceSession(str(tmp_path / "net.onnx"))
    np.testing.assert_allclose(session.run(None, {session.get_inputs()[0].name: x})[0], expected, rtol=1e-4,
                               atol=1e-5)
    msjax.export(net, msjax.Tensor(x), file_name=str(tmp_path / "net"), file_format="MINDIR")
    theirs = run_mindspore("""
graph = nn.GraphCell(ms.load(str(inputs["path"])))
outputs["y"] = graph(Tensor(inputs["x"])).asnumpy()
""", {"path": np.array(str(tmp_path / "net.mindir")), "x": x})
    np.testing.assert_allclose(theirs["y"], expected, rtol=1e-4, atol=1e-5)
    conv3d = nn.Conv3d(2, 3, 3, stride=2, has_bias=True)
    x3 = np.random.default_rng(4).normal(0, 1, (1, 2, 5, 6, 5)).astype(np.float32)
    msjax.export(conv3d, msjax.Tensor(x3), file_name=str(tmp_path / "conv3d"), file_format="ONNX")
    session = ort.InferenceSession(str(tmp_path / "conv3d.onnx"))
    np.testing.assert_allclose(session.run(None, {session.get_inputs()[0].name: x3})[0],
                               conv3d(msjax.Tensor(x3)).asnumpy(), rtol=1e-4, atol=1e-5)
