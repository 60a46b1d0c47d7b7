"""The fast lowering's matmul forms of a convolution (picked by ``msjax.ops._lowering.conv2d``).

Every form reads the OIHW weight as it is stored: the (O, C*kh*kw) matrix is a free reshape of it,
and the matmuls contract its second axis (XNNPACK's native fully-connected layout). Transposing the
weight to HWIO instead cost more than the matmuls themselves at small batch: ResNet-50's eval
forward spent 59% of its time copying weights.

Taps whose window lies in the padding for every output cell are dropped and the padding they would
have read is never built: a 3x3 pad-1 convolution of a 1x1 input is its centre tap (one matmul
with ``w[:, :, 1, 1]``), and a 3x3/s2 one from 2x2 to 1x1 with (0, 1) padding reads 4 taps, the
input itself.
"""
from __future__ import annotations

import jax.numpy as jnp
from jax import lax

__all__ = ["live_taps", "matmul_conv"]


def live_taps(size, k, s, d, lo, out):
    """(first, last) tap along one axis whose window reaches a real (not padding) cell for some output."""
    live = [i for i in range(k) if any(0 <= i * d - lo + o * s < size for o in range(out))]
    return (live[0], live[-1]) if live else (0, k - 1)


def _window(size, k, s, d, lo, out):
    """(taps, crop start, crop stop, pad lo, pad hi): the live taps and the part of the axis they read."""
    first, last = live_taps(size, k, s, d, lo, out)
    r_min, r_max = first * d - lo, last * d + (out - 1) * s - lo  # real coordinates read, padding included
    return (first, last), max(r_min, 0), min(r_max, size - 1) + 1, max(-r_min, 0), max(r_max - (size - 1), 0)


def matmul_conv(x, w, stride, pads, dilation, out_hw):
    """NCHW ``x`` (*) OIHW ``w`` (group 1) as patches (N, oh, ow, C*taps) @ w(O, C*taps)^T, NHWC out.

    Patches are ordered (C, kh, kw) like the weight's own memory, so only the (small) activations move.
    """
    axes = [_window(x.shape[2 + a], w.shape[2 + a], stride[a], dilation[a], pads[a][0], out_hw[a]) for a in (0, 1)]
    (i0, i1), (j0, j1) = axes[0][0], axes[1][0]
    if (i0, i1, j0, j1) != (0, w.shape[2] - 1, 0, w.shape[3] - 1):
        w = w[:, :, i0:i1 + 1, j0:j1 + 1]
    xt = jnp.transpose(x[:, :, axes[0][1]:axes[0][2], axes[1][1]:axes[1][2]], (0, 2, 3, 1))
    if any(a[3] or a[4] for a in axes):
        xt = jnp.pad(xt, ((0, 0), (axes[0][3], axes[0][4]), (axes[1][3], axes[1][4]), (0, 0)))
    n, c = xt.shape[0], xt.shape[3]
    taps = []
    for i in range(i1 - i0 + 1):
        for j in range(j1 - j0 + 1):
            r, q = i * dilation[0], j * dilation[1]
            end = (n, r + (out_hw[0] - 1) * stride[0] + 1, q + (out_hw[1] - 1) * stride[1] + 1, c)
            taps.append(lax.slice(xt, (0, r, q, 0), end, (1, stride[0], stride[1], 1)))
    patches = taps[0] if len(taps) == 1 else jnp.stack(taps, axis=-1).reshape(taps[0].shape[:3] + (-1,))
    return lax.dot_general(patches, w.reshape(w.shape[0], -1), (((3,), (1,)), ((), ())))
