"""Tensor methods, reductions family: ``sum``, ``mean``, ``max``/``min`` (both overloads) and ``abs``,
with MindSpore 2.10's result dtypes."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from msjax.common import dtype as mstype
from msjax.common._tensor_args import _axes
from msjax.common._tensor_rules import _INT, _as, _cast, _kind, _xp, unwrap


class ReductionMethods:
    """Mixed into ``Tensor``: the methods read ``self._data`` and make results with ``self._wrap``."""

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
        return self._wrap(_as(xp, result, out))

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
            return self._wrap(_as(xp, result, out))
        xp = _xp((self._data,), out)
        return self._wrap(_as(xp, xp.mean(_cast(xp, self._data, out), axis=axes, keepdims=keep), out))

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
        values = self._wrap(_as(xp, getattr(xp, which)(self._data, axis=axes, keepdims=keep, **options),
                           np.dtype(self._data.dtype)))
        if not with_indices:
            return values
        if axes is not None and len(axes) != 1:
            raise ValueError(f"For '{which}', return_indices needs one axis, got {axis!r}")
        arg = np.argmax if which == "max" else np.argmin
        host = np.asarray(self._data)
        indices = arg(host, axis=None if axes is None else axes[0], keepdims=keep and axes is not None)
        return values, self._wrap(np.asarray(indices, np.int64))

    def abs(self):
        if np.dtype(self._data.dtype) == np.bool_:
            return self.copy()
        return self._wrap(_xp((self._data,), self._data.dtype).abs(self._data))
