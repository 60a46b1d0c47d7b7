"""Max/average pooling: 1d and 2d with MindSpore's pad modes, and adaptive 2d pooling.

>>> nn.MaxPool2d(kernel_size=2, stride=2)(Tensor(np.ones((1, 1, 4, 4), np.float32))).shape
(1, 1, 2, 2)
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from msjax.errors import LayerArgumentError
from msjax.nn.cell import Cell
from msjax.ops import _nn

__all__ = ["MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d"]


class _Pool2d(Cell):
    def __init__(self, kernel_size, stride, pad_mode, padding, ceil_mode, data_format):
        super().__init__()
        name = type(self).__name__
        if str(pad_mode).lower() not in ("same", "valid", "pad"):
            raise LayerArgumentError(f"{name}: pad_mode must be 'same', 'valid' or 'pad', got {pad_mode!r}")
        if ceil_mode:
            raise LayerArgumentError(f"{name}: ceil_mode=True is not supported by msjax; pad explicitly instead")
        if data_format != "NCHW":
            raise LayerArgumentError(f"{name}: data_format must be 'NCHW', got {data_format!r}")
        _nn.check_padding(pad_mode, padding)
        self.kernel_size = _nn.pair(kernel_size, "kernel_size")
        self.stride = _nn.pair(stride, "stride")
        self.pad_mode, self.format = pad_mode, data_format
        self.padding = padding if isinstance(padding, int) else tuple(padding)

    def construct(self, x):
        squeeze = x.ndim == 3
        out = self._pool(x[None] if squeeze else x)
        return out[0] if squeeze else out


class MaxPool2d(_Pool2d):
    """Max over ``kernel_size`` windows; ``padding`` (int or (top, bottom, left, right)) needs pad_mode='pad'."""

    def __init__(self, kernel_size=1, stride=1, pad_mode="valid", padding=0, dilation=1, return_indices=False,
                 ceil_mode=False, data_format="NCHW"):
        if dilation != 1 or return_indices:
            raise LayerArgumentError("MaxPool2d: dilation != 1 and return_indices=True are not supported by msjax")
        super().__init__(kernel_size, stride, pad_mode, padding, ceil_mode, data_format)

    def _pool(self, x):
        return _nn.max_pool2d(x, self.kernel_size, self.stride, self.pad_mode, self.padding)


class AvgPool2d(_Pool2d):
    """Mean over windows; ``same`` and ``count_include_pad=False`` divide by the cells inside the input."""

    def __init__(self, kernel_size=1, stride=1, pad_mode="valid", padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None, data_format="NCHW"):
        super().__init__(kernel_size, stride, pad_mode, padding, ceil_mode, data_format)
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def _pool(self, x):
        return _nn.avg_pool2d(x, self.kernel_size, self.stride, self.pad_mode, self.padding,
                              self.count_include_pad, self.divisor_override)


class _Pool1d(Cell):
    """An N x C x L (or C x L) pool run as the 2d pool over a height-1 image."""

    def __init__(self, kernel_size, stride, pad_mode, padding, ceil_mode):
        super().__init__()
        name = type(self).__name__
        problems = [f"{arg} must be a positive int, got {v!r}" for arg, v in
                    (("kernel_size", kernel_size), ("stride", stride))
                    if isinstance(v, bool) or not isinstance(v, int) or v < 1]
        if str(pad_mode).lower() not in ("same", "valid", "pad"):
            problems.append(f"pad_mode must be 'same', 'valid' or 'pad', got {pad_mode!r}")
        if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
            problems.append(f"padding must be a non-negative int, got {padding!r}")
        if ceil_mode:
            problems.append("ceil_mode=True is not supported by msjax; pad explicitly instead")
        if problems:
            raise LayerArgumentError(f"{name}: " + "; ".join(problems))
        _nn.check_padding(pad_mode, padding)
        self.kernel_size, self.stride, self.pad_mode, self.padding = kernel_size, stride, pad_mode, padding

    def construct(self, x):
        if x.ndim not in (2, 3):
            raise LayerArgumentError(f"{type(self).__name__}: expected an N x C x L or C x L input, "
                                     f"got shape {tuple(x.shape)}")
        squeeze = x.ndim == 2
        x = x[None] if squeeze else x
        out = self._pool(x[:, :, None, :], (1, self.kernel_size), (1, self.stride), (0, 0, self.padding,
                                                                                      self.padding))[:, :, 0, :]
        return out[0] if squeeze else out


class MaxPool1d(_Pool1d):
    """Max over ``kernel_size`` windows of the last axis; ``padding`` (both ends) needs pad_mode='pad'."""

    def __init__(self, kernel_size=1, stride=1, pad_mode="valid", padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        if dilation != 1 or return_indices:
            raise LayerArgumentError("MaxPool1d: dilation != 1 and return_indices=True are not supported by msjax")
        super().__init__(kernel_size, stride, pad_mode, padding, ceil_mode)

    def _pool(self, x, kernel, stride, padding):
        return _nn.max_pool2d(x, kernel, stride, self.pad_mode, padding)


class AvgPool1d(_Pool1d):
    """Mean over windows of the last axis; ``count_include_pad=False`` divides by the cells inside the input."""

    def __init__(self, kernel_size=1, stride=1, pad_mode="valid", padding=0, ceil_mode=False, count_include_pad=True):
        super().__init__(kernel_size, stride, pad_mode, padding, ceil_mode)
        self.count_include_pad = count_include_pad

    def _pool(self, x, kernel, stride, padding):
        return _nn.avg_pool2d(x, kernel, stride, self.pad_mode, padding, self.count_include_pad)


def _bins(n_in, n_out):
    """Adaptive windows ``[floor(i * in / out), ceil((i + 1) * in / out))`` for each output cell i."""
    return [(i * n_in // n_out, -(-(i + 1) * n_in // n_out)) for i in range(n_out)]


class _AdaptivePool2d(Cell):
    def __init__(self, output_size):
        super().__init__()
        size = (output_size, output_size) if isinstance(output_size, int) else output_size
        if (not isinstance(size, (tuple, list)) or len(size) != 2
                or not all(s is None or (isinstance(s, int) and s >= 1) for s in size)):
            raise LayerArgumentError(f"{type(self).__name__}: output_size must be a positive int or a pair of "
                                     f"positive ints or None (None keeps that size), got {output_size!r}")
        self.output_size = output_size
        self._size = tuple(size)

    def construct(self, x):
        if x.ndim not in (3, 4):
            raise LayerArgumentError(f"{type(self).__name__}: expected an N x C x H x W or C x H x W input, "
                                     f"got shape {tuple(x.shape)}")
        out_hw = tuple(x.shape[-2 + i] if s is None else s for i, s in enumerate(self._size))
        return self._pool(x, _bins(x.shape[-2], out_hw[0]), _bins(x.shape[-1], out_hw[1]))


class AdaptiveAvgPool2d(_AdaptivePool2d):
    """Mean over adaptive windows to ``output_size`` (``None`` in it keeps that input size)."""

    def _pool(self, x, rows, cols):
        def matrix(bins, n_in):  # each output cell averages its window: a small matrix per axis
            m = np.zeros((len(bins), n_in), np.float32)
            for i, (lo, hi) in enumerate(bins):
                m[i, lo:hi] = 1 / (hi - lo)
            return jnp.asarray(m, x.dtype)

        return _nn.resize_hw(x, matrix(rows, x.shape[-2]), matrix(cols, x.shape[-1]))


class AdaptiveMaxPool2d(_AdaptivePool2d):
    """Max over adaptive windows to ``output_size``; ``return_indices=True`` is not supported by msjax."""

    def __init__(self, output_size, return_indices=False):
        if return_indices:
            raise LayerArgumentError("AdaptiveMaxPool2d: return_indices=True is not supported by msjax")
        super().__init__(output_size)
        self.return_indices = return_indices

    def _pool(self, x, rows, cols):
        def per_bin(x, bins, axis):  # one static slice and max per window, joined: no gather to export
            return jnp.concatenate([jnp.max(jax.lax.slice_in_dim(x, lo, hi, axis=axis), axis=axis, keepdims=True)
                                    for lo, hi in bins], axis=axis)

        return per_bin(per_bin(x, rows, x.ndim - 2), cols, x.ndim - 1)
