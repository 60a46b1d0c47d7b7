"""MaxPool2d and AvgPool2d on NCHW input with MindSpore's pad modes.

>>> nn.MaxPool2d(kernel_size=2, stride=2)(Tensor(np.ones((1, 1, 4, 4), np.float32))).shape
(1, 1, 2, 2)
"""
from __future__ import annotations

from msjax.errors import LayerArgumentError
from msjax.nn.cell import Cell
from msjax.ops import _nn

__all__ = ["MaxPool2d", "AvgPool2d"]


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
