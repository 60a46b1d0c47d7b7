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


# --------------------------------------------------------------------------- Tensor helpers
# MindSpore 2.10's rules, probed against it (tests/test_tensor_api.py): Tensor op Tensor takes
# the higher kind (bool < int < float < complex), within a kind the wider type (int8 + uint8 ->
# int16, float16 + bfloat16 -> float32); a Python scalar only lifts the kind (int32 + 1.5 ->
# float32, bool + 1 -> int64, float16 + 1.5 -> float16); true division of integers gives float32;
# comparisons give bool. Device arrays are computed by jax while jax can hold the result dtype
# (64-bit ones need x64), everything else by numpy on the host.
_BOOL, _INT, _FLOAT, _COMPLEX = range(4)
_SCALARS = (bool, int, float, complex)
_DEVICES_HERE = ("cpu", "CPU")
_DEVICES_ELSEWHERE = ("npu", "Ascend", "ascend", "GPU", "cuda")


def _wrap(data):
    """A Tensor over ``data`` as it is (numpy scalars become 0-d arrays)."""
    obj = object.__new__(Tensor)
    obj._data = np.asarray(data) if isinstance(data, np.generic) else data
    return obj


def _kind(dtype):
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return _BOOL
    if dtype.kind in "iu":
        return _INT
    if dtype.kind == "c":
        return _COMPLEX
    return _FLOAT


def _promote(a, b):
    a, b = np.dtype(a), np.dtype(b)
    if a == b:
        return a
    ka, kb = _kind(a), _kind(b)
    if ka != kb:
        return a if ka > kb else b
    if ka == _FLOAT:
        if a.itemsize == b.itemsize:
            return np.dtype(np.float32) if a.itemsize < 4 else np.dtype(np.float64)
        return a if a.itemsize > b.itemsize else b
    return np.promote_types(a, b)


def _scalar_type(dtype, value):
    kind = _kind(dtype)
    if isinstance(value, bool):
        return np.dtype(dtype)
    if isinstance(value, int):
        return np.dtype(np.int64) if kind == _BOOL else np.dtype(dtype)
    if isinstance(value, float):
        return np.dtype(np.float32) if kind <= _INT else np.dtype(dtype)
    if kind == _COMPLEX:
        return np.dtype(dtype)
    return np.dtype(np.complex128) if np.dtype(dtype) == np.float64 else np.dtype(np.complex64)


def _jax_holds(dtype):
    return np.dtype(dtype).itemsize < 8 or bool(jax.config.jax_enable_x64)


def _xp(values, dtype):
    """jnp for traced values, and for device arrays while jax can hold ``dtype``; else numpy."""
    if any(isinstance(v, jax.core.Tracer) for v in values):
        return jnp
    if any(isinstance(v, jax.Array) for v in values) and _jax_holds(dtype):
        return jnp
    return np


def _traced_dtype(dtype):
    """``dtype`` as jax holds it: traced values are 32-bit unless x64 is enabled."""
    dtype = np.dtype(dtype)
    return dtype if _jax_holds(dtype) else np.dtype(dtype.kind + str(dtype.itemsize // 2))


def _cast(xp, value, dtype):
    """``value`` (array, Python scalar or list) as ``dtype`` for backend ``xp``; Python scalars
    wrap around as MindSpore's do (uint8 + 300 -> 44 + ...)."""
    if xp is jnp:
        dtype = _traced_dtype(dtype)
    if isinstance(value, (Tensor, Parameter)):
        value = value._array()
    if isinstance(value, (*_SCALARS, list, tuple)):
        return np.asarray(value).astype(dtype)
    if xp is np and isinstance(value, jax.Array):
        value = np.asarray(value)
    return value if value.dtype == dtype else value.astype(dtype)


def _cast_array(data, dtype):
    """``data`` cast to numpy ``dtype``; a device array goes to the host when jax cannot hold it."""
    if isinstance(data, jax.Array) and not isinstance(data, jax.core.Tracer) and not _jax_holds(dtype):
        data = np.asarray(data)
    return data if data.dtype == dtype else data.astype(dtype)


def _as(xp, result, dtype):
    result = np.asarray(result) if xp is np else result
    dtype = _traced_dtype(dtype) if xp is jnp else dtype
    return result if result.dtype == dtype else result.astype(dtype)


def _like(old, new):
    """``new`` (numpy) on jax's side when ``old`` was a device array jax can hold."""
    return jnp.asarray(new) if isinstance(old, jax.Array) and _jax_holds(new.dtype) else new


def _operand(data, other):
    """(other's value, computation dtype) for ``tensor op other``; NotImplemented for strangers.
    Lists and tuples take the Tensor's dtype (MindSpore converts them so)."""
    if isinstance(other, (Tensor, Parameter)):
        other = other._array()
    elif isinstance(other, _SCALARS):
        return other, _scalar_type(data.dtype, other)
    elif isinstance(other, (list, tuple)):
        other = np.asarray(other).astype(data.dtype)
    elif isinstance(other, np.generic):
        other = np.asarray(other)
    elif not isinstance(other, (np.ndarray, jax.Array)):
        return NotImplemented, None
    return other, _promote(data.dtype, other.dtype)


_COMPARISONS = {"equal", "not_equal", "less", "less_equal", "greater", "greater_equal"}


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


def _int_pow(xp, x, y):
    """Integer power; a negative exponent truncates toward zero (1, -1 or 0), as MindSpore's."""
    if np.dtype(y.dtype).kind != "i":
        return xp.power(x, y)
    negative = y < 0
    result = xp.power(x, xp.where(negative, xp.zeros_like(y), y))
    odd = xp.remainder(y, 2) != 0
    inverse = xp.where(x == 1, 1, xp.where(x == -1, xp.where(odd, -1, 1), 0)).astype(result.dtype)
    return xp.where(negative, inverse, result)


def _matmul(a, other, reverse):
    b = other._array() if isinstance(other, (Tensor, Parameter)) else other
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


def _one_element(size, message=None):
    if size != 1:
        raise ValueError(message or f"The tensor should have only one element, but got {size}, more than one "
                                    f"element is ambiguous.")


def _check_device(device):
    if device in _DEVICES_HERE:
        return
    if device in _DEVICES_ELSEWHERE:
        raise RuntimeError(f"Tensor.to({device!r}): msjax places arrays with JAX; only 'cpu' is a target here")
    raise ValueError(f"Failed to convert the value \"{device}\" of input 'device' of 'to' to enum.")


def _is_dtype(value):
    if isinstance(value, (mstype.Type, np.dtype, str)) or (isinstance(value, type) and issubclass(value, np.generic)):
        try:
            mstype.to_type(value)
        except TypeError:
            return False
        return True
    return False


def _dim(dim, ndim, what):
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"For '{what}', a dim must be an int, but got {type(dim).__name__}.")
    bound = max(ndim, 1)
    if not -bound <= dim < bound:
        raise ValueError(f"Dimension out of range (expected to be in range of [{-bound}, {bound}), but got {dim})")
    return int(dim) % bound


def _axes(axis, ndim, what):
    """``axis`` (None, int, tuple or list) as a tuple of non-negative dims, or None."""
    if axis is None:
        return None
    axes = (axis,) if isinstance(axis, (int, np.integer)) and not isinstance(axis, bool) else tuple(axis)
    out = []
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)):
            raise TypeError(f"For '{what}', 'axis' must be an int, tuple or list of ints, but got {axis!r}.")
        bound = max(ndim, 1)
        if not -bound <= a < bound:
            raise ValueError(f"For '{what}', the axis value must be in [{-bound}, {bound}), but got {a}.")
        out.append(int(a) % bound)
    return tuple(out) if ndim else None


def _new_shape(shape, size):
    """``reshape``'s argument (ints, or one tuple/list) checked against ``size`` elements."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    shape = tuple(shape)
    if any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) for d in shape):
        raise TypeError(f"For 'reshape', the shape must be ints, but got {list(shape)}.")
    shape = tuple(int(d) for d in shape)
    if shape.count(-1) > 1:
        raise ValueError("only one dimension can be inferred")
    known = int(np.prod([d for d in shape if d != -1]))
    if any(d < -1 for d in shape) or (-1 in shape and (known == 0 or size % known)) or \
            (-1 not in shape and known != size):
        raise ValueError(f"proposed_shape {list(shape)} is invalid for input of size {size}")
    return tuple(size // known if d == -1 else d for d in shape)


def _index(index):
    """An index with Tensors as arrays and lists as numpy arrays (fancy indices, as in MindSpore)."""
    if isinstance(index, tuple):
        return tuple(_index(i) for i in index)
    if isinstance(index, (Tensor, Parameter)):
        return index._array()
    if isinstance(index, list):
        return np.asarray(unwrap(index))
    return index


def _is_bool_array(i):
    return isinstance(i, (np.ndarray, jax.Array)) and np.dtype(i.dtype) == np.bool_


def _check_bounds(shape, index):
    """IndexError for integer indices outside ``shape`` (jax would clamp them silently)."""
    items = index if isinstance(index, tuple) else (index,)
    consumed = sum(i.ndim if _is_bool_array(i) else 0 if i is None or i is Ellipsis or isinstance(i, bool) else 1
                   for i in items)
    if consumed > len(shape):
        raise IndexError(f"too many indices for tensor of dimension {len(shape)}")
    dim = 0
    for i in items:
        if i is Ellipsis:
            dim += len(shape) - consumed
            continue
        if i is None or isinstance(i, bool):
            continue
        if _is_bool_array(i):
            dim += i.ndim
            continue
        size = shape[dim]
        if isinstance(i, (int, np.integer)):
            if not -size <= i < size:
                raise IndexError(f"index {i} is out of bounds for dimension with size {size}")
        elif isinstance(i, (np.ndarray, jax.Array)) and not isinstance(i, jax.core.Tracer) \
                and np.dtype(i.dtype).kind in "iu" and i.size:
            host = np.asarray(i)
            bad = host[(host < -size) | (host >= size)]
            if bad.size:
                raise IndexError(f"index {bad.flat[0]} is out of bounds for dimension with size {size}")
        dim += 1


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

    def __array__(self, dtype=None, copy=None):
        out = np.asarray(self._data)
        return out if dtype is None else out.astype(dtype)

    def __jax_array__(self):
        return self._data

    def __repr__(self):
        value = "" if isinstance(self._data, _NoData) else np.asarray(self._data)
        return f"Tensor(shape={list(self.shape)}, dtype={self.dtype}, value=\n{value})"

    # ---------------------------------------------------------------- conversions (MindSpore 2.10)
    def astype(self, dtype, copy=True):
        """A copy cast to ``dtype`` (msjax/numpy dtype, name, or ``int``/``float``/``bool``);
        ``copy=False`` returns this Tensor itself when it already has that dtype."""
        target = mstype.to_numpy(dtype)
        if not copy and np.dtype(self._data.dtype) == target:
            return self
        return _wrap(_cast_array(self._data, target))

    def to(self, *args, **kwargs):
        """``to(dtype)``, ``to(device)``, ``to(device, dtype)``: always a new Tensor. The only
        device is "cpu"/"CPU" (JAX places arrays itself)."""
        dtype = kwargs.pop("dtype", None)
        kwargs.pop("non_blocking", None)
        kwargs.pop("copy", None)
        device = kwargs.pop("device", None)
        if kwargs:
            raise TypeError(f"Tensor.to() got unexpected keyword arguments {sorted(kwargs)}")
        for arg in args:
            if isinstance(arg, str):
                device = arg
            elif not isinstance(arg, bool):            # a positional non_blocking/copy flag
                dtype = arg
        if device is not None:
            _check_device(device)
        return self.astype(dtype) if dtype is not None else self.copy()

    def float(self):
        return self.astype(mstype.float32)

    def half(self):
        return self.astype(mstype.float16)

    def double(self):
        return self.astype(mstype.float64)

    def int(self):
        return self.astype(mstype.int32)

    def long(self):
        return self.astype(mstype.int64)

    def bool(self):
        return self.astype(mstype.bool_)

    def set_dtype(self, dtype):
        """Cast this Tensor in place to ``dtype``; returns the new dtype (as MindSpore does)."""
        target = mstype.to_type(dtype)
        self._data = _cast_array(self._data, target.numpy)
        return target

    def item(self):
        """The single value as a Python scalar (ValueError unless the Tensor has one element)."""
        _one_element(self.size)
        value = np.asarray(self._data).reshape(())
        if value.dtype.kind not in "biufc":            # bfloat16, float8: no Python type of their own
            return float(value.astype(np.float32))
        return value.item()

    def tolist(self):
        """Nested Python lists (a Python scalar for a 0-d Tensor)."""
        value = np.asarray(self._data)
        if value.dtype.kind not in "biufc":
            value = value.astype(np.float32)
        return value.tolist()

    def copy(self):
        return _wrap(np.array(self._data) if isinstance(self._data, np.ndarray) else self._data)

    def init_data(self, slice_index=None, shape=None, opt_shard_group=None):
        """MindSpore's ``init_data``: an msjax Tensor holds its data from the start (``init``
        values are computed by the constructor), so this returns the Tensor itself."""
        return self

    def fill(self, value):
        """A new Tensor of this shape and dtype, every element ``value`` (None: NaN, floats only)."""
        dtype = np.dtype(self._data.dtype)
        if value is None:
            if dtype not in (np.float16, np.float32, np.float64):
                raise TypeError(f"For 'Tensor.fill', if the argument 'value' is None, the type of the original "
                                f"tensor must be float, but got {self.dtype}.")
            value = float("nan")
        if isinstance(value, (Tensor, Parameter)):
            value = Tensor.item(value) if isinstance(value, Tensor) else np.asarray(value._array()).item()
        return _wrap(_like(self._data, np.full(self.shape, np.asarray(value).astype(dtype), dtype)))

    def zero_(self):
        """Set every element to zero, in place; returns this Tensor."""
        self._data = _like(self._data, np.zeros(self.shape, self._data.dtype))
        return self

    # ---------------------------------------------------------------- shapes
    @property
    def T(self):
        """The Tensor with its dims reversed (itself when it has at most one dim)."""
        if self.ndim <= 1:
            return self
        return self.transpose(tuple(range(self.ndim - 1, -1, -1)))

    def reshape(self, *shape):
        """``reshape(2, 3)`` or ``reshape((2, 3))``; one dim may be -1."""
        return _wrap(self._data.reshape(_new_shape(shape, self.size)))

    def view(self, *shape):
        """``view(*shape)`` is ``reshape``; ``view(dtype)`` reinterprets the bytes as ``dtype``
        (the last dim scales with the item size)."""
        if len(shape) == 1 and _is_dtype(shape[0]):
            target = mstype.to_numpy(shape[0])
            data = np.asarray(self._data)
            if data.ndim == 0 or (data.shape[-1] * data.dtype.itemsize) % target.itemsize:
                raise ValueError(f"For ViewDtype, the last dimension of shape {list(data.shape)} cannot view "
                                 f"{self.dtype} as {mstype.from_numpy(target)} (different element sizes)")
            return _wrap(_like(self._data, np.ascontiguousarray(data).view(target)))
        return self.reshape(*shape)

    def flatten(self, order="C", *args, start_dim=0, end_dim=-1):
        """Merge dims ``start_dim..end_dim`` into one (all of them by default); ``flatten(1)``,
        ``flatten(0, 1)`` and ``flatten(order="F")`` as in MindSpore."""
        if isinstance(order, (int, np.integer)) and not isinstance(order, bool):
            start_dim, order = int(order), "C"
            if args:
                end_dim = args[0]
        elif args:
            raise TypeError(f"Tensor.flatten() takes order and keyword-only start_dim/end_dim, got {args!r}")
        if order not in ("C", "F"):
            raise ValueError(f"For 'flatten', 'order' must be 'C' or 'F', but got {order!r}.")
        shape = self.shape
        if not shape:
            return self.reshape(1)
        start, end = _dim(start_dim, len(shape), "flatten"), _dim(end_dim, len(shape), "flatten")
        if start > end:
            raise ValueError(f"For 'flatten', 'start_dim' {start_dim} must not come after 'end_dim' {end_dim}.")
        if order == "F":
            if (start, end) != (0, len(shape) - 1):
                raise ValueError("For 'flatten', order='F' flattens all dims; start_dim/end_dim must be defaults")
            return _wrap(_xp((self._data,), self._data.dtype).ravel(self._data, order="F"))
        new = shape[:start] + (int(np.prod(shape[start:end + 1])),) + shape[end + 1:]
        return _wrap(self._data.reshape(new))

    def squeeze(self, axis=None):
        """Drop size-1 dims (only those in ``axis``; a named dim of another size stays)."""
        if axis is None:
            return _wrap(self._data.reshape(tuple(d for d in self.shape if d != 1)))
        axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
        drop = {_dim(a, self.ndim, "squeeze") for a in axes}
        return _wrap(self._data.reshape(tuple(d for i, d in enumerate(self.shape) if not (i in drop and d == 1))))

    def expand_dims(self, axis):
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise TypeError(f"For 'expand_dims', 'axis' must be an int, but got {type(axis).__name__}.")
        if not -self.ndim - 1 <= axis <= self.ndim:
            raise ValueError(f"The 'axis' must be in range of [{-self.ndim - 1}, {self.ndim + 1}), but got {axis} "
                             f"with type 'int'.")
        return _wrap(self._data.reshape(self.shape[:axis % (self.ndim + 1)] + (1,)
                                        + self.shape[axis % (self.ndim + 1):]))

    def transpose(self, *axes):
        """``transpose()`` reverses the dims; ``transpose(dim0, dim1)`` swaps two dims (as MindSpore
        2.10 does for two ints); ``transpose(perm)`` / ``transpose(*perm)`` permutes them."""
        ndim = self.ndim
        if len(axes) == 2 and all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axes):
            perm = list(range(ndim))
            i, j = (_dim(a, ndim, "transpose") for a in axes)
            perm[i], perm[j] = perm[j], perm[i]
        elif not axes or axes == (None,):
            perm = list(range(ndim - 1, -1, -1))
        else:
            perm = list(axes[0]) if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else list(axes)
            if len(perm) != ndim:
                raise ValueError(f"For Tensor.transpose, the number of axes must be equal to the dimension of "
                                 f"Tensor, but got {len(perm)} in the number of axes.")
            perm = [_dim(a, ndim, "transpose") for a in perm]
            if sorted(perm) != list(range(ndim)):
                raise ValueError(f"For Tensor.transpose, the axes {list(axes)} repeat a dim")
        return _wrap(self._data.transpose(tuple(perm)))

    # ---------------------------------------------------------------- reductions
    def sum(self, axis=None, dtype=None, keepdims=False, initial=None, *, dim=None, keepdim=False):
        """Sum over ``axis`` (or ``dim``). Integer and bool Tensors sum to int64 unless ``dtype``
        is given, as in MindSpore."""
        if isinstance(dtype, bool):        # sum(dim, keepdim): MindSpore's other overload
            dtype, keepdim = None, dtype
        axes = _axes(dim if dim is not None else axis, self.ndim, "sum")
        src = np.dtype(self._data.dtype)
        out = mstype.to_numpy(dtype) if dtype is not None else (np.dtype(np.int64) if _kind(src) <= _INT else src)
        acc = np.dtype(np.int64) if out == np.bool_ else out
        xp = _xp((self._data,), acc)
        result = xp.sum(_cast(xp, self._data, acc), axis=axes, keepdims=bool(keepdims or keepdim))
        if initial is not None:
            result = result + _cast(xp, initial, acc)
        return _wrap(_as(xp, result, out))

    def mean(self, axis=None, keep_dims=False, *, dim=None, keepdim=False, dtype=None):
        """Mean over ``axis`` (or ``dim``), in the Tensor's dtype unless ``dtype`` is given: the
        mean of integers is truncated toward zero, as in MindSpore."""
        axes = _axes(dim if dim is not None else axis, self.ndim, "mean")
        keep = bool(keep_dims or keepdim)
        src = np.dtype(self._data.dtype)
        if dtype is None and src == np.bool_:
            raise RuntimeError("For 'ReduceMean', unsupported reduce operation for bool.")
        out = mstype.to_numpy(dtype) if dtype is not None else src
        if _kind(out) <= _INT:
            xp = _xp((self._data,), out)
            work = np.dtype(np.float64) if xp is np else np.dtype(np.float32)
            result = xp.trunc(xp.mean(_cast(xp, self._data, work), axis=axes, keepdims=keep))
            return _wrap(_as(xp, result, out))
        xp = _xp((self._data,), out)
        return _wrap(_as(xp, xp.mean(_cast(xp, self._data, out), axis=axes, keepdims=keep), out))

    def max(self, *args, **kwargs):
        """``max()``; ``max(axis=None, keepdims=False, *, initial=None, where=True,
        return_indices=False)``; or ``max(dim, keepdim=False)``, which returns (values, int64
        indices), as MindSpore's overloads do."""
        return self._extreme("max", args, kwargs)

    def min(self, *args, **kwargs):
        """Like ``max``, for the minimum."""
        return self._extreme("min", args, kwargs)

    def _extreme(self, which, args, kwargs):
        numpy_style = {"axis", "keepdims", "initial", "where", "return_indices"}
        first = args[0] if args else None
        by_dim = "dim" in kwargs or "keepdim" in kwargs or (
            isinstance(first, (int, np.integer)) and not isinstance(first, bool) and not numpy_style & set(kwargs))
        if by_dim:
            def bind(dim, keepdim=False):
                return dim, keepdim, None, True, True
        else:
            def bind(axis=None, keepdims=False, *, initial=None, where=True, return_indices=False):
                return axis, keepdims, initial, where, return_indices
        axis, keep, initial, where, with_indices = bind(*args, **kwargs)
        axes = _axes(axis, self.ndim, which)
        keep = bool(keep)
        xp = _xp((self._data,), self._data.dtype)
        options = {} if initial is None else {"initial": _cast(xp, initial, np.dtype(self._data.dtype))}
        if where is not True:
            options["where"] = np.asarray(unwrap(where), bool) if xp is np else jnp.asarray(unwrap(where), bool)
        values = _wrap(_as(xp, getattr(xp, which)(self._data, axis=axes, keepdims=keep, **options),
                           np.dtype(self._data.dtype)))
        if not with_indices:
            return values
        if axes is not None and len(axes) != 1:
            raise ValueError(f"For '{which}', return_indices needs one axis, got {axis!r}")
        arg = np.argmax if which == "max" else np.argmin
        host = np.asarray(self._data)
        indices = arg(host, axis=None if axes is None else axes[0], keepdims=keep and axes is not None)
        return values, _wrap(np.asarray(indices, np.int64))

    def abs(self):
        if np.dtype(self._data.dtype) == np.bool_:
            return self.copy()
        return _wrap(_xp((self._data,), self._data.dtype).abs(self._data))

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
        if isinstance(value, (Tensor, Parameter)):
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


def _check_param_name(name):
    """MindSpore: a Parameter's name is a str or None, else a ValueError."""
    if name is not None and not isinstance(name, str):
        raise ValueError(f"The type of the Parameter's name should be 'string' or 'None', but got "
                         f"{type(name).__name__}")


def _check_requires_grad(requires_grad):
    """MindSpore: ``requires_grad`` is a bool, else a TypeError."""
    if not isinstance(requires_grad, (bool, np.bool_)):
        raise TypeError(f"The argument `requires_grad` must be bool type, got {type(requires_grad).__name__}")


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
        _check_param_name(name)
        _check_requires_grad(requires_grad)
        metadata.setdefault("name", name or "Parameter")
        metadata.setdefault("requires_grad", bool(requires_grad))
        super().__init__(value, **metadata)

    # MindSpore's attribute names over nnx metadata
    @property
    def name(self):
        return self.get_metadata("name")

    @name.setter
    def name(self, value):
        _check_param_name(value)
        self.set_metadata("name", value)

    @property
    def requires_grad(self):
        return self.get_metadata("requires_grad")

    @requires_grad.setter
    def requires_grad(self, value):
        _check_requires_grad(value)
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

    def init_data(self, layout=None, set_sliced=False):
        """MindSpore's ``init_data``: an msjax Parameter always holds its data; returns itself."""
        return self

    def clone(self, init="same"):
        return Parameter(self.get_value(), name=self.name, requires_grad=self.requires_grad)

    # ``self.w += x`` in construct updates the Parameter itself (MindSpore's AssignAdd/AssignSub/
    # Assign rules: the value takes the parameter's dtype and shape), as in MindSpore's GRAPH_MODE
    def __iadd__(self, other):
        from msjax.ops.functional import assign_add
        assign_add(self, other)
        return self

    def __isub__(self, other):
        from msjax.ops.functional import assign_sub
        assign_sub(self, other)
        return self

    def __imul__(self, other):
        from msjax.ops.functional import assign
        assign(self, jnp.multiply(self.get_value(), _as_array(other)))
        return self

    def __itruediv__(self, other):
        from msjax.ops.functional import assign
        assign(self, jnp.true_divide(self.get_value(), _as_array(other)))
        return self

    def __array__(self, dtype=None, copy=None):
        out = np.asarray(self.get_value())
        return out if dtype is None else out.astype(dtype)

    def __repr__(self):
        return (f"Parameter(name={self.name}, shape={list(self.shape)}, dtype={self.dtype}, "
                f"requires_grad={self.requires_grad})")
