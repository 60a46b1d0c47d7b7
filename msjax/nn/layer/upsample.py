"""Upsample: resize an N x C x H x W input to ``size`` by nearest or bilinear interpolation (MindSpore's rules).

``nearest`` takes source cell ``floor(dst * in / out)``. ``bilinear`` with ``align_corners=False``
(the default, as ``None``) samples at ``(dst + 0.5) * in / out - 0.5`` (half-pixel centres,
clamped at 0); with True at ``dst * (in - 1) / (out - 1)``, so the corners line up. Each axis is a
small interpolation matrix, so the resize is two matrix products (``_nn.resize_hw``).

>>> nn.Upsample(size=(4, 6))(Tensor(np.ones((1, 1, 2, 3), np.float32))).shape
(1, 1, 4, 6)
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from msjax.errors import LayerArgumentError
from msjax.nn.cell import Cell
from msjax.ops import _nn

__all__ = ["Upsample"]


def _matrix(mode, n_in, n_out, align_corners):
    """``(n_out, n_in)`` weights of each output cell on the input cells along one axis."""
    dst = np.arange(n_out, dtype=np.float64)
    out = np.zeros((n_out, n_in), np.float32)
    if mode == "nearest":
        out[np.arange(n_out), np.minimum(np.floor(dst * n_in / n_out).astype(np.int64), n_in - 1)] = 1
        return out
    if align_corners:
        src = dst * ((n_in - 1) / (n_out - 1)) if n_out > 1 else np.zeros_like(dst)
    else:
        src = np.maximum((dst + 0.5) * (n_in / n_out) - 0.5, 0)
    lo = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = (src - lo).astype(np.float32)
    np.add.at(out, (np.arange(n_out), lo), 1 - frac)
    np.add.at(out, (np.arange(n_out), hi), frac)
    return out


class Upsample(Cell):
    """Resize to ``size`` (an int or ``(h, w)``); ``mode`` 'nearest' (default) or 'bilinear'.

    MindSpore 2.10 refuses ``scale_factor`` for these modes on 4-D input and ``align_corners`` with
    'nearest'; so does msjax.
    """

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None,
                 recompute_scale_factor=None):
        super().__init__()
        problems = []
        if mode not in ("nearest", "bilinear"):
            problems.append(f"mode must be 'nearest' or 'bilinear' (the modes msjax has), got {mode!r}")
        if scale_factor is not None or recompute_scale_factor is not None:
            problems.append("scale_factor/recompute_scale_factor cannot be set with these modes on 4-D input "
                            "(as in MindSpore 2.10); give size=(h, w)")
        if size is None:
            problems.append("size is required (the output (h, w))")
        if mode == "nearest" and align_corners is not None:
            problems.append("align_corners cannot be set with mode='nearest' (as in MindSpore)")
        if align_corners is not None and not isinstance(align_corners, bool):
            problems.append(f"align_corners must be a bool or None, got {align_corners!r}")
        if size is not None:
            size = (size, size) if isinstance(size, int) else tuple(size)
            if len(size) != 2 or not all(isinstance(s, int) and s >= 1 for s in size):
                problems.append(f"size must be a positive int or a pair of them, got {size!r}")
        if problems:
            raise LayerArgumentError("Upsample: " + "; ".join(problems))
        self.size, self.scale_factor, self.mode = size, scale_factor, mode
        self.align_corners, self.recompute_scale_factor = align_corners, recompute_scale_factor

    def construct(self, x):
        if x.ndim != 4:
            raise LayerArgumentError(f"Upsample: expected an N x C x H x W input, got shape {tuple(x.shape)}")
        rows = jnp.asarray(_matrix(self.mode, x.shape[2], self.size[0], bool(self.align_corners)), x.dtype)
        cols = jnp.asarray(_matrix(self.mode, x.shape[3], self.size[1], bool(self.align_corners)), x.dtype)
        return _nn.resize_hw(x, rows, cols)
