"""Conv2dTranspose: the transpose (input gradient) of a Conv2d, with MindSpore's weight layout and sizes.

The weight is ``(in_channels, out_channels // group, kh, kw)``, as MindSpore and PyTorch store it.
The output size follows MindSpore's ``_deconv_output_length``: ``same`` gives ``in * stride``,
``valid`` ``in * stride + max(k_eff - stride, 0)``, ``pad`` ``in * stride - (lo + hi) + k_eff - stride``
(``k_eff = (k - 1) * dilation + 1``); ``output_padding`` then appends zeros at the bottom/right.

>>> nn.Conv2dTranspose(2, 3, 3, stride=2)(Tensor(np.ones((1, 2, 4, 4), np.float32))).shape
(1, 3, 8, 8)
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from msjax.common import dtype as mstype
from msjax.errors import LayerArgumentError
from msjax.nn.layer.conv import _Conv, conv_pads
from msjax.ops import _nn

__all__ = ["Conv2dTranspose"]


def _out_length(mode, size, k, s, d, pad_total):
    k_eff = (k - 1) * d + 1
    if mode == "valid":
        return size * s + max(k_eff - s, 0)
    if mode == "same":
        return size * s
    return size * s - pad_total + k_eff - s


class Conv2dTranspose(_Conv):
    """2D transposed convolution of an N x C x H x W input (``padding`` and ``output_padding`` need
    ``pad_mode='pad'``)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, pad_mode="same", padding=0,
                 output_padding=0, dilation=1, group=1, has_bias=False, weight_init=None, bias_init=None,
                 dtype=mstype.float32):
        self.kernel_size = _nn.pair(kernel_size, "kernel_size")
        self.stride = _nn.pair(stride, "stride")
        self.dilation = _nn.pair(dilation, "dilation")
        out_pad = _nn.pair(output_padding, "output_padding")
        limits = tuple(max(s, d) for s, d in zip(self.stride, self.dilation))
        if any(not 0 <= p < lim for p, lim in zip(out_pad, limits)):
            raise LayerArgumentError(f"Conv2dTranspose: output_padding={output_padding!r} must be in "
                                     f"[0, max(stride, dilation)) = [0, {limits}) per axis")
        if any(out_pad) and str(pad_mode).lower() != "pad":
            raise LayerArgumentError(f"Conv2dTranspose: output_padding={output_padding!r} needs pad_mode='pad', "
                                     f"got {pad_mode!r}")
        super().__init__(in_channels, out_channels, kernel_size, stride, pad_mode, padding, dilation, group,
                         has_bias, weight_init, bias_init, dtype, transposed=True)
        self.output_padding = output_padding

    def construct(self, x):
        if x.ndim != 4:
            raise LayerArgumentError(f"Conv2dTranspose: expected an N x C x H x W input, got shape {tuple(x.shape)}")
        weight = self.weight.get_value().astype(x.dtype)
        mode = str(self.pad_mode).lower()
        pad4 = (self.padding,) * 4 if isinstance(self.padding, int) else self.padding
        out_hw = tuple(_out_length(mode, size, k, s, d, pad4[2 * i] + pad4[2 * i + 1])
                       for i, (size, k, s, d) in enumerate(zip(x.shape[2:], self.kernel_size, self.stride,
                                                               self.dilation)))
        pads = conv_pads(mode, self.padding, out_hw, self.kernel_size, self.stride, self.dilation)

        def forward(z):  # the Conv2d whose input gradient this layer is
            return lax.conv_general_dilated(z, weight, self.stride, pads, rhs_dilation=self.dilation,
                                            dimension_numbers=("NCHW", "OIHW", "NCHW"),
                                            feature_group_count=self.group)

        spec = jax.ShapeDtypeStruct((x.shape[0], self.out_channels) + out_hw, x.dtype)
        out, = jax.linear_transpose(forward, spec)(x)
        if self.has_bias:
            out = out + self.bias.get_value().astype(out.dtype).reshape(1, -1, 1, 1)
        out_pad = _nn.pair(self.output_padding, "output_padding")
        if any(out_pad):
            out = jnp.pad(out, ((0, 0), (0, 0), (0, out_pad[0]), (0, out_pad[1])))
        return out
