"""``Tensor``: MindSpore's Tensor, a thin face over ``jax.Array`` (or ``np.ndarray`` for dtypes jax
cannot hold). The class keeps its data, the Python protocol and the operators; its methods come in
families from ``_tensor_conversions``, ``_tensor_shapes`` and ``_tensor_reductions``, and the rules
they share from ``_tensor_rules`` and ``_tensor_args``."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from msjax.common import dtype as mstype
from msjax.common._tensor_args import _check_bounds, _index, _NoData, _no_data, _one_element
from msjax.common._tensor_conversions import ConversionMethods
from msjax.common._tensor_reductions import ReductionMethods
from msjax.common._tensor_rules import (
    _COMPARISONS,
    _INT,
    ArrayHolder,
    _as,
    _as_array,
    _cast,
    _int_pow,
    _jax_holds,
    _kind,
    _operand,
    _xp,
    unwrap,
)
from msjax.common._tensor_shapes import ShapeMethods

__all__ = ["Tensor", "unwrap"]


def _wrap(data):
    """A Tensor over ``data`` as it is (numpy scalars become 0-d arrays)."""
    obj = object.__new__(Tensor)
    obj._data = np.asarray(data) if isinstance(data, np.generic) else data
    return obj



def _operator(name, reverse=False):
    def method(self, other):
        a = self._data
        b, dtype = _operand(a, other)
        if b is NotImplemented:
            return NotImplemented
        if name == "divide" and _kind(dtype) <= _INT:
            dtype = np.dtype(np.float32)
        out = np.dtype(np.bool_) if name in _COMPARISONS else dtype
        xp = _xp((a, b), dtype)
        x, y = _cast(xp, a, dtype), _cast(xp, b, dtype)
        if reverse:
            x, y = y, x
        with np.errstate(all="ignore"):
            if name == "power" and _kind(dtype) <= _INT:
                result = _int_pow(xp, x, y)
            elif name == "subtract" and dtype == np.bool_:
                result = xp.logical_xor(x, y)
            else:
                result = getattr(xp, name)(x, y)
        return _wrap(_as(xp, result, out))
    method.__name__ = f"__{'r' if reverse else ''}{name}__"
    return method



def _matmul(a, other, reverse):
    b = other._array() if isinstance(other, ArrayHolder) else other
    if isinstance(b, (list, tuple, np.generic)):
        b = np.asarray(b)
    if not isinstance(b, (np.ndarray, jax.Array)):
        return NotImplemented
    if np.dtype(a.dtype) != np.dtype(b.dtype):
        first, second = (b, a) if reverse else (a, b)
        raise TypeError(f"For 'MatMulExt', the type of 'x2' should be same as 'x1', but got 'x1' with type "
                        f"Tensor[{mstype.from_numpy(first.dtype)}] and 'x2' with type "
                        f"Tensor[{mstype.from_numpy(second.dtype)}].")
    xp = _xp((a, b), a.dtype)
    x, y = (b, a) if reverse else (a, b)
    if xp is np:
        x, y = np.asarray(x), np.asarray(y)
    return _wrap(_as(xp, xp.matmul(x, y), np.dtype(a.dtype)))



@jax.tree_util.register_pytree_node_class
class Tensor(ConversionMethods, ShapeMethods, ReductionMethods):
    """MindSpore's Tensor: ``Tensor(input_data, dtype=None)`` over a ``jax.Array``.

    Without ``input_data``, ``Tensor(shape=(2, 3), dtype=msjax.float32)`` holds zeros (with
    ``init``, that initializer's values); a shape with ``None`` or -1 dims gives a data-less
    Tensor of dynamic shape (``.shape`` has -1 for those dims), which describes an export input.

    >>> Tensor(np.ones((2, 3)), msjax.float32).asnumpy().shape
    (2, 3)
    >>> Tensor(shape=[None, 3], dtype=msjax.float32).shape
    (-1, 3)
    """

    __array_priority__ = 100

    def __init__(self, input_data=None, dtype=None, shape=None, init=None):
        if input_data is None:
            data = _no_data(dtype, shape, init)
            self._data = data if isinstance(data, _NoData) else _as_array(data)
            return
        if shape is not None:
            raise ValueError(f"When initializing a tensor with 'input_data', 'shape' should be set to None."
                             f"But got shape: {shape}.")
        self._data = _as_array(input_data, dtype)

    def _array(self):
        return self._data

    # pytree: a Tensor is one leaf in a box, so jit and tree utilities see its array
    def tree_flatten(self):
        return (self._data,), None

    @classmethod
    def tree_unflatten(cls, _, children):
        obj = object.__new__(cls)
        obj._data = children[0]
        return obj

    @property
    def shape(self):
        return tuple(self._data.shape)

    @property
    def dtype(self):
        return mstype.from_numpy(self._data.dtype)

    @property
    def ndim(self):
        return self._data.ndim

    @property
    def size(self):
        return int(self._data.size)

    def asnumpy(self):
        return np.asarray(self._data)

    numpy = asnumpy

    def __array__(self, dtype=None, copy=None):
        out = np.asarray(self._data)
        return out if dtype is None else out.astype(dtype)

    def __jax_array__(self):
        return self._data

    def __repr__(self):
        value = "" if isinstance(self._data, _NoData) else np.asarray(self._data)
        return f"Tensor(shape={list(self.shape)}, dtype={self.dtype}, value=\n{value})"


    _wrap = staticmethod(_wrap)      # how the method families make their results

    # ---------------------------------------------------------------- Python protocol
    def __len__(self):
        if self.ndim == 0:
            raise TypeError("Not support len of a 0-D tensor")
        return len(self._data)

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    def __getitem__(self, index):
        index = _index(index)
        _check_bounds(self.shape, index)
        return _wrap(np.asarray(self._data[index]) if isinstance(self._data, np.ndarray) else self._data[index])

    def __setitem__(self, index, value):
        """Assign in place (the value is cast to this Tensor's dtype); the old array, which may
        be shared with views or the caller's input, is never written."""
        index = _index(index)
        _check_bounds(self.shape, index)
        dtype = np.dtype(self._data.dtype)
        if isinstance(value, ArrayHolder):
            value = value._array()
        if isinstance(self._data, jax.Array) and _jax_holds(dtype):
            value = _cast(jnp, value, dtype)
            target = np.broadcast_to(np.empty((), np.int8), self.shape)[index].shape
            np.broadcast_shapes(np.shape(value), target)    # ValueError, as numpy's assignment
            self._data = self._data.at[index].set(value)
            return
        data = np.array(self._data)
        data[index] = _cast(np, value, dtype)
        self._data = data

    def __float__(self):
        _one_element(self.size, "Only one element tensors can be converted to Python scalars")
        return float(self.item())

    def __int__(self):
        _one_element(self.size, "Only one element tensors can be converted to Python scalars")
        return int(self.item())

    def __bool__(self):
        _one_element(self.size)
        return bool(self.item())

    # ---------------------------------------------------------------- operators (MindSpore's type rules)
    __add__, __radd__ = _operator("add"), _operator("add", True)
    __sub__, __rsub__ = _operator("subtract"), _operator("subtract", True)
    __mul__, __rmul__ = _operator("multiply"), _operator("multiply", True)
    __truediv__, __rtruediv__ = _operator("divide"), _operator("divide", True)
    __floordiv__, __rfloordiv__ = _operator("floor_divide"), _operator("floor_divide", True)
    __mod__, __rmod__ = _operator("mod"), _operator("mod", True)
    __pow__, __rpow__ = _operator("power"), _operator("power", True)
    __and__, __rand__ = _operator("bitwise_and"), _operator("bitwise_and", True)
    __or__, __ror__ = _operator("bitwise_or"), _operator("bitwise_or", True)
    __xor__, __rxor__ = _operator("bitwise_xor"), _operator("bitwise_xor", True)
    __lt__, __le__ = _operator("less"), _operator("less_equal")
    __gt__, __ge__ = _operator("greater"), _operator("greater_equal")
    _eq, _ne = _operator("equal"), _operator("not_equal")
    __hash__ = object.__hash__

    def __eq__(self, other):
        return False if other is None else self._eq(other)

    def __ne__(self, other):
        return True if other is None else self._ne(other)

    def __matmul__(self, other):
        return _matmul(self._data, other, False)

    def __rmatmul__(self, other):
        return _matmul(self._data, other, True)

    def __neg__(self):
        if np.dtype(self._data.dtype) == np.bool_:
            raise TypeError("For 'Neg', the input must not be a bool Tensor")
        return _wrap(-self._data)

    def __pos__(self):
        return self.copy()

    def __abs__(self):
        return self.abs()

    def __invert__(self):
        """MindSpore's ``~``: logical not, a bool Tensor for any input dtype."""
        return _wrap(_xp((self._data,), np.bool_).logical_not(self._data))



ArrayHolder.register(Tensor)
