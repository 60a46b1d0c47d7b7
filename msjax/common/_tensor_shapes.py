"""Tensor methods, shapes family: ``T``, ``reshape``, ``view``, ``flatten``, ``squeeze``,
``expand_dims`` and ``transpose`` (MindSpore 2.10's overloads and messages)."""
from __future__ import annotations

import numpy as np

from msjax.common import dtype as mstype
from msjax.common._tensor_args import _dim, _new_shape
from msjax.common._tensor_rules import _is_dtype, _like, _xp


class ShapeMethods:
    """Mixed into ``Tensor``: the methods read ``self._data`` and make results with ``self._wrap``."""

    @property
    def T(self):
        """The Tensor with its dims reversed (itself when it has at most one dim)."""
        if self.ndim <= 1:
            return self
        return self.transpose(tuple(range(self.ndim - 1, -1, -1)))

    def reshape(self, *shape):
        """``reshape(2, 3)`` or ``reshape((2, 3))``; one dim may be -1."""
        return self._wrap(self._data.reshape(_new_shape(shape, self.size)))

    def view(self, *shape):
        """``view(*shape)`` is ``reshape``; ``view(dtype)`` reinterprets the bytes as ``dtype``
        (the last dim scales with the item size)."""
        if len(shape) == 1 and _is_dtype(shape[0]):
            target = mstype.to_numpy(shape[0])
            data = np.asarray(self._data)
            if data.ndim == 0 or (data.shape[-1] * data.dtype.itemsize) % target.itemsize:
                raise ValueError(f"For ViewDtype, the last dimension of shape {list(data.shape)} cannot view "
                                 f"{self.dtype} as {mstype.from_numpy(target)} (different element sizes)")
            return self._wrap(_like(self._data, np.ascontiguousarray(data).view(target)))
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
            return self._wrap(_xp((self._data,), self._data.dtype).ravel(self._data, order="F"))
        new = shape[:start] + (int(np.prod(shape[start:end + 1])),) + shape[end + 1:]
        return self._wrap(self._data.reshape(new))

    def squeeze(self, axis=None):
        """Drop size-1 dims (only those in ``axis``; a named dim of another size stays)."""
        if axis is None:
            return self._wrap(self._data.reshape(tuple(d for d in self.shape if d != 1)))
        axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
        drop = {_dim(a, self.ndim, "squeeze") for a in axes}
        return self._wrap(self._data.reshape(tuple(d for i, d in enumerate(self.shape) if not (i in drop and d == 1))))

    def expand_dims(self, axis):
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise TypeError(f"For 'expand_dims', 'axis' must be an int, but got {type(axis).__name__}.")
        if not -self.ndim - 1 <= axis <= self.ndim:
            raise ValueError(f"The 'axis' must be in range of [{-self.ndim - 1}, {self.ndim + 1}), but got {axis} "
                             f"with type 'int'.")
        return self._wrap(self._data.reshape(self.shape[:axis % (self.ndim + 1)] + (1,)
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
        return self._wrap(self._data.transpose(tuple(perm)))
