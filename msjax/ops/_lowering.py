"""How convolutions and max pooling lower to XLA: "fast" inside jitted steps, "canonical" for export.

The canonical lowering is one ``lax.conv_general_dilated`` in NCHW/OIHW and one ``lax.reduce_window``
per max pool: the primitives the exporters (``exporters/capture.py``) translate one to one into
MINDIR, ONNX and AIR nodes. XLA on CPU runs those slowly: it computes convolutions in NHWC and
wraps each NCHW one in transposes, flips kernels for the input gradient, and differentiates
``reduce_window`` max with ``select_and_scatter``. The fast lowering computes the same values

- 1x1 convolutions (no padding, no groups) as a channel matmul on the strided NHWC view,
- small-spatial convolutions (output <= ``IM2COL_MAX_HW`` cells, no groups) as im2col + matmul,
  whose gradients are matmuls and pads rather than flipped-kernel convolutions,
- other convolutions with >= ``NHWC_MIN_CHANNELS`` input channels per group in NHWC/HWIO between two
  transposes (XLA cancels adjacent pairs); fewer channels keep the canonical NCHW convolution,
- max pooling with non-overlapping windows as an elementwise max over the window's strided slices,
  whose gradient is selects rather than ``select_and_scatter``; where the stride equals the kernel
  (LeNet5's 2x2/s2) the windows are a reshape of the map, and the gradient is built in that layout.

Parameters keep MindSpore's NCHW/OIHW layouts; every other layout lives inside the computation.
``MSJAX_LOWERING=canonical`` in the environment, or ``with canonical():``, selects the canonical
lowering; capture turns it on around its trace, so exported files do not depend on this module.
"""
from __future__ import annotations

import contextlib
import functools
import os
import threading

import jax
import jax.numpy as jnp
from jax import lax

from msjax.ops._lowering_conv import matmul_conv

__all__ = ["canonical", "is_fast", "conv2d", "max_pool2d", "IM2COL_MAX_HW"]

#: largest output H*W lowered as im2col + matmul (above it, XLA's NHWC convolution wins)
IM2COL_MAX_HW = 16
#: fewest input channels per group for which the NHWC convolution beats XLA's NCHW one (LeNet5's 1 and 6 do not)
NHWC_MIN_CHANNELS = 16
_state = threading.local()


def is_fast(choice=None):
    """True unless a ``canonical()`` block is active or ``MSJAX_LOWERING=canonical`` is set.

    With ``choice`` (``"conv"``: all of the conv paths, ``"matmul1x1"``, ``"im2col"``, ``"pool"``): whether that fast path is
    on; ``MSJAX_LOWERING=fast,-im2col`` turns one off (benchmarks/bench_lowering.py's rows).
    """
    mode = getattr(_state, "mode", None)
    if mode is None:
        mode = os.environ.get("MSJAX_LOWERING", "fast").lower()
    if mode == "canonical":
        return False
    return choice is None or f"-{choice}" not in mode.split(",")


@contextlib.contextmanager
def canonical(on=True):
    """Within the block, layers emit the canonical primitives (``on=False``: the fast ones)."""
    before = getattr(_state, "mode", None)
    _state.mode = "canonical" if on else "fast"
    try:
        yield
    finally:
        _state.mode = before


def _canonical_conv(x, w, stride, pads, dilation, group):
    return lax.conv_general_dilated(x, w, window_strides=stride, padding=pads, rhs_dilation=dilation,
                                    dimension_numbers=("NCHW", "OIHW", "NCHW"), feature_group_count=group)


def _out_size(size, k, s, d, lo, hi):
    return (size + lo + hi - (k - 1) * d - 1) // s + 1


def conv2d(x, w, stride, pads, dilation, group):
    """NCHW ``x``, OIHW ``w`` (same dtype), explicit ``pads``: MindSpore's Conv2D, lowered by the mode."""
    stride, dilation, pads = tuple(stride), tuple(dilation), tuple(tuple(p) for p in pads)
    if not is_fast() or x.ndim != 4:
        return _canonical_conv(x, w, stride, pads, dilation, group)
    out_hw = tuple(_out_size(x.shape[2 + a], w.shape[2 + a], stride[a], dilation[a], *pads[a]) for a in (0, 1))
    if min(out_hw) < 1 or not is_fast("conv"):
        return _canonical_conv(x, w, stride, pads, dilation, group)
    xt = jnp.transpose(x, (0, 2, 3, 1))
    if group == 1 and w.shape[2:] == (1, 1) and pads == ((0, 0), (0, 0)) and is_fast("matmul1x1"):
        xs = xt[:, :(out_hw[0] - 1) * stride[0] + 1:stride[0], :(out_hw[1] - 1) * stride[1] + 1:stride[1]]
        out = xs @ w[:, :, 0, 0].T
    elif group == 1 and out_hw[0] * out_hw[1] <= IM2COL_MAX_HW and is_fast("im2col"):
        out = matmul_conv(x, w, stride, pads, dilation, out_hw)
    elif x.shape[1] // group < NHWC_MIN_CHANNELS:  # LeNet-like few-channel convs: NCHW is faster here
        return _canonical_conv(x, w, stride, pads, dilation, group)
    else:
        out = lax.conv_general_dilated(xt, jnp.transpose(w, (2, 3, 1, 0)), window_strides=stride, padding=pads,
                                       rhs_dilation=dilation, dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                       feature_group_count=group)
    return jnp.transpose(out, (0, 3, 1, 2))


def _taps(x, kernel, stride, out_hw):
    n, c = x.shape[:2]
    return [lax.slice(x, (0, 0, i, j), (n, c, i + (out_hw[0] - 1) * stride[0] + 1, j + (out_hw[1] - 1) * stride[1] + 1),
                      (1, 1) + tuple(stride)) for i in range(kernel[0]) for j in range(kernel[1])]


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def _max_taps(x, kernel, stride, out_hw):
    return functools.reduce(jnp.maximum, _taps(x, kernel, stride, out_hw))


def _max_taps_fwd(x, kernel, stride, out_hw):
    out = _max_taps(x, kernel, stride, out_hw)
    return out, (x, out)


def _max_taps_bwd(kernel, stride, out_hw, res, g):
    """As XLA's select_and_scatter: the whole gradient goes to the first maximal cell of each window."""
    x, out = res
    taps, back = jax.vjp(lambda v: _taps(v, kernel, stride, out_hw), x)
    taken, cotangents = jnp.zeros(out.shape, bool), []
    for tap in taps:
        hit = (tap == out) & ~taken
        cotangents.append(jnp.where(hit, g, jnp.zeros_like(g)))
        taken = taken | hit
    return back(cotangents)


_max_taps.defvjp(_max_taps_fwd, _max_taps_bwd)


def _block_view(x, kernel, out_hw):
    """(N, C, oh, kh, ow, kw): the windows of a pool whose stride equals its kernel (a free reshape)."""
    (kh, kw), (oh, ow) = kernel, out_hw
    return x[:, :, :oh * kh, :ow * kw].reshape(x.shape[:2] + (oh, kh, ow, kw))


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def _max_blocks(x, kernel, out_hw):
    return jnp.max(_block_view(x, kernel, out_hw), axis=(3, 5))


def _max_blocks_fwd(x, kernel, out_hw):
    out = _max_blocks(x, kernel, out_hw)
    return out, (x, out)


def _max_blocks_bwd(kernel, out_hw, res, g):
    """``_max_taps_bwd``'s rule (the first maximal cell, row-major, takes the gradient) written as
    one tensor in the windows' own layout: no per-tap strided pads to sum."""
    x, out = res
    blocks = _block_view(x, kernel, out_hw)
    taken, rows = jnp.zeros(out.shape, bool), []
    zero = jnp.zeros_like(g)
    for i in range(kernel[0]):
        row = []
        for j in range(kernel[1]):
            hit = (blocks[:, :, :, i, :, j] == out) & ~taken
            row.append(jnp.where(hit, g, zero))
            taken = taken | hit
        rows.append(jnp.stack(row, axis=-1))                     # (N, C, oh, ow, kw)
    grad = jnp.stack(rows, axis=3).reshape(out.shape[:2] + (out_hw[0] * kernel[0], out_hw[1] * kernel[1]))
    rest = (x.shape[2] - grad.shape[2], x.shape[3] - grad.shape[3])
    if rest != (0, 0):
        grad = jnp.pad(grad, ((0, 0), (0, 0), (0, rest[0]), (0, rest[1])))
    return (grad,)


_max_blocks.defvjp(_max_blocks_fwd, _max_blocks_bwd)


def _canonical_pool(x, kernel, stride, pads):
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, 1) + kernel, (1, 1) + stride, ((0, 0), (0, 0)) + pads)


def max_pool2d(x, kernel, stride, pads):
    """Max over NCHW windows (padded cells never win); fast: a max over the window's strided slices."""
    kernel, stride, pads = tuple(kernel), tuple(stride), tuple(tuple(p) for p in pads)
    overlap = kernel[0] > stride[0] or kernel[1] > stride[1]  # overlapping windows: reduce_window measured faster
    if (not is_fast("pool") or overlap or x.ndim != 4 or kernel[0] * kernel[1] > 16
            or not jnp.issubdtype(x.dtype, jnp.floating)):
        return _canonical_pool(x, kernel, stride, pads)
    out_hw = tuple(_out_size(x.shape[2 + a], kernel[a], stride[a], 1, *pads[a]) for a in (0, 1))
    if min(out_hw) < 1:
        return _canonical_pool(x, kernel, stride, pads)
    if pads != ((0, 0), (0, 0)):
        x = jnp.pad(x, ((0, 0), (0, 0)) + pads, constant_values=-jnp.inf)
    if kernel == stride:
        return _max_blocks(x, kernel, out_hw)
    return _max_taps(x, kernel, stride, out_hw)
