"""MindSpore's primitive classes (``ops.ReLU()``, ``ops.ReduceMean(keep_dims=True)``, ...).

A primitive is configured once (its attributes) and called like a function. Primitives compare
equal by class and attributes, so two cells holding equal primitives share a jit cache entry.

>>> ops.ReduceMean(keep_dims=True)(Tensor(np.ones((2, 3), np.float32)), 1).shape
(2, 1)
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from msjax.common.tensor import Tensor, unwrap
from msjax.ops import _nn
from msjax.ops import functional as F

__all__ = ["Primitive", "ReLU", "Sigmoid", "Tanh", "GeLU", "Softmax", "ReduceMean", "ReduceSum",
           "ReduceMax", "MatMul", "BiasAdd", "Reshape", "Shape", "Flatten", "Transpose", "ExpandDims",
           "Squeeze", "Concat", "Add", "Sub", "Mul", "Div", "RealDiv", "Square", "Sqrt", "Cast",
           "Conv2D", "MaxPool", "AvgPool", "Gather", "OneHot", "Assign", "AssignAdd", "AssignSub"]


class Primitive:
    """Base class: subclasses set attributes in ``__init__`` and implement ``run`` on jax arrays."""

    def __call__(self, *args):
        out = self.run(*unwrap(args))
        if isinstance(out, jax.Array) and not isinstance(out, jax.core.Tracer):
            return Tensor(out)
        return out

    def run(self, *args):
        raise NotImplementedError

    def _key(self):
        return (type(self),) + tuple(sorted((k, repr(v)) for k, v in vars(self).items()))

    def __eq__(self, other):
        return isinstance(other, Primitive) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        attrs = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({attrs})"


def _elementwise(name, fn):
    return type(name, (Primitive,), {"run": lambda self, *args: fn(*args), "__doc__": f"ops.{name}()"})


ReLU = _elementwise("ReLU", jax.nn.relu)
Sigmoid = _elementwise("Sigmoid", jax.nn.sigmoid)
Tanh = _elementwise("Tanh", jnp.tanh)
GeLU = _elementwise("GeLU", lambda x: _nn.gelu(x, "tanh"))
Add = _elementwise("Add", jnp.add)
Sub = _elementwise("Sub", jnp.subtract)
Mul = _elementwise("Mul", jnp.multiply)
Div = _elementwise("Div", jnp.divide)
RealDiv = _elementwise("RealDiv", jnp.divide)
Square = _elementwise("Square", jnp.square)
Sqrt = _elementwise("Sqrt", jnp.sqrt)
Reshape = _elementwise("Reshape", lambda x, shape: jnp.reshape(x, tuple(shape)))
Transpose = _elementwise("Transpose", lambda x, perm: jnp.transpose(x, tuple(perm)))
ExpandDims = _elementwise("ExpandDims", jnp.expand_dims)
Flatten = _elementwise("Flatten", lambda x: jnp.reshape(x, (x.shape[0], -1)))
Gather = _elementwise("Gather", lambda params, indices, axis, batch_dims=0: jnp.take(params, indices, axis=axis))


class Shape(Primitive):
    """``ops.Shape()(x)``: the static shape tuple."""

    def run(self, x):
        return tuple(jnp.shape(x))


class Softmax(Primitive):
    def __init__(self, axis=-1):
        self.axis = axis

    def run(self, x):
        return jax.nn.softmax(x, axis=self.axis)


class _Reduce(Primitive):
    _fn = None

    def __init__(self, keep_dims=False):
        self.keep_dims = keep_dims

    def run(self, x, axis=()):
        axis = None if axis == () or axis is None else axis
        return type(self)._fn(x, axis=axis, keepdims=self.keep_dims)


class ReduceMean(_Reduce):
    """``ops.ReduceMean(keep_dims=False)(x, axis=())``; ``()`` reduces every axis."""
    _fn = staticmethod(jnp.mean)


class ReduceSum(_Reduce):
    _fn = staticmethod(jnp.sum)


class ReduceMax(_Reduce):
    _fn = staticmethod(jnp.max)


class MatMul(Primitive):
    def __init__(self, transpose_a=False, transpose_b=False):
        self.transpose_a, self.transpose_b = transpose_a, transpose_b

    def run(self, x, y):
        return jnp.matmul(x.T if self.transpose_a else x, y.T if self.transpose_b else y)


class BiasAdd(Primitive):
    def __init__(self, data_format="NCHW"):
        self.data_format = data_format

    def run(self, x, bias):
        return F.bias_add.__wrapped__(x, bias, self.data_format)


class Squeeze(Primitive):
    def __init__(self, axis=()):
        self.axis = axis

    def run(self, x):
        return jnp.squeeze(x, None if self.axis == () else self.axis)


class Concat(Primitive):
    def __init__(self, axis=0):
        self.axis = axis

    def run(self, tensors):
        return jnp.concatenate(tensors, axis=self.axis)


class Cast(Primitive):
    def run(self, x, dtype):
        return F.cast.__wrapped__(x, dtype)


class Conv2D(Primitive):
    """``ops.Conv2D(out_channel, kernel_size, ...)(x, weight)``: NCHW x OIHW."""

    def __init__(self, out_channel, kernel_size, mode=1, pad_mode="valid", pad=0, stride=1, dilation=1,
                 group=1, data_format="NCHW"):
        self.out_channel, self.kernel_size, self.mode = out_channel, kernel_size, mode
        self.pad_mode, self.pad, self.stride, self.dilation = pad_mode, pad, stride, dilation
        self.group, self.data_format = group, data_format

    def run(self, x, weight):
        return _nn.conv2d(x, weight, self.stride, self.pad_mode, self.pad, self.dilation, self.group)


class MaxPool(Primitive):
    def __init__(self, kernel_size=1, strides=1, pad_mode="valid", data_format="NCHW"):
        self.kernel_size, self.strides, self.pad_mode, self.data_format = kernel_size, strides, pad_mode, data_format

    def run(self, x):
        return _nn.max_pool2d(x, self.kernel_size, self.strides, self.pad_mode)


class AvgPool(MaxPool):
    def run(self, x):
        return _nn.avg_pool2d(x, self.kernel_size, self.strides, self.pad_mode)


class OneHot(Primitive):
    def __init__(self, axis=-1):
        self.axis = axis

    def run(self, indices, depth, on_value, off_value):
        return F.one_hot.__wrapped__(indices, depth, on_value, off_value, self.axis)


class _Update(Primitive):
    """An in-place Parameter update: the Parameter itself is passed, not its array."""

    _fn = None

    def __call__(self, variable, value):
        return type(self)._fn(variable, value)


class Assign(_Update):
    """``ops.Assign()(variable, value)``: ``variable`` (a Parameter) takes ``value``."""
    _fn = staticmethod(F.assign)


class AssignAdd(_Update):
    """``ops.AssignAdd()(variable, value)``: ``variable += value`` in place."""
    _fn = staticmethod(F.assign_add)


class AssignSub(_Update):
    """``ops.AssignSub()(variable, value)``: ``variable -= value`` in place."""
    _fn = staticmethod(F.assign_sub)
