"""Activation cells: ReLU, GELU, Softmax, Sigmoid, Tanh, and ``get_activation`` by name.

>>> nn.ReLU()(Tensor(np.array([-1.0, 2.0], np.float32))).asnumpy()
array([0., 2.], dtype=float32)
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from msjax.errors import LayerArgumentError
from msjax.nn.cell import Cell
from msjax.ops import _nn

__all__ = ["ReLU", "GELU", "Softmax", "Sigmoid", "Tanh", "get_activation"]


class ReLU(Cell):
    """``max(x, 0)``."""

    def construct(self, x):
        return jax.nn.relu(x)


class Sigmoid(Cell):
    def construct(self, x):
        return jax.nn.sigmoid(x)


class Tanh(Cell):
    def construct(self, x):
        return jnp.tanh(x)


class GELU(Cell):
    """GELU; ``approximate=True`` (MindSpore's default) is the tanh form, False the erf form."""

    def __init__(self, approximate=True):
        super().__init__()
        if not isinstance(approximate, bool):
            raise TypeError(f"GELU: approximate must be a bool, got {approximate!r}")
        self.approximate = "tanh" if approximate else "none"

    def construct(self, x):
        return _nn.gelu(x, self.approximate)


class Softmax(Cell):
    """Softmax along ``axis`` (default -1)."""

    def __init__(self, axis=-1):
        super().__init__()
        self.axis = axis

    def construct(self, x):
        return jax.nn.softmax(x, axis=self.axis)


_ACTIVATIONS = {"relu": ReLU, "gelu": GELU, "softmax": Softmax, "sigmoid": Sigmoid, "tanh": Tanh}


def get_activation(name, prim_name=None):
    """The activation cell named ``name`` ("relu", "gelu", ...); None for None.

    >>> type(get_activation("relu")).__name__
    'ReLU'
    """
    if name is None:
        return None
    try:
        return _ACTIVATIONS[name.lower()]()
    except KeyError:
        raise LayerArgumentError(f"unknown activation {name!r}; known: {sorted(_ACTIVATIONS)}") from None
