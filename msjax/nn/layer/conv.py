"""Conv1d, Conv2d and Conv3d: channels-first input, ``(out, in // group, *kernel)`` weight, MindSpore pad modes.

Conv1d keeps MindSpore's layout: its weight is ``(out, in // group, 1, k)`` (MindSpore runs it as a
Conv2d over a height-1 image), so MindSpore checkpoints load unchanged.

>>> nn.Conv2d(1, 2, 3)(Tensor(np.ones((1, 1, 5, 5), np.float32))).shape
(1, 2, 5, 5)
"""
from __future__ import annotations

import math

from jax import lax

from msjax.common import dtype as mstype
from msjax.common.initializer import HeUniform, Uniform, initializer
from msjax.common.tensor import Parameter, Tensor
from msjax.errors import LayerArgumentError
from msjax.nn.cell import Cell
from msjax.ops import _lowering, _nn

__all__ = ["Conv1d", "Conv2d", "Conv3d"]

_DIMS = {2: ("NCHW", "OIHW", "NCHW"), 3: ("NCDHW", "OIDHW", "NCDHW")}


def tuple_of(value, n, name, layer):
    """``3 -> (3,) * n``; a tuple of ``n`` positive ints as is (MindSpore's per-dimension arguments)."""
    value = (value,) * n if isinstance(value, int) and not isinstance(value, bool) else value
    if (not isinstance(value, (tuple, list)) or len(value) != n
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)):
        raise LayerArgumentError(f"{layer}: {name} must be a positive int or a tuple of {n} positive ints, "
                                 f"got {value!r}")
    return tuple(value)


def conv_pads(pad_mode, padding, spatial, kernel, stride, dilation):
    """Explicit ``((lo, hi), ...)`` per spatial axis: ``same`` is TensorFlow's rule (odd cell at the end),
    ``valid`` none, ``pad`` the int or the ``(lo0, hi0, lo1, hi1, ...)`` tuple."""
    mode = str(pad_mode).lower()
    if mode == "valid":
        return ((0, 0),) * len(spatial)
    if mode == "same":
        pads = []
        for size, k, s, d in zip(spatial, kernel, stride, dilation):
            total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
            pads.append((total // 2, total - total // 2))
        return tuple(pads)
    if isinstance(padding, int):
        return ((padding, padding),) * len(spatial)
    return tuple((padding[2 * i], padding[2 * i + 1]) for i in range(len(spatial)))


class _Conv(Cell):
    """Shared checks and parameters; subclasses set ``_nd`` and may override ``_check``."""
    _nd = 2
    #: MindSpore parameter <- torch.nn.Conv*d state-dict key (msjax.checkpoint.torch_format)
    TORCH_NAMES = {"weight": "weight", "bias": "bias"}

    def __init__(self, in_channels, out_channels, kernel_size, stride, pad_mode, padding, dilation, group, has_bias,
                 weight_init, bias_init, dtype, *, transposed=False):
        super().__init__()
        name = type(self).__name__
        for arg, value in (("in_channels", in_channels), ("out_channels", out_channels), ("group", group)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise LayerArgumentError(f"{name}: {arg} must be a positive int, got {value!r}")
        if in_channels % group or out_channels % group:
            raise LayerArgumentError(f"{name}: group={group} must divide in_channels={in_channels} and "
                                     f"out_channels={out_channels}")
        if str(pad_mode).lower() not in ("same", "valid", "pad"):
            raise LayerArgumentError(f"{name}: pad_mode must be 'same', 'valid' or 'pad', got {pad_mode!r}")
        n_pad = 2 * self._nd
        if not (isinstance(padding, int) and padding >= 0) and not (
                isinstance(padding, tuple) and len(padding) == n_pad
                and all(isinstance(p, int) and p >= 0 for p in padding)):
            raise LayerArgumentError(f"{name}: padding must be a non-negative int or a tuple of {n_pad} of them, "
                                     f"got {padding!r}")
        _nn.check_padding(pad_mode, padding)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.pad_mode, self.padding = pad_mode, padding
        self.group, self.has_bias = group, bool(has_bias)
        channels = (in_channels, out_channels // group) if transposed else (out_channels, in_channels // group)
        shape = channels + self.kernel_size
        if isinstance(weight_init, Tensor) and tuple(weight_init.shape) != shape:
            raise LayerArgumentError(f"{name}: weight_init has shape {tuple(weight_init.shape)}, expected {shape}")
        self.weight = Parameter(initializer(HeUniform(math.sqrt(5)) if weight_init is None else weight_init,
                                            shape, dtype))
        self.bias = None
        if self.has_bias:
            if bias_init is None:
                fan_in = math.prod(shape[1:])
                bias_init = Uniform(1 / math.sqrt(fan_in)) if fan_in else "zeros"
            self.bias = Parameter(initializer(bias_init, (out_channels,), dtype))

    def _conv(self, x, weight):
        pads = conv_pads(self.pad_mode, self.padding, x.shape[2:], weight.shape[2:], self.stride, self.dilation)
        if weight.ndim == 4:  # Conv1d/Conv2d: msjax.ops._lowering picks the fast or the canonical lowering
            out = _lowering.conv2d(x, weight.astype(x.dtype), self.stride, pads, self.dilation, self.group)
        else:
            out = lax.conv_general_dilated(x, weight.astype(x.dtype), window_strides=self.stride, padding=pads,
                                           rhs_dilation=self.dilation, dimension_numbers=_DIMS[weight.ndim - 2],
                                           feature_group_count=self.group)
        if self.has_bias:
            out = out + self.bias.get_value().astype(out.dtype).reshape((1, -1) + (1,) * (out.ndim - 2))
        return out

    def construct(self, x):
        return self._conv(x, self.weight.get_value())


class Conv2d(_Conv):
    """2D cross-correlation; weight ``(out_channels, in_channels // group, kh, kw)``.

    ``padding`` (an int or ``(top, bottom, left, right)``) applies only with ``pad_mode='pad'``.
    Defaults as MindSpore: weight ``HeUniform(sqrt(5))``, bias ``Uniform(1/sqrt(fan_in))``.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, pad_mode="same", padding=0,
                 dilation=1, group=1, has_bias=False, weight_init=None, bias_init=None, data_format="NCHW",
                 dtype=mstype.float32):
        if data_format != "NCHW":
            raise LayerArgumentError(f"Conv2d: data_format must be 'NCHW' (MindSpore allows 'NHWC' on GPU only), "
                                     f"got {data_format!r}")
        self.kernel_size = _nn.pair(kernel_size, "kernel_size")
        self.stride = _nn.pair(stride, "stride")
        self.dilation = _nn.pair(dilation, "dilation")
        self.data_format = data_format
        super().__init__(in_channels, out_channels, kernel_size, stride, pad_mode,
                         padding if isinstance(padding, int) else tuple(padding), dilation, group, has_bias,
                         weight_init, bias_init, dtype)


class Conv1d(_Conv):
    """1D cross-correlation of an N x C x L input; weight ``(out_channels, in_channels // group, 1, k)``.

    ``kernel_size``, ``stride``, ``padding`` (both ends, with ``pad_mode='pad'``) and ``dilation`` are ints.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, pad_mode="same", padding=0, dilation=1,
                 group=1, has_bias=False, weight_init=None, bias_init=None, dtype=mstype.float32):
        for arg, value in (("kernel_size", kernel_size), ("stride", stride), ("padding", padding),
                           ("dilation", dilation)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"Conv1d: {arg} must be an int, got {type(value).__name__}")
        if isinstance(weight_init, Tensor) and weight_init.ndim == 3:   # MindSpore's (out, in, k) form
            weight_init = weight_init.reshape(weight_init.shape[:2] + (1,) + weight_init.shape[2:])
        self.kernel_size = (1, tuple_of(kernel_size, 1, "kernel_size", "Conv1d")[0])
        self.stride = (1, tuple_of(stride, 1, "stride", "Conv1d")[0])
        self.dilation = (1, tuple_of(dilation, 1, "dilation", "Conv1d")[0])
        if isinstance(padding, int) and padding < 0:
            raise LayerArgumentError(f"Conv1d: padding must be a non-negative int, got {padding}")
        super().__init__(in_channels, out_channels, kernel_size, stride, pad_mode, (0, 0, padding, padding),
                         dilation, group, has_bias, weight_init, bias_init, dtype)

    def construct(self, x):
        if x.ndim != 3:
            raise LayerArgumentError(f"Conv1d: expected an N x C x L input, got shape {tuple(x.shape)}")
        return self._conv(x[:, :, None, :], self.weight.get_value())[:, :, 0, :]


class Conv3d(_Conv):
    """3D cross-correlation of an N x C x D x H x W input; weight ``(out, in // group, kd, kh, kw)``.

    ``padding`` is an int or ``(head, tail, top, bottom, left, right)``, with ``pad_mode='pad'``.
    """
    _nd = 3

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, pad_mode="same", padding=0, dilation=1,
                 group=1, has_bias=False, weight_init=None, bias_init=None, data_format="NCDHW",
                 dtype=mstype.float32):
        if data_format != "NCDHW":
            raise LayerArgumentError(f"Conv3d: data_format must be 'NCDHW', got {data_format!r}")
        self.kernel_size = tuple_of(kernel_size, 3, "kernel_size", "Conv3d")
        self.stride = tuple_of(stride, 3, "stride", "Conv3d")
        self.dilation = tuple_of(dilation, 3, "dilation", "Conv3d")
        self.data_format = data_format
        super().__init__(in_channels, out_channels, kernel_size, stride, pad_mode, padding, dilation, group,
                         has_bias, weight_init, bias_init, dtype)

    def construct(self, x):
        if x.ndim != 5:
            raise LayerArgumentError(f"Conv3d: expected an N x C x D x H x W input, got shape {tuple(x.shape)}")
        return self._conv(x, self.weight.get_value())
