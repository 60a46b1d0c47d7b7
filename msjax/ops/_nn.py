"""The array math behind the convolution, pooling and normalisation ops (NCHW, MindSpore rules).

Private: layers and primitives call these; they take and return plain ``jax.Array``s.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from msjax.errors import LayerArgumentError
from msjax.ops import _lowering


def pair(value, name="value"):
    """``3 -> (3, 3)``; ``(2, 3) -> (2, 3)``; one-element tuples are doubled, as MindSpore's ``twice``."""
    if isinstance(value, int):
        return (value, value)
    value = tuple(int(v) for v in value)
    if len(value) == 1:
        return value * 2
    if len(value) == 4:  # MindSpore's (1, 1, h, w) form for kernel_size/strides of primitives
        return value[2:]
    if len(value) != 2:
        raise LayerArgumentError(f"{name} must be an int or a tuple of 2 ints, got {value!r}")
    return value


def pad_pairs(pad_mode, padding, in_hw, kernel, stride, dilation=(1, 1)):
    """Explicit ``((top, bottom), (left, right))`` padding for MindSpore's pad modes.

    ``same``: TensorFlow's rule (output = ceil(in / stride); the odd pixel goes bottom/right);
    ``valid``: none; ``pad``: ``padding`` as an int or ``(top, bottom, left, right)``.
    """
    mode = str(pad_mode).lower()
    if mode == "valid":
        return ((0, 0), (0, 0))
    if mode == "same":
        pads = []
        for size, k, s, d in zip(in_hw, kernel, stride, dilation):
            out = -(-size // s)
            total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
            pads.append((total // 2, total - total // 2))
        return tuple(pads)
    if mode == "pad":
        if isinstance(padding, int):
            return ((padding, padding), (padding, padding))
        padding = tuple(padding)
        if len(padding) == 2:
            return ((padding[0], padding[0]), (padding[1], padding[1]))
        if len(padding) != 4:
            raise LayerArgumentError(f"padding must be an int or (top, bottom, left, right), got {padding!r}")
        return ((padding[0], padding[1]), (padding[2], padding[3]))
    raise LayerArgumentError(f"pad_mode must be 'same', 'valid' or 'pad', got {pad_mode!r}")


def check_padding(pad_mode, padding):
    """MindSpore allows a non-zero ``padding`` only with ``pad_mode='pad'``."""
    nonzero = padding != 0 if isinstance(padding, int) else any(p != 0 for p in padding)
    if nonzero and str(pad_mode).lower() != "pad":
        raise LayerArgumentError(f"padding={padding!r} needs pad_mode='pad', got pad_mode={pad_mode!r}")


def conv2d(x, weight, stride=1, pad_mode="valid", padding=0, dilation=1, group=1):
    """NCHW input, OIHW weight cross-correlation with MindSpore's padding."""
    stride, dilation = pair(stride, "stride"), pair(dilation, "dilation")
    kernel = weight.shape[2:]
    pads = pad_pairs(pad_mode, padding, x.shape[2:], kernel, stride, dilation)
    return _lowering.conv2d(x, weight.astype(x.dtype), stride, pads, dilation, group)


def _window(x, kernel, stride, pads):
    return (1, 1) + kernel, (1, 1) + stride, ((0, 0), (0, 0)) + tuple(pads)


def max_pool2d(x, kernel_size=1, stride=1, pad_mode="valid", padding=0):
    """Max over NCHW windows; padded cells never win."""
    kernel, stride = pair(kernel_size, "kernel_size"), pair(stride, "stride")
    pads = pad_pairs(pad_mode, padding, x.shape[2:], kernel, stride)
    return _lowering.max_pool2d(x, kernel, stride, pads)


def avg_pool2d(x, kernel_size=1, stride=1, pad_mode="valid", padding=0, count_include_pad=True,
               divisor_override=None):
    """Mean over NCHW windows. ``same`` divides by the cells inside the input (MindSpore's rule)."""
    kernel, stride = pair(kernel_size, "kernel_size"), pair(stride, "stride")
    pads = pad_pairs(pad_mode, padding, x.shape[2:], kernel, stride)
    dims, strides, padding = _window(x, kernel, stride, pads)
    # a Python 0.0 init lets jax recognise the sum monoid (reduce_window_sum has a gradient rule)
    total = lax.reduce_window(x, 0.0, lax.add, dims, strides, padding)
    if divisor_override:
        return total / divisor_override
    if str(pad_mode).lower() == "same" or not count_include_pad:
        ones = np.ones((1, 1) + x.shape[2:], x.dtype)
        count = lax.reduce_window(ones, 0.0, lax.add, dims, strides, padding)
        return total / count
    return total / (kernel[0] * kernel[1])


def batch_norm_stats(x):
    """Per-channel (axis 1) mean, biased and unbiased variance of an N x C x ... array."""
    axes = tuple(i for i in range(x.ndim) if i != 1)
    count = x.size // x.shape[1]
    mean = jnp.mean(x, axis=axes)
    var = jnp.mean(jnp.square(x - jnp.expand_dims(mean, axes)), axis=axes)
    return mean, var, var * (count / max(count - 1, 1))


def batch_norm(x, mean, var, gamma, beta, eps):
    """``(x - mean) / sqrt(var + eps) * gamma + beta`` with per-channel vectors on axis 1."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    scale = gamma * lax.rsqrt(var + eps)
    return x * scale.reshape(shape) + (beta - mean * scale).reshape(shape)


def layer_norm(x, gamma, beta, begin_norm_axis=-1, begin_params_axis=-1, epsilon=1e-7):
    """MindSpore's LayerNorm: normalise over axes ``begin_norm_axis..``; scale from ``begin_params_axis``."""
    norm_axis = begin_norm_axis % x.ndim
    params_axis = begin_params_axis % x.ndim
    axes = tuple(range(norm_axis, x.ndim))
    mean = jnp.mean(x, axis=axes, keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=axes, keepdims=True)
    y = (x - mean) * lax.rsqrt(var + epsilon)
    shape = (1,) * params_axis + tuple(gamma.shape)
    return y * gamma.reshape(shape).astype(x.dtype) + beta.reshape(shape).astype(x.dtype)


def gelu(x, approximate="tanh"):
    """GELU; ``approximate='tanh'`` (MindSpore's default) or ``'none'`` (exact erf form)."""
    return jax.nn.gelu(x, approximate=approximate == "tanh")


def resize_hw(x, rows, cols):
    """``rows @ x @ cols.T`` over the last two axes of ``x`` (``rows``: (out_h, h), ``cols``: (out_w, w)).

    Written as two plain 2-D matrix products with reshapes and transposes, which every export
    format writes (an einsum would be a batched ``dot_general`` MINDIR has no form for).
    """
    lead, (h, w) = x.shape[:-2], x.shape[-2:]
    y = x.reshape(-1, w) @ cols.T                                        # (..., h, out_w)
    y = jnp.swapaxes(y.reshape(lead + (h, cols.shape[0])), -1, -2)       # (..., out_w, h)
    y = y.reshape(-1, h) @ rows.T                                        # (..., out_w, out_h)
    return jnp.swapaxes(y.reshape(lead + (cols.shape[0], rows.shape[0])), -1, -2)
