"""Conv2d: NCHW input, OIHW weight, MindSpore's pad modes ("same", "valid", "pad").

>>> nn.Conv2d(1, 2, 3)(Tensor(np.ones((1, 1, 5, 5), np.float32))).shape
(1, 2, 5, 5)
"""
from __future__ import annotations

import math

from msjax.common import dtype as mstype
from msjax.common.initializer import HeUniform, Uniform, initializer
from msjax.common.tensor import Parameter
from msjax.errors import LayerArgumentError
from msjax.nn.cell import Cell
from msjax.ops import _nn

__all__ = ["Conv2d"]


class Conv2d(Cell):
    """2D cross-correlation; weight ``(out_channels, in_channels // group, kh, kw)``.

    ``padding`` (an int or ``(top, bottom, left, right)``) applies only with ``pad_mode='pad'``.
    Defaults as MindSpore: weight ``HeUniform(sqrt(5))``, bias ``Uniform(1/sqrt(fan_in))``.
    """

    #: MindSpore parameter <- torch.nn.Conv2d state-dict key (msjax.checkpoint.torch_format)
    TORCH_NAMES = {"weight": "weight", "bias": "bias"}

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, pad_mode="same", padding=0,
                 dilation=1, group=1, has_bias=False, weight_init=None, bias_init=None, data_format="NCHW",
                 dtype=mstype.float32):
        super().__init__()
        if data_format != "NCHW":
            raise LayerArgumentError(f"Conv2d: data_format must be 'NCHW' (MindSpore allows 'NHWC' on GPU only), "
                             f"got {data_format!r}")
        if in_channels % group or out_channels % group:
            raise LayerArgumentError(f"Conv2d: group={group} must divide in_channels={in_channels} and "
                             f"out_channels={out_channels}")
        if str(pad_mode).lower() not in ("same", "valid", "pad"):
            raise LayerArgumentError(f"Conv2d: pad_mode must be 'same', 'valid' or 'pad', got {pad_mode!r}")
        _nn.check_padding(pad_mode, padding)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _nn.pair(kernel_size, "kernel_size")
        self.stride = _nn.pair(stride, "stride")
        self.dilation = _nn.pair(dilation, "dilation")
        self.pad_mode = pad_mode
        self.padding = padding if isinstance(padding, int) else tuple(padding)
        self.group, self.has_bias, self.data_format = group, bool(has_bias), data_format
        shape = (out_channels, in_channels // group) + self.kernel_size
        self.weight = Parameter(initializer(HeUniform(math.sqrt(5)) if weight_init is None else weight_init,
                                            shape, dtype))
        self.bias = None
        if self.has_bias:
            if bias_init is None:
                fan_in = shape[1] * shape[2] * shape[3]
                bias_init = Uniform(1 / math.sqrt(fan_in)) if fan_in else "zeros"
            self.bias = Parameter(initializer(bias_init, (out_channels,), dtype))

    def construct(self, x):
        out = _nn.conv2d(x, self.weight.get_value(), self.stride, self.pad_mode, self.padding, self.dilation,
                         self.group)
        if self.has_bias:
            out = out + self.bias.get_value().astype(out.dtype).reshape(1, -1, 1, 1)
        return out
