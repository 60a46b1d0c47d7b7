"""``msjax.ops.operations``: MindSpore's import path for primitive classes (``from mindspore.ops import operations as P``)."""
from msjax.ops.primitives import *
from msjax.ops.primitives import __all__  # noqa: F401
