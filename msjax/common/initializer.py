"""MindSpore's initializers: ``initializer(init, shape, dtype)`` and the classes behind it.

Random values come from one numpy Generator seeded by ``msjax.set_seed``; MindSpore's own random
streams cannot be reproduced, so weights that must match MindSpore are loaded from a checkpoint.
The classes and the generator live in ``_initializers`` (arrays only, below Tensor); this module
adds the Tensor.
"""
from __future__ import annotations

from msjax.common import _initializers
from msjax.common import dtype as mstype
from msjax.common._initializers import (
    Constant,
    HeNormal,
    HeUniform,
    Initializer,
    Normal,
    One,
    TruncatedNormal,
    Uniform,
    XavierNormal,
    XavierUniform,
    Zero,
    set_seed,
)
from msjax.common._tensor import Tensor

__all__ = ["Constant", "HeNormal", "HeUniform", "Initializer", "Normal", "One", "TruncatedNormal", "Uniform",
           "XavierNormal", "XavierUniform", "Zero", "initializer", "set_seed"]


def initializer(init, shape=None, dtype=mstype.float32):
    """Make a Tensor of ``shape`` from an Initializer, a name, a number, a Tensor or an array.

    >>> initializer("ones", (2, 3)).asnumpy().sum()
    6.0
    """
    return Tensor(_initializers.initial_array(init, shape, dtype))
