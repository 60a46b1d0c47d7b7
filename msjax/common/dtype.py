"""MindSpore's data types and the one table that maps them to numpy and to file formats.

Every other module (checkpoint codec, safetensors, MINDIR, ONNX, AIR) looks dtypes up here, so
encode and decode cannot drift apart.
"""
from __future__ import annotations

import dataclasses
import sys

import numpy as np


@dataclasses.dataclass(frozen=True, eq=False)
class Type:
    """A MindSpore dtype such as ``msjax.float32``; ``str()`` gives MindSpore's spelling."""

    name: str          # Python-side name: "float32"
    ckpt: str          # TensorProto.tensor_type in a .ckpt: "Float32"
    storage: object    # numpy dtype, or the name of an ml_dtypes type (imported when first needed)
    safetensors: str | None = None

    @property
    def numpy(self) -> np.dtype:
        """The storage dtype (int4x2 is stored one byte per element, as given). ml_dtypes costs
        most of a second to import, so its types (bfloat16, float8) import it when first asked."""
        if isinstance(self.storage, str):
            import ml_dtypes

            object.__setattr__(self, "storage", np.dtype(getattr(ml_dtypes, self.storage)))
        return self.storage

    def __repr__(self):          # MindSpore 2.10 prints each dtype as its .ckpt string
        return self.ckpt

    __str__ = __repr__


def _t(name, ckpt, np_dtype, st=None):
    return Type(name, ckpt, np_dtype if isinstance(np_dtype, str) else np.dtype(np_dtype), st)


bool_ = _t("bool", "Bool", np.bool_, "BOOL")
int8 = _t("int8", "Int8", np.int8, "I8")
int16 = _t("int16", "Int16", np.int16, "I16")
int32 = _t("int32", "Int32", np.int32, "I32")
int64 = _t("int64", "Int64", np.int64, "I64")
uint8 = _t("uint8", "UInt8", np.uint8, "U8")
uint16 = _t("uint16", "UInt16", np.uint16, "U16")
uint32 = _t("uint32", "UInt32", np.uint32, "U32")
uint64 = _t("uint64", "UInt64", np.uint64, "U64")
float16 = _t("float16", "Float16", np.float16, "F16")
float32 = _t("float32", "Float32", np.float32, "F32")
float64 = _t("float64", "Float64", np.float64, "F64")
bfloat16 = _t("bfloat16", "BFloat16", "bfloat16", "BF16")
complex64 = _t("complex64", "Complex64", np.complex64, "C64")
complex128 = _t("complex128", "Complex128", np.complex128, None)
float8_e4m3fn = _t("float8_e4m3fn", "Float8E4M3FN", "float8_e4m3fn", "F8_E4M3")
float8_e5m2 = _t("float8_e5m2", "Float8E5M2", "float8_e5m2", "F8_E5M2")
hifloat8 = _t("hifloat8", "HiFloat8", np.uint8, None)      # no numpy type: raw 8-bit codes
qint4x2 = _t("qint4x2", "Int4", np.int8, None)              # one byte per element, as MindSpore stores it

float_, half, single, double = float32, float16, float32, float64
int_, uint = int32, uint32

ALL = (bool_, int8, int16, int32, int64, uint8, uint16, uint32, uint64, float16, float32, float64,
       bfloat16, complex64, complex128, float8_e4m3fn, float8_e5m2, hifloat8, qint4x2)

BY_CKPT = {t.ckpt: t for t in ALL}
BY_NAME = {t.name: t for t in ALL}
BY_SAFETENSORS = {t.safetensors: t for t in ALL if t.safetensors}
# numpy dtype -> MindSpore type; first entry wins (uint8 over hifloat8, int8 over qint4x2). The
# ml_dtypes types join once ml_dtypes is imported: before that, no array can have one of them.
BY_NUMPY = {}
for _type in ALL:
    if not isinstance(_type.storage, str):
        BY_NUMPY.setdefault(_type.numpy, _type)
del _type
_ML_PENDING = [t for t in ALL if isinstance(t.storage, str)]


def from_numpy(dtype) -> Type:
    """The MindSpore type that stores numpy (or jax) ``dtype``."""
    dtype = np.dtype(dtype)
    found = BY_NUMPY.get(dtype)
    if found is None and _ML_PENDING and "ml_dtypes" in sys.modules:
        for pending in tuple(_ML_PENDING):
            BY_NUMPY.setdefault(pending.numpy, pending)
        _ML_PENDING.clear()
        found = BY_NUMPY.get(dtype)
    if found is None:
        raise TypeError(f"numpy dtype {dtype} has no MindSpore equivalent")
    return found


def to_type(dtype) -> Type:
    """Accept a msjax Type, a numpy/jax dtype, or a name ("float32", "Float32")."""
    if isinstance(dtype, Type):
        return dtype
    if isinstance(dtype, str):
        found = BY_NAME.get(dtype) or BY_CKPT.get(dtype)
        if found is None:
            raise TypeError(f"unknown dtype name {dtype!r}")
        return found
    return from_numpy(dtype)


def to_numpy(dtype) -> np.dtype:
    """The numpy dtype for a msjax Type (or anything ``to_type`` accepts)."""
    return to_type(dtype).numpy
