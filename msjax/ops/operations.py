"""``msjax.ops.operations``: MindSpore's import path for primitive classes (``from mindspore.ops import operations as P``)."""
from msjax.ops.primitives import *  # noqa: F403
from msjax.ops.primitives import __all__  # noqa: F401
