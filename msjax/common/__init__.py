"""Tensors, parameters, dtypes and initializers (``Tensor``/``Parameter`` imported on first use,
so the dtype table and file helpers load without jax)."""
from msjax._lazy import attribute as _attribute
from msjax.common import dtype

_LAZY = {"Parameter": "msjax.common.tensor", "Tensor": "msjax.common.tensor"}

__all__ = ["Parameter", "Tensor", "dtype"]


def __getattr__(name):
    return _attribute(__name__, _LAZY, name)


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
