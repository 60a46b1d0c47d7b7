"""MINDIR reader rules for the layer primitives of MindSpore 2.10's zoo networks (``NN_OPS``).

What MindSpore 2.10 (CPU, GRAPH_MODE, ``ms.export``) writes for each block, beside the common
Conv2D/BatchNorm/ReLU/MatMul/Add plumbing:

- ResNet basic and bottleneck blocks (``out += identity``): ``InplaceAddExt``.
- MobileNetV2 inverted residual: ``ReLU6``. MobileNetV3: ``HSwish``, ``HSigmoid`` (SE gate),
  ``ReduceMean``, ``AdaptiveAvgPool2D`` (``nn.AdaptiveAvgPool2d``).
- EfficientNet MBConv: ``SiLU``, ``Sigmoid``, ``ReduceMean``.
- ViT: ``Tile`` (class token), ``Unstack`` (q, k, v), ``MatMulExt`` (``ops.matmul``), ``GeLU``,
  ``LayerNorm``. ``nn.MultiheadAttention`` / ``nn.TransformerEncoderLayer``: ``Split``,
  ``MatMulExt``, ``Div``.
- ``nn.LSTM``: the fused CPU ``LSTM`` primitive, ``ReverseV2`` for the backward direction;
  ``nn.GRU`` / ``nn.RNN``: ``Split``, ``make_list`` + ``Stack`` over the time steps.
- ``nn.Conv3d``: ``Conv3D`` (a grouped one split by MindSpore into per-group ``Conv3D``s + ``Concat``);
  ``nn.Conv2dTranspose``: ``Conv2DTranspose(x, weight, input_sizes)``, the input gradient of a ``Conv2D``.
- Inception's padded ``nn.AvgPool2d`` / ``nn.MaxPool2d``: ``ExpandDims`` + ``AvgPool3D`` /
  ``MaxPool3DWithArgmax`` + ``Squeeze``.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from .window import same_pads
from msjax.errors import ExportError

__all__ = ["NN_OPS"]

_HI = lax.Precision.HIGHEST


def _relu6(x):
    return jnp.clip(x, 0.0, 6.0)


def _triple(v, n=3):
    v = tuple(v) if isinstance(v, (tuple, list)) else (v,) * n
    return tuple(int(i) for i in v[-n:])


def _window_pads(size, k, s, d, lo, hi, ceil_mode):
    """(low, high) padding for one dim; ceil_mode adds high padding for a last, partial window
    that still starts inside the input or its low padding (PyTorch's and MindSpore's rule)."""
    eff = (k - 1) * d + 1
    span = size + lo + hi - eff
    if span < 0:
        raise ExportError(f"a window of {eff} does not fit a dim of {size} padded by ({lo}, {hi})")
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + lo:
        out -= 1
    return lo, max((out - 1) * s + eff - size - lo, hi)


def _pool3d_pads(x, k, s, d, pads, ceil_mode):
    return [_window_pads(x.shape[2 + i], k[i], s[i], d[i], pads[i][0], pads[i][1], ceil_mode)
            for i in range(3)]


def _avg_pool3d(args, attrs):
    """AvgPool3D(x) on NCDHW: pad_list (front, back, top, bottom, left, right); count_include_pad
    counts the explicit padding (never the ceil_mode overhang); divisor_override replaces it."""
    x = args[0]
    k, s = _triple(attrs["kernel_size"]), _triple(attrs["strides"])
    p = tuple(attrs.get("pad_list") or attrs.get("pad") or (0,) * 6)
    p = p if len(p) == 6 else (p[0],) * 6
    explicit = [(p[0], p[1]), (p[2], p[3]), (p[4], p[5])]
    if str(attrs.get("pad_mode", "PAD")).upper() == "SAME":
        explicit = [same_pads(x.shape[2 + i], k[i], s[i]) for i in range(3)]
    pads = _pool3d_pads(x, k, s, (1, 1, 1), explicit, bool(attrs.get("ceil_mode", False)))
    window, strides = (1, 1, *k), (1, 1, *s)
    full = [(0, 0), (0, 0)] + pads
    total = lax.reduce_window(x, 0.0, lax.add, window, strides, full)
    divisor = int(attrs.get("divisor_override", 0) or 0)
    if divisor:
        return total / divisor
    ones = jnp.ones(x.shape[2:], x.dtype)
    if attrs.get("count_include_pad", True):
        ones = jnp.pad(ones, explicit, constant_values=1.0)
        full = [(lo - e[0], hi - e[1]) for (lo, hi), e in zip(pads, explicit)]
    else:
        full = pads
    count = lax.reduce_window(ones, 0.0, lax.add, k, s, full)
    return total / count


def _max_pool3d_argmax(args, attrs):
    """MaxPool3DWithArgmax(x) -> (max, argmax): argmax is the flat D*H*W index of the first
    maximum in the window, in the input's own (unpadded) coordinates."""
    x = args[0]
    k, s = _triple(attrs["ksize"]), _triple(attrs["strides"])
    d, p = _triple(attrs.get("dilation", 1)), _triple(attrs.get("pads", 0))
    pads = _pool3d_pads(x, k, s, d, [(v, v) for v in p], bool(attrs.get("ceil_mode", False)))
    index = jnp.arange(x[0, 0].size, dtype=jnp.int32).reshape(x.shape[2:])
    index = jnp.broadcast_to(index, x.shape)

    def pick(a, b):
        take_b = (b[0] > a[0]) | ((b[0] == a[0]) & (b[1] < a[1]))
        return jnp.where(take_b, b[0], a[0]), jnp.where(take_b, b[1], a[1])

    full = [(0, 0), (0, 0)] + pads
    big = jnp.iinfo(jnp.int32).max
    out, arg = lax.reduce_window((x, index), (jnp.array(-jnp.inf, x.dtype), jnp.array(big, jnp.int32)),
                                 pick, (1, 1, *k), (1, 1, *s), full, window_dilation=(1, 1, *d))
    return out, arg


def _conv_pads(mode, attrs, sizes, kernel, stride, dilation):
    """(low, high) per spatial dim of a convolution over ``sizes``: SAME as MindSpore computes it,
    PAD from ``pad_list`` (``pad``), VALID none."""
    n = len(sizes)
    if mode == "same":
        return [same_pads(sizes[i], kernel[i], stride[i], dilation[i]) for i in range(n)]
    if mode == "pad":
        p = attrs.get("pad_list") or attrs.get("pad") or (0,) * (2 * n)
        p = tuple(p) if isinstance(p, (tuple, list)) else (p,) * (2 * n)
        p = p if len(p) == 2 * n else (p[0],) * (2 * n)
        return [(int(p[2 * i]), int(p[2 * i + 1])) for i in range(n)]
    if mode != "valid":
        raise ExportError(f"pad_mode {attrs.get('pad_mode')!r}: MindSpore's convolutions know 'valid', 'same', 'pad'")
    return [(0, 0)] * n


def _conv(x, w, stride, pads, dilation, group, spec):
    return lax.conv_general_dilated(x, w, stride, pads, rhs_dilation=dilation, dimension_numbers=spec,
                                    feature_group_count=group, precision=_HI)


def _conv3d(args, attrs):
    """Conv3D(x (N, C, D, H, W), w (O, C/group, kd, kh, kw)) with MindSpore's stride, dilation, pad_mode."""
    x, w = args[:2]
    if attrs.get("format", "NCDHW") != "NCDHW":
        raise ExportError(f"Conv3D with format {attrs['format']}: only NCDHW is supported")
    stride, dilation = _triple(attrs.get("strides", attrs.get("stride", 1))), _triple(attrs.get("dilations", attrs.get("dilation", 1)))
    pads = _conv_pads(str(attrs.get("pad_mode", "valid")).lower(), attrs, x.shape[2:], w.shape[2:], stride, dilation)
    return _conv(x, w, stride, pads, dilation, int(attrs.get("group", 1)), ("NCDHW", "OIDHW", "NCDHW"))


def _conv2d_transpose(args, attrs):
    """Conv2DTranspose(dout, w, input_sizes): the gradient, with respect to its input of shape
    ``input_sizes``, of the Conv2D of weight ``w`` (dout channels, out channels/group, kh, kw) with
    the primitive's stride, dilation and padding (SAME and PAD as that Conv2D's)."""
    dout, w, sizes = args[0], args[1], tuple(int(d) for d in args[2])
    if attrs.get("format", "NCHW") != "NCHW":
        raise ExportError(f"Conv2DTranspose with format {attrs['format']}: only NCHW is supported")
    stride, dilation = _triple(attrs.get("stride", 1), 2), _triple(attrs.get("dilation", 1), 2)
    pads = _conv_pads(str(attrs.get("pad_mode", "valid")).lower(), attrs, sizes[2:], w.shape[2:], stride, dilation)
    group = int(attrs.get("group", 1))
    _, pull = jax.vjp(lambda v: _conv(v, w, stride, pads, dilation, group, ("NCHW", "OIHW", "NCHW")),
                      jnp.zeros(sizes, dout.dtype))
    return pull(dout)[0]


def _adaptive_avg_pool2d(args, attrs):
    """AdaptiveAvgPool2D(x), output_size (h, w) (None: keep): window i spans
    [floor(i * n / out), ceil((i + 1) * n / out))."""
    x = args[0]
    size = attrs.get("output_size", (1, 1))
    size = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
    h, w = x.shape[-2:]
    oh, ow = (h if size[0] in (None, -1) else int(size[0])), (w if size[1] in (None, -1) else int(size[1]))
    rows = [x[..., (i * h) // oh: -(-((i + 1) * h) // oh), :].mean(-2, keepdims=True) for i in range(oh)]
    x = jnp.concatenate(rows, -2)
    cols = [x[..., (j * w) // ow: -(-((j + 1) * w) // ow)].mean(-1, keepdims=True) for j in range(ow)]
    return jnp.concatenate(cols, -1)


def _lstm(args, attrs):
    """MindSpore CPU's fused LSTM(x (T, B, I), h0, c0 (D, B, H), w (n, 1, 1)) -> (y (T, B, D*H),
    h_n, c_n, reserve, state). ``w`` packs, gates in order i, f, g, o: every direction's w_ih
    (4H, I), then every direction's w_hh (4H, H), then (has_bias) every direction's one bias
    b_ih + b_hh (4H). reserve and state are the kernel's workspace: msjax returns empty arrays."""
    x, h0, c0, w = args[:4]
    hidden, size = int(attrs["hidden_size"]), int(attrs["input_size"])
    dirs = 2 if attrs.get("bidirectional", False) else 1
    if int(attrs.get("num_layers", 1)) != 1:
        raise ExportError(f"LSTM with num_layers={attrs['num_layers']}: MindSpore's CPU kernel "
                          f"itself runs one layer per primitive (nn.LSTM stacks them)")
    g = 4 * hidden
    w = jnp.ravel(w)
    need = dirs * g * (size + hidden) + (dirs * g if attrs.get("has_bias", True) else 0)
    if w.size < need:
        raise ExportError(f"LSTM weights hold {w.size} values; input_size={size}, "
                          f"hidden_size={hidden}, {dirs} direction(s) need {need}")
    w_ih = w[:dirs * g * size].reshape(dirs, g, size)
    w_hh = w[dirs * g * size: dirs * g * (size + hidden)].reshape(dirs, g, hidden)
    start = dirs * g * (size + hidden)
    bias = (w[start:start + dirs * g].reshape(dirs, g) if attrs.get("has_bias", True)
            else jnp.zeros((dirs, g), w.dtype))
    outs, hs, cs = [], [], []
    for d in range(dirs):
        xs = x if d == 0 else x[::-1]
        pre = jnp.einsum("tbi,gi->tbg", xs, w_ih[d], precision=_HI) + bias[d]

        def step(carry, p, d=d):
            h, c = carry
            z = p + jnp.matmul(h, w_hh[d].T, precision=_HI)
            i, f, gg, o = jnp.split(z, 4, axis=-1)
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(gg)
            h = jax.nn.sigmoid(o) * jnp.tanh(c)
            return (h, c), h

        (h, c), ys = lax.scan(step, (h0[d], c0[d]), pre)
        outs.append(ys if d == 0 else ys[::-1])
        hs.append(h)
        cs.append(c)
    empty = jnp.zeros((0,), x.dtype)
    return jnp.concatenate(outs, -1), jnp.stack(hs), jnp.stack(cs), empty, empty


NN_OPS = {
    "ReLU6": lambda a, k: _relu6(a[0]),
    "HSwish": lambda a, k: a[0] * _relu6(a[0] + 3.0) / 6.0,
    "HSigmoid": lambda a, k: _relu6(a[0] + 3.0) / 6.0,
    "SiLU": lambda a, k: jax.nn.silu(a[0]),
    "MatMulExt": lambda a, k: jnp.matmul(a[0], a[1], precision=_HI),
    "AdaptiveAvgPool2D": _adaptive_avg_pool2d,
    "AvgPool3D": _avg_pool3d,
    "MaxPool3DWithArgmax": _max_pool3d_argmax,
    "LSTM": _lstm,
    "Conv3D": _conv3d,
    "Conv2DTranspose": _conv2d_transpose,
}
