"""The argument checks MindSpore's optimizers share (its ``validator`` messages, msjax's wording)."""
from __future__ import annotations

import jax.numpy as jnp

from msjax.errors import LayerArgumentError


def check_float(cls, name, value, *, positive=False):
    """MindSpore's check: ``value`` is a float, ``>= 0`` (or ``> 0`` with ``positive``)."""
    if isinstance(value, bool) or not isinstance(value, float):
        raise TypeError(f"For '{cls}', '{name}' must be a float, got {type(value).__name__}")
    if value < 0.0 or (positive and value == 0.0):
        raise LayerArgumentError(f"For '{cls}', '{name}' must be {'> 0' if positive else '>= 0'}, got {value}")
    return value


def check_bool(cls, name, value):
    if not isinstance(value, bool):
        raise TypeError(f"For '{cls}', '{name}' must be a bool, got {type(value).__name__}")
    return value


def check_range(cls, name, value, low, high):
    """A float strictly inside ``(low, high)`` (MindSpore's ``INC_NEITHER``)."""
    if isinstance(value, bool) or not isinstance(value, float):
        raise TypeError(f"For '{cls}', '{name}' must be a float, got {type(value).__name__}")
    if not low < value < high:
        raise LayerArgumentError(f"For '{cls}', '{name}' must be in ({low}, {high}), got {value}")
    return value


def fill_states(states, value):
    """Fill MindSpore's cloned state Parameters with ``value`` (``clone(init=<float>)``)."""
    for state in states:
        state.set_value(jnp.full_like(state.get_value(), value))
    return states
