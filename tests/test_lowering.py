"""The fast lowering (msjax.ops._lowering) against the canonical one: same values and gradients.

Each row is a layer configuration; both lowerings run the layer's forward and its gradient with
respect to the input and the parameters under jit, in float32. The canonical lowering is the one
the MindSpore comparisons in test_layers*.py pin; capture must see only canonical primitives.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import msjax

from msjax import Tensor, nn, ops
from msjax.common.tensor import unwrap
from msjax.ops import _lowering

#: (id, layer factory, input shape); rows that only vary a covered case are slow (pytest -m slow)
ROWS = [
    ("conv1x1", lambda: nn.Conv2d(8, 6, 1), (2, 8, 5, 5)),
    ("conv1x1_s2", lambda: nn.Conv2d(8, 6, 1, stride=2), (2, 8, 5, 5)),
    ("conv1x1_s2_even", lambda: nn.Conv2d(8, 6, 1, stride=2, has_bias=True), (2, 8, 4, 6)),
    ("conv1x1_pad", lambda: nn.Conv2d(4, 6, 1, pad_mode="pad", padding=1), (2, 4, 3, 3)),
    ("conv3x3_same_small", lambda: nn.Conv2d(8, 6, 3), (2, 8, 2, 2)),
    ("conv3x3_same_1x1", lambda: nn.Conv2d(8, 6, 3), (2, 8, 1, 1)),
    ("conv3x3_s2_small", lambda: nn.Conv2d(8, 6, 3, stride=2), (2, 8, 4, 4)),
    ("conv3x3_s2_2to1", lambda: nn.Conv2d(8, 6, 3, stride=2), (2, 8, 2, 2)),  # 4 live taps: the input itself
    ("conv3x3_pad1_1x1_bias", lambda: nn.Conv2d(8, 6, 3, pad_mode="pad", padding=1, has_bias=True), (2, 8, 1, 1)),
    ("conv3x3_1xw", lambda: nn.Conv2d(8, 6, 3), (2, 8, 1, 4)),  # only the middle row of taps is live
    ("conv3x3_s3_pad3", lambda: nn.Conv2d(4, 5, 3, stride=3, pad_mode="pad", padding=3), (1, 4, 1, 1)),
    ("conv3x3_dilated_dead", lambda: nn.Conv2d(3, 4, 3, dilation=2, pad_mode="pad", padding=2), (2, 3, 2, 2)),
    ("conv3x3_s2_odd", lambda: nn.Conv2d(5, 7, 3, stride=2), (2, 5, 3, 5)),
    ("conv3x1_dead_rows", lambda: nn.Conv2d(4, 6, (3, 1), pad_mode="pad", padding=(1, 1, 0, 0)), (2, 4, 1, 3)),
    ("conv3x3_pad_asym", lambda: nn.Conv2d(3, 5, 3, pad_mode="pad", padding=(0, 1, 2, 1)), (1, 3, 3, 4)),
    ("conv3x3_dilated", lambda: nn.Conv2d(3, 4, 3, dilation=2, pad_mode="valid"), (2, 3, 7, 7)),
    ("conv3x3_dilated_small", lambda: nn.Conv2d(3, 4, 3, dilation=2, pad_mode="same"), (2, 3, 3, 3)),
    ("conv5x5_valid_big", lambda: nn.Conv2d(1, 6, 5, pad_mode="valid", has_bias=True), (2, 1, 12, 12)),
    ("conv7x7_s2", lambda: nn.Conv2d(3, 8, 7, stride=2), (1, 3, 16, 16)),
    ("conv_group", lambda: nn.Conv2d(8, 8, 3, group=4), (2, 8, 6, 6)),
    ("conv_group_small", lambda: nn.Conv2d(8, 4, 3, group=2), (2, 8, 2, 2)),
    ("conv_rect_stride", lambda: nn.Conv2d(3, 4, (3, 2), stride=(2, 1)), (2, 3, 9, 5)),
    ("conv1d", lambda: nn.Conv1d(3, 4, 3, stride=2), (2, 3, 9)),
    ("maxpool_2s2", lambda: nn.MaxPool2d(2, 2), (2, 3, 8, 8)),
    ("maxpool_3s2_same", lambda: nn.MaxPool2d(3, 2, pad_mode="same"), (2, 3, 9, 9)),
    ("maxpool_3s2_pad", lambda: nn.MaxPool2d(3, 2, pad_mode="pad", padding=1), (2, 3, 8, 8)),
    ("maxpool_3s1_valid", lambda: nn.MaxPool2d((3, 2), 1), (1, 2, 5, 6)),
    ("maxpool1d", lambda: nn.MaxPool1d(3, 2), (2, 3, 9)),
    ("maxpool_ties", lambda: nn.MaxPool2d(2, 2), "ties"),
    ("maxpool_2s2_odd", lambda: nn.MaxPool2d(2, 2), (2, 3, 7, 9)),   # stride == kernel: a reshape, rows left over
    ("maxpool_3s3_ties", lambda: nn.MaxPool2d(3, 3), "ties"),
    ("maxpool_rect_blocks", lambda: nn.MaxPool2d((2, 3), (2, 3)), (1, 2, 6, 10)),
    ("bn_train", lambda: nn.BatchNorm2d(4), (3, 4, 5, 5)),
    ("max_pool_op", lambda: ops.MaxPool(kernel_size=2, strides=2, pad_mode="SAME"), (2, 3, 7, 7)),
    ("conv2d_op", lambda: ops.Conv2D(out_channel=4, kernel_size=1), ((2, 3, 4, 4), (4, 3, 1, 1))),
]


def _inputs(shape, rng):
    if shape == "ties":  # plateaus: the gradient must go to one cell per window, as select_and_scatter does
        return [np.repeat(np.repeat(rng.integers(0, 3, (2, 3, 3, 3)).astype(np.float32), 3, 2), 3, 3)]
    shapes = shape if isinstance(shape[0], tuple) else (shape,)
    return [rng.standard_normal(s).astype(np.float32) for s in shapes]


def _run(factory, arrays, canonical):
    """Forward and gradients (inputs and all layer state) of a fresh layer, under jit."""
    msjax.set_seed(0)
    layer = factory()
    if isinstance(layer, nn.Cell):
        layer.set_train(True)
        graphdef, state = nnx.split(layer)
    else:  # an ops primitive: no state
        graphdef, state = None, {}
    weights = np.random.default_rng(1).standard_normal((64,)).astype(np.float32)

    def loss(state, xs):
        fn = layer if graphdef is None else nnx.merge(graphdef, state)
        out = unwrap(fn(*[Tensor(x) for x in xs]))
        flat = out.reshape(-1)
        return jnp.sum(flat * jnp.resize(jnp.asarray(weights), flat.shape)), out

    with _lowering.canonical(canonical):
        (_, out), grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))(state, arrays)
    return out, grads


SLOW = {"conv3x3_s3_pad3", "conv3x3_s2_odd", "conv3x1_dead_rows", "conv1x1_s2_even", "conv1x1_pad", "conv3x3_pad_asym", "conv3x3_dilated", "conv5x5_valid_big", "conv7x7_s2",
        "conv_group", "conv_rect_stride", "conv1d", "maxpool_3s2_pad", "maxpool_3s1_valid", "maxpool1d"}


def _param(row):
    return pytest.param(*row[1:], id=row[0], marks=[pytest.mark.slow] if row[0] in SLOW else [])


@pytest.mark.parametrize("factory,shape", [_param(r) for r in ROWS])
def test_fast_matches_canonical(factory, shape):
    arrays = _inputs(shape, np.random.default_rng(0))
    out_c, grads_c = _run(factory, arrays, canonical=True)
    out_f, grads_f = _run(factory, arrays, canonical=False)
    assert out_f.shape == out_c.shape
    scale = float(jnp.max(jnp.abs(out_c))) + 1e-6
    np.testing.assert_allclose(out_f, out_c, rtol=0, atol=2e-6 * scale)
    for gf, gc in zip(jax.tree.leaves(grads_f), jax.tree.leaves(grads_c)):
        np.testing.assert_allclose(gf, gc, rtol=0, atol=2e-6 * (float(jnp.max(jnp.abs(gc))) + 1e-6))


def _primitives(fn, *args):
    names = set()

    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            names.add(eqn.primitive.name)
            for v in eqn.params.values():
                if hasattr(v, "jaxpr") and hasattr(v.jaxpr, "eqns"):
                    walk(v.jaxpr)
                elif hasattr(v, "eqns"):
                    walk(v)
    walk(jax.make_jaxpr(fn)(*args).jaxpr)
    return names


def test_fast_lowering_is_on_by_default_and_differs():
    """The switch is real: by default a 1x1 conv is a matmul and a max pool has no reduce_window."""
    x = jnp.ones((1, 4, 6, 6), jnp.float32)
    conv, pool = nn.Conv2d(4, 4, 1), nn.MaxPool2d(2, 2)
    fast = _primitives(lambda v: unwrap(pool(conv(Tensor(v)))), x)
    with _lowering.canonical():
        canon = _primitives(lambda v: unwrap(pool(conv(Tensor(v)))), x)
    assert _lowering.is_fast()
    assert "conv_general_dilated" not in fast and "reduce_window_max" not in fast
    assert {"conv_general_dilated", "reduce_window_max"} <= canon


#: (id, layer, input shape, (O, K) weight operand of the matmul, pads?): taps reading only padding are dropped
DEAD_TAPS = [
    ("3x3_on_1x1", lambda: nn.Conv2d(8, 6, 3), (2, 8, 1, 1), (6, 8), False),
    ("3x3_s2_2to1", lambda: nn.Conv2d(8, 6, 3, stride=2), (2, 8, 2, 2), (6, 32), False),
    ("3x3_on_1x4", lambda: nn.Conv2d(8, 6, 3), (2, 8, 1, 4), (6, 24), True),  # the columns still pad
    ("3x3_s2_4to2", lambda: nn.Conv2d(8, 6, 3, stride=2), (2, 8, 4, 4), (6, 72), True),  # every tap is live
]


@pytest.mark.parametrize("factory,shape,weight,pads", [pytest.param(*r[1:], id=r[0]) for r in DEAD_TAPS])
def test_dead_taps_are_dropped(factory, shape, weight, pads):
    """The matmul sees only the live taps' weights, and no padding is built that no live tap reads."""
    conv = factory()
    jaxpr = jax.make_jaxpr(lambda v: unwrap(conv(Tensor(v))))(jnp.ones(shape, jnp.float32)).jaxpr
    dots = [e for e in jaxpr.eqns if e.primitive.name == "dot_general"]
    assert len(dots) == 1 and weight in [tuple(v.aval.shape) for v in dots[0].invars]
    assert ("pad" in _primitives(lambda v: unwrap(conv(Tensor(v))), jnp.ones(shape, jnp.float32))) == pads


def test_capture_sees_canonical_primitives():
    from msjax.models import LeNet5
    from msjax_exporters.capture import capture
    graph = capture(LeNet5(), Tensor(np.ones((1, 1, 32, 32), np.float32)))
    counts = {op: sum(n.op == op for n in graph.nodes) for op in ("conv_general_dilated", "reduce_window_max")}
    assert counts == {"conv_general_dilated": 2, "reduce_window_max": 2}
    assert not {"custom_vjp_call", "slice", "pad"} & {n.op for n in graph.nodes}
    assert _lowering.is_fast()  # capture restores the mode
