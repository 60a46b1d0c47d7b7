"""General transforms: ``TypeCast`` and ``Compose`` (MindSpore's ``dataset.transforms``).

>>> TypeCast(msjax.int32)(np.uint32(7)).dtype
dtype('int32')
"""
from __future__ import annotations

import numpy as np

from msjax.common import dtype as mstype

__all__ = ["TypeCast", "Compose"]


class TypeCast:
    """Cast a column to ``data_type`` (a msjax dtype such as ``msjax.int32``, or a numpy dtype)."""

    def __init__(self, data_type):
        self.data_type = data_type
        self._numpy = mstype.to_numpy(data_type)

    def __call__(self, data):
        data = data.asnumpy() if hasattr(data, "asnumpy") else data
        return np.asarray(data).astype(self._numpy)


class Compose:
    """Apply ``transforms`` in order, as one operation.

    >>> Compose([lambda x: x + 1, lambda x: x * 2])(np.array(1))
    4
    """

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, *data):
        for op in self.transforms:
            out = op(*data)
            data = tuple(out) if isinstance(out, (tuple, list)) else (out,)
        return data[0] if len(data) == 1 else data
