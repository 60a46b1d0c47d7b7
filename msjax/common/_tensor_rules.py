"""The rules under every Tensor operation: MindSpore's dtype promotion and where a result is computed.

Pure functions over arrays (``jax.Array``, ``np.ndarray``, tracers) and Python scalars; they know
Tensor and Parameter only as ``ArrayHolder`` (both register themselves), so this module sits
below both.
"""
from __future__ import annotations

import abc

import jax
import jax.numpy as jnp
import numpy as np

from msjax.common import dtype as mstype


class ArrayHolder(abc.ABC):
    """Tensor and Parameter: values that hold one array behind ``_array()``. Each registers itself
    (``ArrayHolder.register``) where it is defined, so the rules here need neither module."""

    @abc.abstractmethod
    def _array(self):
        """The ``jax.Array`` (or ``np.ndarray``) held."""


def _as_array(value, dtype=None):
    """Turn a Tensor, Parameter, array or Python value into a ``jax.Array`` or ``np.ndarray``.

    Host arrays stay numpy (no copy, any dtype, float64 included); jax moves them to the device
    when a compiled function first uses them. Python floats default to float32, as in MindSpore.
    """
    if isinstance(value, ArrayHolder):
        value = value._array()
    np_dtype = None if dtype is None else mstype.to_numpy(dtype)
    if isinstance(value, (jax.Array, np.ndarray)):
        return value if np_dtype is None or value.dtype == np_dtype else value.astype(np_dtype)
    array = np.asarray(value, dtype=np_dtype)
    if np_dtype is None and array.dtype == np.float64:
        array = array.astype(np.float32)
    return array


def unwrap(tree):
    """Replace every Tensor/Parameter (ArrayHolder) in ``tree`` with its ``jax.Array``."""
    return jax.tree.map(lambda x: x._array() if isinstance(x, ArrayHolder) else x, tree,
                        is_leaf=lambda x: isinstance(x, ArrayHolder))



# --------------------------------------------------------------------------- Tensor helpers
# MindSpore 2.10's rules, probed against it (tests/test_tensor_api.py): Tensor op Tensor takes
# the higher kind (bool < int < float < complex), within a kind the wider type (int8 + uint8 ->
# int16, float16 + bfloat16 -> float32); a Python scalar only lifts the kind (int32 + 1.5 ->
# float32, bool + 1 -> int64, float16 + 1.5 -> float16); true division of integers gives float32;
# comparisons give bool. Device arrays are computed by jax while jax can hold the result dtype
# (64-bit ones need x64), everything else by numpy on the host.
_BOOL, _INT, _FLOAT, _COMPLEX = range(4)
_SCALARS = (bool, int, float, complex)


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
    if isinstance(value, ArrayHolder):
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
    if isinstance(other, ArrayHolder):
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


def _int_pow(xp, x, y):
    """Integer power; a negative exponent truncates toward zero (1, -1 or 0), as MindSpore's."""
    if np.dtype(y.dtype).kind != "i":
        return xp.power(x, y)
    negative = y < 0
    result = xp.power(x, xp.where(negative, xp.zeros_like(y), y))
    odd = xp.remainder(y, 2) != 0
    inverse = xp.where(x == 1, 1, xp.where(x == -1, xp.where(odd, -1, 1), 0)).astype(result.dtype)
    return xp.where(negative, inverse, result)



def _is_dtype(value):
    if isinstance(value, (mstype.Type, np.dtype, str)) or (isinstance(value, type) and issubclass(value, np.generic)):
        try:
            mstype.to_type(value)
        except TypeError:
            return False
        return True
    return False

