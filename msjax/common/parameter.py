"""``msjax.common.parameter``: MindSpore's import path for ``Parameter`` (``mindspore.common.parameter``)."""
from msjax.common.tensor import Parameter

__all__ = ["Parameter"]
