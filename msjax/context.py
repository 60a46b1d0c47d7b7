"""``set_context`` / ``get_context``: execution mode and device target.

GRAPH_MODE compiles each Cell call with ``jax.jit``; PYNATIVE_MODE runs ``construct`` eagerly.
``device_target`` is "CPU", "GPU" or "Ascend" (TPU stands in for Ascend); a target whose backend
is absent falls back to CPU with one warning.

The persistent compilation cache is MindSpore's ``enable_compile_cache`` / ``compile_cache_path``
(or, where the context leaves them unset, the environment variables ``MS_COMPILER_CACHE_ENABLE=1``
and ``MS_COMPILER_CACHE_PATH``), mapped onto JAX's persistent cache: compiled XLA executables are
written to ``<compile_cache_path>/rank_<RANK_ID>/graph_cache`` (MindSpore's layout; the path
defaults to the working directory, ``RANK_ID`` to 0) and a later process compiling the same program
with the same jax, XLA flags and device loads the executable instead of compiling it again (the key
is the lowered program itself, so changed code or shapes add entries and never reuse stale ones;
nothing is evicted: delete the directory to clear it). Tracing and lowering still run in every
process. It is off by default, as in MindSpore; programs compiled before it is switched on are not
written. When on, every program is cached whatever its compile time
(``jax_persistent_cache_min_compile_time_secs`` 0; set it after ``set_context`` to cache less).
As with any JAX cache, the directory is trusted: whoever can write to it can run code in the
processes that read it.

``jit_config={"jit_level": ...}`` is MindSpore's compile optimization level: ``""`` (the default)
lets msjax choose per program, ``"O0"`` compiles every cell program for compile speed, ``"O1"`` and
``"O2"`` with XLA's default options (``msjax/nn/_jit_level.py`` says what each means on XLA).
"""
from __future__ import annotations

import os
import warnings

import jax

GRAPH_MODE = 0
PYNATIVE_MODE = 1

_PLATFORM = {"CPU": "cpu", "GPU": "gpu", "Ascend": "tpu"}
_state = {"mode": GRAPH_MODE, "device_target": "CPU", "device_id": 0,
          "enable_compile_cache": None, "compile_cache_path": "", "jit_config": {"jit_level": ""}}
JIT_LEVELS = ("", "O0", "O1", "O2")


def compile_cache_dir():
    """The directory the persistent compilation cache uses now, or None when it is off.

    The context's ``enable_compile_cache`` wins; left unset (None) the environment's
    ``MS_COMPILER_CACHE_ENABLE == "1"`` decides, as in MindSpore. The path likewise comes from
    ``compile_cache_path``, else ``MS_COMPILER_CACHE_PATH``, else the working directory.
    """
    enabled = _state["enable_compile_cache"]
    if enabled is None:
        enabled = os.environ.get("MS_COMPILER_CACHE_ENABLE") == "1"
    if not enabled:
        return None
    root = _state["compile_cache_path"] or os.environ.get("MS_COMPILER_CACHE_PATH") or "."
    rank = os.environ.get("RANK_ID", "0")
    return os.path.join(os.path.abspath(root), f"rank_{rank}", "graph_cache")


def _apply_compile_cache():
    """Point JAX's persistent cache at ``compile_cache_dir()`` (or switch it off)."""
    from jax.experimental.compilation_cache import compilation_cache as _jax_cache   # only when switched
    path = compile_cache_dir()
    if path == jax.config.jax_compilation_cache_dir:
        return
    if path is not None:
        os.makedirs(path, exist_ok=True)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_compilation_cache_dir", path)
    _jax_cache.reset_cache()   # the cache object binds its directory on first use


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


def set_context(*, mode=None, device_target=None, device_id=None, enable_compile_cache=None,
                compile_cache_path=None, jit_config=None, **ignored):
    """Set MindSpore's context keys that mean something on JAX.

    ``enable_compile_cache`` (bool) and ``compile_cache_path`` (str) switch the persistent
    compilation cache; ``jit_config`` (dict) takes ``jit_level`` (see the module docstring).

    >>> set_context(mode=GRAPH_MODE, device_target="CPU")
    >>> set_context(enable_compile_cache=True, compile_cache_path="./cache.ms")  # doctest: +SKIP
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
    if enable_compile_cache is not None:
        if not isinstance(enable_compile_cache, bool):
            raise TypeError(f"The parameter 'enable_compile_cache' must be <class 'bool'>, but got "
                            f"{type(enable_compile_cache)}")
        _state["enable_compile_cache"] = enable_compile_cache
    if compile_cache_path is not None:
        if not isinstance(compile_cache_path, str):
            raise TypeError(f"The parameter 'compile_cache_path' must be <class 'str'>, but got "
                            f"{type(compile_cache_path)}")
        _state["compile_cache_path"] = compile_cache_path
    if enable_compile_cache is not None or compile_cache_path is not None:
        _apply_compile_cache()
    if jit_config is not None:
        _state["jit_config"] = _checked_jit_config(jit_config)
    for key in ignored:
        _state[key] = ignored[key]


def _checked_jit_config(jit_config):
    if not isinstance(jit_config, dict):
        raise TypeError(f"The parameter 'jit_config' must be <class 'dict'>, but got {type(jit_config)}")
    level = jit_config.get("jit_level", "")
    if level not in JIT_LEVELS:
        raise ValueError(f"jit_config['jit_level'] must be one of {list(JIT_LEVELS)}, got {level!r}")
    return {**jit_config, "jit_level": level}


def get_context(attr_key):
    """Read a context key set by ``set_context`` ("mode", "device_target", ...)."""
    if attr_key not in _state:
        raise ValueError(f"unknown context key {attr_key!r}")
    return _state[attr_key]


if os.environ.get("MS_COMPILER_CACHE_ENABLE") == "1":
    _apply_compile_cache()
