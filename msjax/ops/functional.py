"""MindSpore's functional ops (``msjax.ops.relu``, ``ops.matmul``, ...) on ``jax.Array``s.

Each takes and returns arrays (Tensors are unwrapped), so they work inside ``construct`` under jit
and, called eagerly, return a ``Tensor``.

>>> ops.relu(Tensor(np.array([-1.0, 2.0], np.float32))).asnumpy()
array([0., 2.], dtype=float32)
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from msjax.common import dtype as mstype
from msjax.common._tensor import Tensor, unwrap
from msjax.common.parameter import assign, assign_add, assign_sub, assign_value  # noqa: F401  (MindSpore's ops names)
from msjax.ops import _nn

__all__ = ["relu", "sigmoid", "tanh", "gelu", "softmax", "matmul", "reshape", "flatten", "transpose",
           "expand_dims", "squeeze", "concat", "cat", "mean", "sum", "bias_add", "conv2d", "max_pool2d",
           "avg_pool2d", "dropout", "cast", "shape", "square", "sqrt", "exp", "log", "abs", "maximum",
           "minimum", "add", "sub", "mul", "div", "gather", "one_hot", "assign", "assign_add",
           "assign_sub"]


def _tensor_io(fn):
    """Unwrap Tensor arguments; wrap the result as a Tensor unless jax is tracing."""
    @functools.wraps(fn)
    def op(*args, **kwargs):
        out = fn(*unwrap(args), **unwrap(kwargs))
        if isinstance(out, jax.Array) and not isinstance(out, jax.core.Tracer):
            return Tensor(out)
        return out
    return op


@_tensor_io
def relu(input):  # noqa: A002  (MindSpore's argument name)
    return jax.nn.relu(jnp.asarray(input))


@_tensor_io
def sigmoid(input):  # noqa: A002
    return jax.nn.sigmoid(jnp.asarray(input))


@_tensor_io
def tanh(input):  # noqa: A002
    return jnp.tanh(input)


@_tensor_io
def gelu(input, approximate="none"):  # noqa: A002  (ops.gelu defaults to the exact form)
    return _nn.gelu(jnp.asarray(input), approximate)


@_tensor_io
def softmax(input, axis=-1, *, dtype=None):  # noqa: A002
    x = jnp.asarray(input)
    return jax.nn.softmax(x if dtype is None else x.astype(mstype.to_numpy(dtype)), axis=axis)


@_tensor_io
def matmul(input, other):  # noqa: A002
    return jnp.matmul(input, other)


@_tensor_io
def reshape(input, shape):  # noqa: A002
    return jnp.reshape(input, tuple(shape))


@_tensor_io
def flatten(input, order="C", *, start_dim=1, end_dim=-1):  # noqa: A002
    x = jnp.asarray(input)
    if x.ndim == 0:
        return x.reshape(1)
    start, end = start_dim % x.ndim, end_dim % x.ndim
    return x.reshape(x.shape[:start] + (-1,) + x.shape[end + 1:]) if end >= start else x


@_tensor_io
def transpose(input, input_perm):  # noqa: A002
    return jnp.transpose(input, tuple(input_perm))


@_tensor_io
def expand_dims(input_x, axis):
    return jnp.expand_dims(input_x, axis)


@_tensor_io
def squeeze(input, axis=None):  # noqa: A002
    return jnp.squeeze(input, axis)


@_tensor_io
def concat(tensors, axis=0):
    return jnp.concatenate(tensors, axis=axis)


cat = concat


@_tensor_io
def mean(input, axis=None, keep_dims=False):  # noqa: A002
    return jnp.mean(input, axis=None if axis is None or axis == () else axis, keepdims=keep_dims)


@_tensor_io
def sum(input, dim=None, keepdim=False, *, dtype=None):  # noqa: A001,A002
    return jnp.sum(input, axis=dim, keepdims=keepdim, dtype=None if dtype is None else mstype.to_numpy(dtype))


@_tensor_io
def bias_add(input_x, bias, data_format="NCHW"):
    shape = (1, -1) + (1,) * (jnp.ndim(input_x) - 2) if data_format != "NHWC" else (-1,)
    return input_x + jnp.reshape(bias, shape).astype(jnp.result_type(input_x))


@_tensor_io
def conv2d(input, weight, bias=None, stride=1, pad_mode="valid", padding=0, dilation=1, groups=1):  # noqa: A002
    out = _nn.conv2d(jnp.asarray(input), jnp.asarray(weight), stride, pad_mode, padding, dilation, groups)
    return out if bias is None else out + jnp.reshape(bias, (1, -1, 1, 1))


@_tensor_io
def max_pool2d(x, kernel_size, stride=None, padding=0):
    pad = "pad" if padding else "valid"
    return _nn.max_pool2d(jnp.asarray(x), kernel_size, stride or kernel_size, pad, padding)


@_tensor_io
def avg_pool2d(input_x, kernel_size=1, stride=1, padding=0, ceil_mode=False, count_include_pad=True,  # noqa
               divisor_override=None):
    pad = "pad" if padding else "valid"
    return _nn.avg_pool2d(jnp.asarray(input_x), kernel_size, stride, pad, padding, count_include_pad,
                          divisor_override)


def dropout(input, p=0.5, training=True, seed=None, *, key=None):  # noqa: A002
    """Zero each element with probability ``p`` and scale the rest by ``1/(1-p)``.

    ``key`` (a jax PRNG key) is msjax's source of randomness; without it ``seed`` (default 0) is used.
    """
    x = unwrap(input)
    if not training or p == 0:
        return input
    key = jax.random.PRNGKey(seed or 0) if key is None else key
    keep = jax.random.bernoulli(key, 1.0 - p, jnp.shape(x))
    out = jnp.where(keep, x / (1.0 - p), jnp.zeros((), jnp.result_type(x)))
    return out if isinstance(out, jax.core.Tracer) else Tensor(out)


@_tensor_io
def cast(input, dtype):  # noqa: A002
    return jnp.asarray(input).astype(mstype.to_numpy(dtype))


def shape(input_x):
    """The static shape as a tuple of ints."""
    return tuple(jnp.shape(unwrap(input_x)))


square = _tensor_io(jnp.square)
sqrt = _tensor_io(jnp.sqrt)
exp = _tensor_io(jnp.exp)
log = _tensor_io(jnp.log)
abs = _tensor_io(jnp.abs)  # noqa: A001
maximum = _tensor_io(jnp.maximum)
minimum = _tensor_io(jnp.minimum)
add = _tensor_io(jnp.add)
sub = _tensor_io(jnp.subtract)
mul = _tensor_io(jnp.multiply)
div = _tensor_io(jnp.divide)


@_tensor_io
def gather(input_params, input_indices, axis, batch_dims=0):
    return jnp.take(input_params, input_indices, axis=axis)


@_tensor_io
def one_hot(indices, depth, on_value=1, off_value=0, axis=-1):
    hot = jax.nn.one_hot(indices, depth, axis=axis)
    return jnp.where(hot > 0, jnp.asarray(on_value), jnp.asarray(off_value))
