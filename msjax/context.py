"""``set_context`` / ``get_context``: execution mode and device target.

GRAPH_MODE compiles each Cell call with ``jax.jit``; PYNATIVE_MODE runs ``construct`` eagerly.
``device_target`` is "CPU", "GPU" or "Ascend" (TPU stands in for Ascend); a target whose backend
is absent falls back to CPU with one warning.
"""
from __future__ import annotations

import warnings

import jax

GRAPH_MODE = 0
PYNATIVE_MODE = 1

_PLATFORM = {"CPU": "cpu", "GPU": "gpu", "Ascend": "tpu"}
_state = {"mode": GRAPH_MODE, "device_target": "CPU", "device_id": 0}


def _pick_device(target, device_id):
    platform = _PLATFORM[target]
    try:
        devices = jax.devices(platform)
    except RuntimeError:
        devices = []
    if not devices:
        warnings.warn(f"device_target={target!r}: no {platform.upper()} backend is available to JAX "
                      f"here; falling back to CPU", RuntimeWarning, stacklevel=3)
        return "CPU", jax.devices("cpu")[0]
    return target, devices[min(device_id, len(devices) - 1)]


def set_context(*, mode=None, device_target=None, device_id=None, **ignored):
    """Set MindSpore's context keys that mean something on JAX.

    >>> set_context(mode=GRAPH_MODE, device_target="CPU")
    """
    if mode is not None:
        if mode not in (GRAPH_MODE, PYNATIVE_MODE):
            raise ValueError(f"mode must be GRAPH_MODE (0) or PYNATIVE_MODE (1), got {mode!r}")
        _state["mode"] = mode
    if device_id is not None:
        _state["device_id"] = int(device_id)
    if device_target is not None:
        if device_target not in _PLATFORM:
            raise ValueError(f"device_target must be one of {sorted(_PLATFORM)}, got {device_target!r}")
        target, device = _pick_device(device_target, _state["device_id"])
        _state["device_target"] = target
        jax.config.update("jax_default_device", device)
    for key in ignored:
        _state[key] = ignored[key]


def get_context(attr_key):
    """Read a context key set by ``set_context`` ("mode", "device_target", ...)."""
    if attr_key not in _state:
        raise ValueError(f"unknown context key {attr_key!r}")
    return _state[attr_key]
