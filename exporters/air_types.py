"""The graph engine's dtype numbers and tensor layouts: one table shared by the AIR writer and reader.

Tensor descriptors use ge_ir.proto's ``DataType`` (DT_FLOAT = 1); attributes that hold a
``ge::DataType`` (Cast's ``dst_type``) use the C++ enum (DT_FLOAT = 0). Both are keyed by msjax's
dtype table, so writer and reader cannot drift apart.

>>> PROTO_DTYPE[dtype.float32], GE_DTYPE[dtype.float32]
(1, 0)
"""
from __future__ import annotations

import numpy as np

from msjax.common import dtype
from msjax.errors import ExportError

__all__ = ["PROTO_DTYPE", "GE_DTYPE", "proto_dtype", "ge_dtype", "numpy_from_proto",
           "numpy_from_ge", "layout_for"]

#: msjax Type -> (ge_ir.proto DataType, C++ ge::DataType)
_TABLE = {
    dtype.float32: (1, 0), dtype.float16: (2, 1), dtype.int8: (3, 2), dtype.uint8: (4, 4),
    dtype.int16: (5, 6), dtype.uint16: (6, 7), dtype.int32: (7, 3), dtype.int64: (8, 9),
    dtype.uint32: (9, 8), dtype.uint64: (10, 10), dtype.bool_: (11, 12), dtype.float64: (12, 11),
    dtype.complex64: (16, 16), dtype.complex128: (17, 17), dtype.bfloat16: (27, 27),
}
PROTO_DTYPE = {t: codes[0] for t, codes in _TABLE.items()}
GE_DTYPE = {t: codes[1] for t, codes in _TABLE.items()}
_FROM_PROTO = {code: t for t, code in PROTO_DTYPE.items()}
_FROM_GE = {code: t for t, code in GE_DTYPE.items()}


def _type(np_dtype):
    try:
        return dtype.from_numpy(np_dtype)
    except TypeError:
        raise ExportError(f"dtype {np.dtype(np_dtype)} has no graph-engine equivalent") from None


def proto_dtype(np_dtype) -> int:
    """ge_ir.proto ``DataType`` number of a numpy/jax dtype."""
    t = _type(np_dtype)
    if t not in PROTO_DTYPE:
        raise ExportError(f"dtype {t} has no graph-engine equivalent")
    return PROTO_DTYPE[t]


def ge_dtype(np_dtype) -> int:
    """C++ ``ge::DataType`` number of a numpy/jax dtype (for attributes such as ``dst_type``)."""
    t = _type(np_dtype)
    if t not in GE_DTYPE:
        raise ExportError(f"dtype {t} has no graph-engine equivalent")
    return GE_DTYPE[t]


def numpy_from_proto(code: int, *, where="", file=None) -> np.dtype:
    """numpy dtype of a ge_ir.proto ``DataType``; ``where`` and ``file`` name it in errors."""
    if code not in _FROM_PROTO:
        raise ExportError(f"{where + ': ' if where else ''}graph-engine DataType {code} is not "
                          f"supported (known: {sorted(_FROM_PROTO)})", file=file)
    return _FROM_PROTO[code].numpy


def numpy_from_ge(code: int, *, where="", file=None) -> np.dtype:
    """numpy dtype of a C++ ``ge::DataType`` attribute value (Cast's ``dst_type``)."""
    if code not in _FROM_GE:
        raise ExportError(f"{where + ': ' if where else ''}ge::DataType {code} is not supported "
                          f"(known: {sorted(_FROM_GE)})", file=file)
    return _FROM_GE[code].numpy


def layout_for(shape) -> str:
    """MindSpore's default layout: "NCHW" for 4-d tensors, "ND" otherwise."""
    return "NCHW" if len(shape) == 4 else "ND"
