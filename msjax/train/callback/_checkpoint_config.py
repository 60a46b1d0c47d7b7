"""``CheckpointConfig``: MindSpore 2.10's save policy arguments, checked, with its properties.

The step policy (``save_checkpoint_steps``) wins over the time policy (``save_checkpoint_seconds``),
and ``keep_checkpoint_max`` over ``keep_checkpoint_per_n_minutes``; MindSpore drops the loser
silently, msjax warns once naming the winner.

On one device some arguments mean what they mean in a stand-alone MindSpore run: ``integrated_save``
(merging model-parallel slices) has nothing to merge, ``remove_redundancy`` is refused by the save
(as MindSpore refuses it in 'stand_alone'), and ``incremental`` (saving MapParameters
incrementally) has no MapParameter to apply to. Unknown keyword arguments warn once.

``format="orbax"`` is msjax's extension for sharded runs: each checkpoint is an orbax directory
``<prefix>-<epoch>_<step>.orbax`` (``msjax.checkpoint.orbax_format``) written shard by shard from
the devices that hold each array, by every process under ``jax.distributed``; read it back with
``load_orbax`` or ``load_checkpoint`` onto any device count. ``ckpt`` and ``safetensors`` write
the gathered parameters as one file (rank 0 writes it in a multi-process run).
"""
from __future__ import annotations

import warnings

from msjax.common.formats import CHECKPOINT_FORMATS
from msjax.common.tensor import Parameter, Tensor
from msjax.common.validator import check_isinstance
from msjax.common.warn_once import warn_ignored
from msjax.nn.cell import Cell

__all__ = ["CheckpointConfig"]

_INFO_LIST = ("epoch_num", "step_num")


def _non_negative_int(value, name):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"For 'CheckpointConfig', '{name}' must be an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"For 'CheckpointConfig', '{name}' must be >= 0, got {value}")
    return value


def _check_bool(value, name):
    if not isinstance(value, bool):
        raise TypeError(f"For 'CheckpointConfig', '{name}' must be a bool, got {type(value).__name__}")
    return value



class CheckpointConfig:
    """When to save, how many files to keep and how to write them (MindSpore 2.10's arguments)."""

    def __init__(self, save_checkpoint_steps=1, save_checkpoint_seconds=0, keep_checkpoint_max=5,
                 keep_checkpoint_per_n_minutes=0, integrated_save=True, async_save=False, saved_network=None,
                 append_info=None, enc_key=None, enc_mode="AES-GCM", exception_save=False, crc_check=False,
                 remove_redundancy=False, format="ckpt", *, incremental=False, **kwargs):
        steps = _non_negative_int(save_checkpoint_steps, "save_checkpoint_steps")
        seconds = _non_negative_int(save_checkpoint_seconds, "save_checkpoint_seconds")
        keep_max = _non_negative_int(keep_checkpoint_max, "keep_checkpoint_max")
        per_n = _non_negative_int(keep_checkpoint_per_n_minutes, "keep_checkpoint_per_n_minutes")
        if saved_network is not None and not isinstance(saved_network, Cell):
            raise TypeError(f"For 'CheckpointConfig', 'saved_network' must be None or a Cell, "
                            f"got {type(saved_network).__name__}")
        if not steps and not seconds and not keep_max and not per_n:
            raise ValueError("For 'CheckpointConfig', 'save_checkpoint_steps', 'save_checkpoint_seconds', "
                             "'keep_checkpoint_max' and 'keep_checkpoint_per_n_minutes' can't be all None or 0.")
        self.exception_save = _check_bool(exception_save, "exception_save")
        if steps and seconds:
            warnings.warn(f"CheckpointConfig: save_checkpoint_steps={steps} wins; save_checkpoint_seconds="
                          f"{seconds} is ignored (as in MindSpore). Pass save_checkpoint_steps=0 to save by time.",
                          UserWarning, stacklevel=2)
        self._save_checkpoint_steps = steps
        self._save_checkpoint_seconds = None if steps else seconds
        if keep_max and per_n:
            warnings.warn(f"CheckpointConfig: keep_checkpoint_max={keep_max} wins; keep_checkpoint_per_n_minutes="
                          f"{per_n} is ignored (as in MindSpore). Pass keep_checkpoint_max=0 to keep by minutes.",
                          UserWarning, stacklevel=2)
        self._keep_checkpoint_max = keep_max
        self._keep_checkpoint_per_n_minutes = per_n
        if keep_max:
            self._keep_checkpoint_per_n_minutes = None
        elif not per_n:
            self._keep_checkpoint_max = 1
        self._integrated_save = _check_bool(integrated_save, "integrated_save")
        if not isinstance(async_save, (bool, str)):
            raise TypeError(f"For 'CheckpointConfig', 'async_save' must be a bool or str, "
                            f"got {type(async_save).__name__}")
        if isinstance(async_save, str) and async_save not in ("process", "thread"):
            raise ValueError(f"For 'CheckpointConfig', 'async_save' can only be 'process' or 'thread', "
                             f"got {async_save!r}")
        self._async_save = async_save
        self._saved_network = saved_network
        self._append_dict = self._handle_append_info(append_info)
        self._enc_key = check_isinstance("CheckpointConfig", "enc_key", enc_key, (type(None), bytes))
        self._enc_mode = check_isinstance("CheckpointConfig", "enc_mode", enc_mode, (str,))
        self._crc_check = check_isinstance("CheckpointConfig", "crc_check", crc_check, (bool,))
        if not isinstance(format, str) or format not in CHECKPOINT_FORMATS + ("orbax",):
            raise ValueError(f"For 'CheckpointConfig', 'format' must be 'ckpt' or 'safetensors' (or msjax's "
                             f"'orbax'), got {format!r}")
        self._format = format
        self.remove_redundancy = check_isinstance("CheckpointConfig", "remove_redundancy", remove_redundancy, (bool,))
        self._map_param_inc = _check_bool(incremental, "incremental")
        for name in kwargs:       # MindSpore's CheckpointConfig takes **kwargs too
            warn_ignored("CheckpointConfig", f"{name}=", "it is not a CheckpointConfig option msjax knows")
        if format != "ckpt" and (enc_key is not None or enc_mode != "AES-GCM" or crc_check or exception_save):
            raise ValueError(f"For 'CheckpointConfig', when format is '{format}', enc_key, enc_mode, crc_check "
                             "and exception_save must keep their defaults.")

    save_checkpoint_steps = property(lambda self: self._save_checkpoint_steps)
    save_checkpoint_seconds = property(lambda self: self._save_checkpoint_seconds)
    keep_checkpoint_max = property(lambda self: self._keep_checkpoint_max)
    keep_checkpoint_per_n_minutes = property(lambda self: self._keep_checkpoint_per_n_minutes)
    integrated_save = property(lambda self: self._integrated_save)
    async_save = property(lambda self: self._async_save)
    saved_network = property(lambda self: self._saved_network)
    enc_key = property(lambda self: self._enc_key)
    enc_mode = property(lambda self: self._enc_mode)
    crc_check = property(lambda self: self._crc_check)
    format = property(lambda self: self._format)
    append_dict = property(lambda self: self._append_dict)
    map_param_inc = property(lambda self: self._map_param_inc)

    def get_checkpoint_policy(self):
        """The policy as a dict (MindSpore's keys)."""
        return {"save_checkpoint_steps": self.save_checkpoint_steps,
                "save_checkpoint_seconds": self.save_checkpoint_seconds,
                "keep_checkpoint_max": self.keep_checkpoint_max,
                "keep_checkpoint_per_n_minutes": self.keep_checkpoint_per_n_minutes,
                "saved_network": self.saved_network}

    @staticmethod
    def _handle_append_info(append_info):
        if append_info is None or append_info == []:
            return None
        if not isinstance(append_info, list):
            raise TypeError(f"For 'CheckpointConfig', 'append_info' must be a list, got {type(append_info).__name__}")
        out = {key: 0 for key in _INFO_LIST if key in append_info}
        dicts = 0
        for element in append_info:
            if isinstance(element, str):
                if element not in _INFO_LIST:
                    raise ValueError(f"For 'CheckpointConfig', 'append_info' strings must be in {list(_INFO_LIST)}, "
                                     f"got {element!r}")
            elif isinstance(element, dict):
                dicts += 1
                if dicts > 1:
                    raise TypeError("For 'CheckpointConfig', 'append_info' may hold only one dict")
                for key, value in element.items():
                    if not isinstance(key, str) or not isinstance(value, (int, float, bool, str, Parameter, Tensor)):
                        raise TypeError(f"For 'CheckpointConfig', 'append_info' dict keys must be str and values "
                                        f"int, float, bool, str, Parameter or Tensor; got {key!r}: "
                                        f"{type(value).__name__}")
                    out[key] = value
            else:
                raise TypeError(f"For 'CheckpointConfig', 'append_info' elements must be str or dict, "
                                f"got {type(element).__name__}")
        return out

