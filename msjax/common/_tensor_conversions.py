"""Tensor methods, conversions family: dtype casts, ``to``, Python values, copies and fills."""
from __future__ import annotations

import numpy as np

from msjax.common import dtype as mstype
from msjax.common._tensor_args import _check_device, _one_element
from msjax.common._tensor_rules import ArrayHolder, _cast_array, _like


class ConversionMethods:
    """Mixed into ``Tensor``: the methods read ``self._data`` and make results with ``self._wrap``."""

    def astype(self, dtype, copy=True):
        """A copy cast to ``dtype`` (msjax/numpy dtype, name, or ``int``/``float``/``bool``);
        ``copy=False`` returns this Tensor itself when it already has that dtype."""
        target = mstype.to_numpy(dtype)
        if not copy and np.dtype(self._data.dtype) == target:
            return self
        return self._wrap(_cast_array(self._data, target))

    def to(self, *args, device=None, dtype=None, non_blocking=False, copy=False):
        """MindSpore's ``to(dtype=None, non_blocking=False, copy=False)`` and ``to(device=None,
        dtype=None, non_blocking=False, copy=False)``: ``to(dtype)``, ``to(device)``, ``to(device,
        dtype)``. The only device is "cpu"/"CPU" (JAX places arrays itself).

        The result is always a new Tensor, so ``copy=True`` holds and ``copy=False`` (a new Tensor
        all the same) is what MindSpore 2.10 returns too; ``non_blocking`` is a no-op, since JAX
        dispatches asynchronously already and a value is ready whenever it is read. Positional
        bools are those two flags, as in MindSpore."""
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
        return self._wrap(np.array(self._data) if isinstance(self._data, np.ndarray) else self._data)

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
        if isinstance(value, ArrayHolder):
            value = value.item() if isinstance(value, ConversionMethods) else np.asarray(value._array()).item()
        return self._wrap(_like(self._data, np.full(self.shape, np.asarray(value).astype(dtype), dtype)))

    def zero_(self):
        """Set every element to zero, in place; returns this Tensor."""
        self._data = _like(self._data, np.zeros(self.shape, self._data.dtype))
        return self
