"""``Tensor`` (a thin face over ``jax.Array``) and ``Parameter`` (an ``nnx.Param`` with a name)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from msjax.common import dtype as mstype


def _as_array(value, dtype=None):
    """Turn a Tensor, Parameter, array or Python value into a ``jax.Array`` or ``np.ndarray``.

    Host arrays stay numpy (no copy, any dtype, float64 included); jax moves them to the device
    when a compiled function first uses them. Python floats default to float32, as in MindSpore.
    """
    if isinstance(value, (Tensor, Parameter)):
        value = value._array()
    np_dtype = None if dtype is None else mstype.to_numpy(dtype)
    if isinstance(value, (jax.Array, np.ndarray)):
        return value if np_dtype is None or value.dtype == np_dtype else value.astype(np_dtype)
    array = np.asarray(value, dtype=np_dtype)
    if np_dtype is None and array.dtype == np.float64:
        array = array.astype(np.float32)
    return array


def unwrap(tree):
    """Replace every Tensor/Parameter in ``tree`` with its ``jax.Array``."""
    return jax.tree.map(lambda x: x._array() if isinstance(x, (Tensor, Parameter)) else x, tree,
                        is_leaf=lambda x: isinstance(x, (Tensor, Parameter)))


def _binary(op, reverse=False):
    def method(self, other):
        a, b = self._data, unwrap(other)
        return Tensor(op(b, a) if reverse else op(a, b))
    return method


class _NoData:
    """What a data-less Tensor holds: a shape with unknown dims (-1; ``(-2,)``: unknown rank)
    and a dtype. MindSpore's ``Tensor(shape=[None, 3], dtype=...)``, used to describe export
    inputs of dynamic shape; like MindSpore's, it has no values (``asnumpy`` raises ValueError)."""

    __slots__ = ("shape", "dtype")
    size = 0

    def __init__(self, shape, dtype):
        self.shape, self.dtype = tuple(shape), dtype

    @property
    def ndim(self):
        return len(self.shape)

    def __array__(self, dtype=None, copy=None):
        raise ValueError(f"negative dimensions are not allowed: Tensor(shape={list(self.shape)}) has "
                         f"dynamic shape and no data; it can only describe an export input")

    def __len__(self):
        raise ValueError("__len__() should return >= 0")


def _no_data(dtype, shape, init):
    """The data of ``Tensor(shape=..., dtype=..., init=...)`` without input_data, as MindSpore
    2.10 makes it: zeros (or ``init``'s values) for a static shape, no data for a dynamic one."""
    if shape is None and init is None:
        if dtype is None:
            raise TypeError("For 'Tensor', the type of 'input_data' should be one of Tensor, ndarray, "
                            "list, tuple, float, int, bool or complex, but got type 'NoneType'.")
        return _NoData((-2,), mstype.to_numpy(dtype))          # dtype only: unknown rank
    if init is not None and (shape is None or dtype is None):
        raise ValueError("init, dtype and shape must have values at the same time.")
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(-1 if d is None else int(d) for d in shape)
    if any(d < 0 for d in shape):
        if dtype is None or init is not None:
            raise ValueError("If setting dynamic shape, dtype must not be None, init must be None")
        if any(d < -1 for d in shape) and shape != (-2,):
            raise ValueError(f"For 'Tensor', shape {list(shape)} has a dim below -1; unknown dims are "
                             f"None or -1, and (-2,) is an unknown rank")
        return _NoData(shape, mstype.to_numpy(dtype))
    if dtype is None:
        raise TypeError("For 'Tensor', the type of 'input_data' should be one of Tensor, ndarray, "
                        "list, tuple, float, int, bool or complex, but got type 'NoneType'.")
    if init is not None:
        from msjax.common.initializer import initializer
        return initializer(init, shape, dtype)._array()
    return np.zeros(shape, mstype.to_numpy(dtype))


@jax.tree_util.register_pytree_node_class
class Tensor:
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

    def astype(self, dtype):
        return Tensor(self._data, dtype)

    def item(self):
        return self.asnumpy().item()

    def __array__(self, dtype=None, copy=None):
        out = np.asarray(self._data)
        return out if dtype is None else out.astype(dtype)

    def __jax_array__(self):
        return self._data

    def __len__(self):
        return len(self._data)

    def __getitem__(self, index):
        return Tensor(self._data[unwrap(index)])

    def __float__(self):
        return float(self._data)

    def __int__(self):
        return int(self._data)

    def __bool__(self):
        return bool(self._data)

    def __repr__(self):
        value = "" if isinstance(self._data, _NoData) else np.asarray(self._data)
        return f"Tensor(shape={list(self.shape)}, dtype={self.dtype}, value=\n{value})"

    __add__, __radd__ = _binary(jnp.add), _binary(jnp.add, True)
    __sub__, __rsub__ = _binary(jnp.subtract), _binary(jnp.subtract, True)
    __mul__, __rmul__ = _binary(jnp.multiply), _binary(jnp.multiply, True)
    __truediv__, __rtruediv__ = _binary(jnp.divide), _binary(jnp.divide, True)
    __matmul__, __rmatmul__ = _binary(jnp.matmul), _binary(jnp.matmul, True)
    __pow__ = _binary(jnp.power)
    __eq__, __ne__ = _binary(jnp.equal), _binary(jnp.not_equal)
    __lt__, __le__ = _binary(jnp.less), _binary(jnp.less_equal)
    __gt__, __ge__ = _binary(jnp.greater), _binary(jnp.greater_equal)
    __hash__ = object.__hash__

    def __neg__(self):
        return Tensor(-self._data)


class Parameter(nnx.Param):
    """MindSpore's Parameter: ``Parameter(default_input, name=None, requires_grad=True)``.

    An ``nnx.Param`` whose metadata carries MindSpore's ``name`` (the dotted path once the
    parameter sits in a Cell) and ``requires_grad``. Trainable and frozen parameters share this
    class; the train step differentiates only those with ``requires_grad=True``.

    >>> p = Parameter(Tensor(np.zeros(3)), name="bias")
    >>> p.name, p.shape
    ('bias', (3,))
    """

    def __init__(self, default_input=None, name=None, requires_grad=True, layerwise_parallel=False,
                 parallel_optimizer=True, **metadata):
        value = default_input._array() if isinstance(default_input, (Tensor, Parameter)) else default_input
        value = _as_array(value)
        metadata.setdefault("name", name or "Parameter")
        metadata.setdefault("requires_grad", bool(requires_grad))
        super().__init__(value, **metadata)

    # MindSpore's attribute names over nnx metadata
    @property
    def name(self):
        return self.get_metadata("name")

    @name.setter
    def name(self, value):
        self.set_metadata("name", value)

    @property
    def requires_grad(self):
        return self.get_metadata("requires_grad")

    @requires_grad.setter
    def requires_grad(self, value):
        self.set_metadata("requires_grad", bool(value))

    def _array(self):
        return self.get_value()

    @property
    def data(self):
        return self

    @property
    def shape(self):
        return tuple(self.get_value().shape)

    @property
    def dtype(self):
        return mstype.from_numpy(self.get_value().dtype)

    @property
    def ndim(self):
        return self.get_value().ndim

    def asnumpy(self):
        return np.asarray(self.get_value())

    def set_data(self, data, slice_shape=False):
        """Replace the value (MindSpore's ``set_data``); the dtype follows ``data``."""
        self.set_value(_as_array(data))
        return self

    def clone(self, init="same"):
        return Parameter(self.get_value(), name=self.name, requires_grad=self.requires_grad)

    def __array__(self, dtype=None, copy=None):
        out = np.asarray(self.get_value())
        return out if dtype is None else out.astype(dtype)

    def __repr__(self):
        return (f"Parameter(name={self.name}, shape={list(self.shape)}, dtype={self.dtype}, "
                f"requires_grad={self.requires_grad})")
