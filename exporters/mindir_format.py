"""MINDIR value encoding shared by the writer (to_mindir) and the reader (from_mindir).

Facts (checked against files MindSpore 2.10 exports):
  * a tensor is a ``TensorProto`` with ``dims``, ``data_type`` (the codes below; float64 is
    DOUBLE=11) and little-endian ``raw_data``;
  * a constant is a node ``op_type="Constant"`` whose one attribute ``value`` holds: a scalar
    (``type`` BOOL/INT64 in ``i``, FLOAT in ``f``), a tuple (``type`` TUPLE, each element an
    AttributeProto with ``ints=[v]``, type INT64), a tensor (``type`` TENSORS, ``tensors[0]``
    with ``raw_data``) or a monad (UMONAD/IOMONAD, no payload);
  * ``Cast``'s dtype argument is an INT64 constant holding MindSpore's TypeId (table below).

>>> decode_tensor(encode_tensor(np.ones(2, np.float32))).tolist()
[1.0, 1.0]
"""
from __future__ import annotations

import math

import numpy as np

from msjax.common import dtype as mstype
from msjax._proto import mind_ir_pb2 as pb
from msjax.common.untrusted import check_shape
from msjax.errors import ExportError

_T = pb.TensorProto
#: msjax Type -> TensorProto.DataType, as MindSpore writes them
DATA_TYPES = {
    mstype.bool_: _T.BOOL, mstype.int8: _T.INT8, mstype.int16: _T.INT16, mstype.int32: _T.INT32,
    mstype.int64: _T.INT64, mstype.uint8: _T.UINT8, mstype.uint16: _T.UINT16,
    mstype.uint32: _T.UINT32, mstype.uint64: _T.UINT64, mstype.float16: _T.FLOAT16,
    mstype.float32: _T.FLOAT, mstype.float64: _T.DOUBLE, mstype.bfloat16: _T.BFLOAT16,
    mstype.complex64: _T.COMPLEX64, mstype.complex128: _T.COMPLEX128,
}
BY_DATA_TYPE = {code: t for t, code in DATA_TYPES.items()}
BY_DATA_TYPE[_T.FLOAT64] = mstype.float64

#: msjax Type -> MindSpore TypeId (the INT64 that Cast's dtype argument carries)
TYPE_IDS = {
    mstype.bool_: 30, mstype.int8: 32, mstype.int16: 33, mstype.int32: 34, mstype.int64: 35,
    mstype.uint8: 37, mstype.uint16: 38, mstype.uint32: 39, mstype.uint64: 40,
    mstype.float16: 42, mstype.float32: 43, mstype.float64: 44, mstype.bfloat16: 45,
}
BY_TYPE_ID = {i: t for t, i in TYPE_IDS.items()}

A = pb.AttributeProto


def data_type(dtype) -> int:
    t = mstype.to_type(dtype)
    if t not in DATA_TYPES:
        raise ExportError(f"dtype {t} cannot be stored in a MINDIR tensor")
    return DATA_TYPES[t]


def numpy_dtype(code: int, *, where="", file=None) -> np.dtype:
    if code not in BY_DATA_TYPE:
        raise ExportError(f"{where}: data_type {code} is not a MINDIR tensor type msjax reads "
                          f"(known: {sorted(BY_DATA_TYPE)})", file=file)
    return BY_DATA_TYPE[code].numpy


def tensor_spec(shape, dtype, name=None) -> pb.TensorProto:
    """A TensorProto with dims and data_type only (an abstract or an input description)."""
    t = pb.TensorProto(dims=[int(d) for d in shape], data_type=data_type(dtype))
    if name is not None:
        t.name = name
    return t


def encode_tensor(array, name=None) -> pb.TensorProto:
    array = np.asarray(array, order="C")         # keeps 0-d (ascontiguousarray makes it 1-d)
    t = tensor_spec(array.shape, array.dtype, name)
    t.raw_data = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
    return t


#: TensorProto's typed value fields and the dtype protobuf holds each in
_TYPED_FIELDS = (("float_data", np.float32), ("int32_data", np.int32), ("int64_data", np.int64),
                 ("double_data", np.float64))


def array_shape(dims, dtype: np.dtype, available: int, name: str, file=None) -> tuple:
    """``dims`` as an ndarray shape of ``dtype`` that ``available`` bytes can back (the error
    comes before anything is allocated); zero-size shapes must still be ones numpy can make."""
    shape = tuple(dims)
    check_shape(shape, dtype.itemsize, available, name, ExportError, file)
    return shape


def decode_tensor(t: pb.TensorProto, *, where="", file=None) -> np.ndarray:
    """A TensorProto's value as numpy (raw_data, or the typed repeated fields); ``where`` names
    the tensor and ``file`` its file in errors. Dims must match the data exactly."""
    where = where or f"tensor {t.name}"
    dtype = numpy_dtype(t.data_type, where=where, file=file)
    if t.HasField("external_data"):
        raise ExportError(f"{where}: tensors stored in external files are not supported", file=file)
    if t.raw_data:
        return _from_raw(t.raw_data, t.dims, dtype, where, file)
    for field, held in _TYPED_FIELDS:
        values = getattr(t, field)
        if len(values):
            shape = array_shape(t.dims, dtype, len(values) * dtype.itemsize, where, file)
            if len(values) != math.prod(shape):
                raise ExportError(f"{where}: {field} holds {len(values)} values, dims {list(shape)} "
                                  f"need {math.prod(shape)}", file=file)
            return np.asarray(values, held).astype(dtype).reshape(shape)
    return np.zeros(array_shape(t.dims, dtype, 0, where, file), dtype)


def _from_raw(raw: bytes, dims, dtype: np.dtype, where: str, file) -> np.ndarray:
    shape = array_shape(dims, dtype, len(raw), where, file)
    need = math.prod(shape) * dtype.itemsize
    if len(raw) != need:
        raise ExportError(f"{where}: raw_data holds {len(raw)} bytes, dims {list(shape)} of {dtype} "
                          f"need {need}; the tensor is truncated or its dims are wrong", file=file)
    return np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(shape)


def encode_value(value, name="value") -> pb.AttributeProto:
    """Python/numpy value -> AttributeProto as a Constant node carries it."""
    if isinstance(value, (bool, np.bool_)):
        return A(name=name, i=int(value), type=A.BOOL)
    if isinstance(value, (int, np.integer)):
        return A(name=name, i=int(value), type=A.INT64)
    if isinstance(value, (float, np.floating)):
        return A(name=name, f=float(value), type=A.FLOAT)
    if isinstance(value, str):
        return A(name=name, s=value.encode(), type=A.STRING)
    if isinstance(value, (tuple, list)):
        return A(name=name, type=A.TUPLE if isinstance(value, tuple) else A.LIST,
                 values=[_element(v) for v in value])
    if isinstance(value, np.ndarray):
        return A(name=name, type=A.TENSORS, tensors=[encode_tensor(value)])
    raise ExportError(f"cannot encode {type(value).__name__} {value!r} as a MINDIR value")


def _element(v):
    if isinstance(v, (bool, np.bool_)):
        return A(ints=[int(v)], type=A.BOOL)
    if isinstance(v, (int, np.integer)):
        return A(ints=[int(v)], type=A.INT64)
    if isinstance(v, (float, np.floating)):
        return A(floats=[float(v)], type=A.FLOAT)
    if isinstance(v, str):
        return A(strings=[v.encode()], type=A.STRING)
    return encode_value(v, name="")


class Monad:
    """UMONAD/IOMONAD placeholder values: side-effect tokens, meaningless in JAX."""

    def __repr__(self):
        return "<monad>"


MONAD = Monad()


def decode_value(a: pb.AttributeProto, *, where="", file=None):
    """AttributeProto (constant or primitive attribute) -> Python/numpy value. Nesting depth is
    bounded by protobuf's parse limit (100), so the recursion over tuples is too."""
    kind = a.type
    if kind in (A.TUPLE, A.LIST):
        items = [decode_value(v, where=where, file=file) for v in a.values]
        return tuple(items) if kind == A.TUPLE else items
    if kind in (A.UMONAD, A.IOMONAD):
        return MONAD
    if kind == A.NONE:
        return None
    if kind == A.TENSORS or kind == A.TENSOR:
        return decode_tensor(_one_tensor(a, where, file), where=where, file=file)
    if kind == A.BOOL:
        return bool(a.ints[0] if a.ints else a.i)
    if kind in (A.INT8, A.INT16, A.INT32, A.INT64, A.UINT8, A.UINT16, A.UINT32, A.UINT64):
        return int(a.ints[0] if a.ints else a.i)
    if kind == A.FLOAT:
        return float(a.floats[0] if a.floats else a.f)
    if kind == A.DOUBLE:
        return float(a.doubles[0] if a.doubles else a.d)
    if kind == A.STRING:
        return _text(a.strings[0] if a.strings else a.s, where, file)
    raise ExportError(f"{where}: MINDIR value of type {_type_name(kind)} is not supported", file=file)


def _one_tensor(a, where, file):
    if a.tensors:
        return a.tensors[0]
    if a.HasField("t"):
        return a.t
    raise ExportError(f"{where}: value of type {_type_name(a.type)} holds no tensor", file=file)


def _text(raw: bytes, where, file) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise ExportError(f"{where}: string value {raw[:40]!r} is not valid UTF-8", file=file) from None


def _type_name(kind) -> str:
    try:
        return A.AttributeType.Name(kind)
    except ValueError:
        return str(kind)
