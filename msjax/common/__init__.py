"""Tensors, parameters, dtypes and initializers."""
from msjax.common import dtype
from msjax.common.tensor import Parameter, Tensor

__all__ = ["Parameter", "Tensor", "dtype"]
