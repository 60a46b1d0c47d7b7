"""``ModelCheckpoint`` and ``CheckpointConfig``: MindSpore's save policies, file names and keep rules.

Files are ``<prefix>-<epoch>_<step in epoch>.ckpt``; if files of ``prefix`` already exist in the
directory the prefix becomes ``<prefix>_<N>``; ``<prefix>-graph.meta`` is written once, at the first
step. The step policy (``save_checkpoint_steps``) wins over the time policy
(``save_checkpoint_seconds``), and ``keep_checkpoint_max`` over ``keep_checkpoint_per_n_minutes``;
MindSpore drops the loser silently, msjax warns once naming the winner. Time comes from the
module-level ``_time`` (tests swap in a fake clock).

>>> config = CheckpointConfig(save_checkpoint_steps=2, keep_checkpoint_max=3)
>>> model.train(2, ds, callbacks=[ModelCheckpoint(prefix="lenet", directory="ckpt", config=config)])
"""
from __future__ import annotations

import itertools
import os
import stat
import time
import warnings

from msjax.common.atomic import clean_orphans
from msjax.common.tensor import Parameter, Tensor
from msjax.common.validator import check_isinstance
from msjax.nn.cell import Cell, last_call_inputs
from msjax.train.callback._callback import Callback

__all__ = ["CheckpointConfig", "ModelCheckpoint"]

#: the clock every policy reads; tests replace it (``monkeypatch.setattr(_checkpoint, "_time", fake)``)
_time = time.time

_INFO_LIST = ("epoch_num", "step_num")
_order = itertools.count()


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


def _save_checkpoint(*args, **kwargs):
    from msjax.checkpoint import save_checkpoint
    return save_checkpoint(*args, **kwargs)


def _write_graph(network, example_inputs, path):
    """Write ``<prefix>-graph.meta``; report whether it did.

    The graph comes from ``example_inputs`` (the batch, in ``Model.train``), else from the
    network's last compiled call (``last_call_inputs``: its last input signature). As in
    MindSpore, which writes the file only when the network has a compiled graph, a network never
    called in GRAPH_MODE gets none, and graph.meta never fails a save: an error writing it is a
    warning, and the checkpoints are still written.
    """
    try:
        from msjax._lazy import exporters

        write_graph_meta = exporters("graph_meta").write_graph_meta
    except ImportError:
        return False
    if example_inputs is None:
        last = last_call_inputs(network) if isinstance(network, Cell) else None
        if last is None:
            return False
        example_inputs = last[0]
    try:
        write_graph_meta(network, example_inputs, path)
    except Exception as err:  # noqa: BLE001  (graph.meta is informational; the checkpoint matters)
        warnings.warn(f"ModelCheckpoint: {path} was not written ({type(err).__name__}: {err}); the "
                      f"checkpoints are saved without it", RuntimeWarning, stacklevel=3)
        return False
    return True


def _batch(cb_params):
    """The run context's current batch, or None (a hand-built ``RunContext`` has none)."""
    if isinstance(cb_params, dict):
        return cb_params.get("train_dataset_element")
    return getattr(cb_params, "train_dataset_element", None)


class CheckpointConfig:
    """When to save, how many files to keep and how to write them (MindSpore 2.10's arguments)."""

    def __init__(self, save_checkpoint_steps=1, save_checkpoint_seconds=0, keep_checkpoint_max=5,
                 keep_checkpoint_per_n_minutes=0, integrated_save=True, async_save=False, saved_network=None,
                 append_info=None, enc_key=None, enc_mode="AES-GCM", exception_save=False, crc_check=False,
                 remove_redundancy=False, format="ckpt", **kwargs):
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
        if not isinstance(format, str) or format not in ("ckpt", "safetensors"):
            raise ValueError(f"For 'CheckpointConfig', 'format' must be 'ckpt' or 'safetensors', got {format!r}")
        self._format = format
        self.remove_redundancy = check_isinstance("CheckpointConfig", "remove_redundancy", remove_redundancy, (bool,))
        self._map_param_inc = kwargs.get("incremental", False)
        if format == "safetensors" and (enc_key is not None or enc_mode != "AES-GCM" or crc_check or exception_save):
            raise ValueError("For 'CheckpointConfig', when format is 'safetensors', enc_key, enc_mode, crc_check "
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


def _chg_ckpt_file_name_if_same_exist(directory, prefix, exception=False):
    """MindSpore's rerun rule: ``prefix`` -> ``prefix_<N>`` when files of ``prefix`` already exist."""
    if callable(prefix) or callable(directory):
        return prefix
    suffix_num, pre_len = 0, len(prefix)
    for filename in os.listdir(directory):
        ext = os.path.splitext(filename)[-1]
        breakpoint_file = filename.endswith("_breakpoint.ckpt")
        if exception != breakpoint_file or (not exception and ext not in (".ckpt", ".safetensors")):
            continue
        if filename.startswith(prefix) and len(filename) > pre_len and not filename[pre_len].isalpha():
            index = filename[pre_len:].find("-")
            if index == 0:
                suffix_num = max(suffix_num, 1)
            elif index != -1:
                num = filename[pre_len + 1:pre_len + index]
                if num.isdigit():
                    suffix_num = max(suffix_num, int(num) + 1)
    return f"{prefix}_{suffix_num}" if suffix_num else prefix


class _CheckpointManager:
    """The checkpoint files of one prefix in one directory, oldest first."""

    def __init__(self, fmt="ckpt"):
        self._format = fmt
        self._files = []
        self._saved_at = {}  # path -> (clock time, order) of the files this callback wrote

    def record(self, path):
        self._saved_at[path] = (_time(), next(_order))

    def _age(self, path):
        if path in self._saved_at:
            return self._saved_at[path]
        return (os.path.getmtime(path), -1)

    @property
    def ckpoint_num(self):
        return len(self._files)

    def update_ckpoint_filelist(self, directory, prefix):
        ext = f".{self._format}"
        self._files = [os.path.join(directory, f) for f in os.listdir(directory)
                       if f.endswith(ext) and f.startswith(prefix + "-")
                       and not any(c.isalpha() for c in f[len(prefix):-len(ext)])]

    def remove_ckpoint_file(self, path):
        try:
            os.chmod(path, stat.S_IWRITE | stat.S_IREAD)
            os.remove(path)
        except FileNotFoundError:
            pass
        except OSError as err:
            warnings.warn(f"ModelCheckpoint: could not remove the old checkpoint {path}: {err}", RuntimeWarning, stacklevel=2)
            return
        if path in self._files:
            self._files.remove(path)
        self._saved_at.pop(path, None)

    def remove_oldest_ckpoint_file(self):
        """Remove the oldest file now (MindSpore's method; ModelCheckpoint itself removes only
        after the next file is committed, through ``rotation``)."""
        if self._files:
            self.remove_ckpoint_file(min(self._files, key=self._age))

    def keep_one_ckpoint_per_minutes(self, minutes, cur_time):
        """Remove now all but the oldest file written in the last ``minutes`` (MindSpore's method)."""
        for path in self.rotation(0, minutes, 0, cur_time):
            self.remove_ckpoint_file(path)

    def rotation(self, keep_max, per_n, since_last_keep, now):
        """The old files MindSpore's keep policy removes for the next save (not yet removed).

        ``keep_checkpoint_max``: the oldest file once ``keep_max`` exist; else
        ``keep_checkpoint_per_n_minutes``: all but the oldest file of the last ``per_n`` minutes,
        when the previous save was less than ``per_n`` minutes ago.
        """
        if keep_max and 0 < keep_max <= len(self._files):
            return [min(self._files, key=self._age)]
        if per_n and per_n > 0 and since_last_keep < per_n * 60:
            window = [f for f in self._files if now - self._age(f)[0] < 60 * per_n]
            if window:
                oldest = min(window, key=self._age)
                return [f for f in window if f != oldest]
        return []


CheckpointManager = _CheckpointManager      # MindSpore's name for the same private helper


class ModelCheckpoint(Callback):
    """Save the train network (or ``config.saved_network``) during training by ``config``'s policy.

    >>> ckpt = ModelCheckpoint(prefix="lenet", directory="./ckpt", config=CheckpointConfig(save_checkpoint_steps=2))
    """

    def __init__(self, prefix="CKP", directory=None, config=None):
        super().__init__()
        if not callable(prefix) and (not isinstance(prefix, str) or "/" in prefix):
            raise ValueError(f"For 'ModelCheckpoint', 'prefix' must be a callable or a str without '/', got {prefix!r}")
        if config is None:
            config = CheckpointConfig()
        elif not isinstance(config, CheckpointConfig):
            raise TypeError(f"For 'ModelCheckpoint', 'config' must be a CheckpointConfig, got {type(config).__name__}")
        self._config = config
        self._prefix_func = prefix if callable(prefix) else None
        self._directory_func = directory if callable(directory) else None
        if directory is None:
            self._directory = os.getcwd()
        elif callable(directory):
            self._directory = None
        else:
            if not isinstance(directory, (str, os.PathLike)):
                raise TypeError(f"For 'ModelCheckpoint', 'directory' must be a str, path or callable, got {directory!r}")
            self._directory = os.path.realpath(os.fspath(directory))
            os.makedirs(self._directory, exist_ok=True)
        self._prefix = prefix
        self._exception_prefix = prefix
        if not callable(directory) and not callable(prefix):
            self._prefix = _chg_ckpt_file_name_if_same_exist(self._directory, prefix)
        now = _time()
        self._last_time = now
        self._last_time_for_keep = now
        self._last_triggered_step = 0
        self._latest_ckpt_file_name = ""
        self._manager = _CheckpointManager(config.format)
        self._append_dict = dict(config.append_dict or {})
        self._append_epoch_num = self._append_dict.get("epoch_num", 0)
        self._append_step_num = self._append_dict.get("step_num", 0)
        self._graph_saved = False
        self._pending = None          # the async save in flight
        if self._directory is not None:
            clean_orphans(self._directory)

    @property
    def latest_ckpt_file_name(self):
        """Path of the newest checkpoint this callback wrote."""
        return self._latest_ckpt_file_name

    def step_end(self, run_context):
        cb_params = run_context.original_args()
        if self._prefix_func:
            self._prefix = self._prefix_func(cb_params)
            if not isinstance(self._prefix, str) or "/" in self._prefix:
                raise ValueError(f"For 'ModelCheckpoint', the callable 'prefix' must return a str without '/', "
                                 f"got {self._prefix!r}")
        if self._directory_func:
            self._directory = os.fspath(self._directory_func(cb_params))
            os.makedirs(self._directory, exist_ok=True)
        if not self._graph_saved:
            graph_file = os.path.join(self._directory, self._prefix + "-graph.meta")
            _write_graph(cb_params.train_network, _batch(cb_params), graph_file)
            self._graph_saved = True
        self._save_ckpt(cb_params)

    def end(self, run_context):
        self._save_ckpt(run_context.original_args(), force_to_save=True)
        self._wait()

    def _wait(self):
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def _remove(self, paths):
        for path in paths:
            self._manager.remove_ckpoint_file(path)

    def _check_save_ckpt(self, cb_params, force_to_save):
        steps, seconds = self._config.save_checkpoint_steps, self._config.save_checkpoint_seconds
        if steps and steps > 0:
            return cb_params.cur_step_num >= self._last_triggered_step + steps or force_to_save
        if seconds and seconds > 0:
            now = _time()
            if now - self._last_time > seconds or force_to_save:
                self._last_time = now
                return True
        return False

    def _save_ckpt(self, cb_params, force_to_save=False):
        if cb_params.cur_step_num == self._last_triggered_step:
            return
        if not self._check_save_ckpt(cb_params, force_to_save):
            return
        self._wait()
        fmt = self._config.format
        step_in_epoch = int((cb_params.cur_step_num - 1) % cb_params.batch_num + 1)
        if self._prefix_func:
            name = f"{self._prefix}.{fmt}"
        else:
            name = f"{self._prefix}-{cb_params.cur_epoch_num}_{step_in_epoch}.{fmt}"
        path = os.path.join(self._directory, name)
        # rotation after commit: the old files go only once the new one is renamed into place,
        # so a crash at any moment leaves at least the newest committed checkpoint
        self._manager.update_ckpoint_filelist(self._directory, self._prefix)
        now = _time()
        victims = [f for f in self._manager.rotation(
            self._config.keep_checkpoint_max, self._config.keep_checkpoint_per_n_minutes,
            now - self._last_time_for_keep, now) if f != path]
        self._last_time_for_keep = _time()
        self._last_triggered_step = cb_params.cur_step_num
        self._append_dict_content(cb_params.cur_epoch_num, cb_params.cur_step_num)
        network = self._config.saved_network if self._config.saved_network is not None else cb_params.train_network
        self._manager.record(path)
        handle = self._save(network, path)
        if handle is None:
            self._remove(victims)
        else:      # removed by the writer once the new file is committed
            handle.then(lambda: self._remove(victims))
            self._pending = handle
        self._latest_ckpt_file_name = path
        cb_params["latest_ckpt_file"] = path
        cb_params["last_save_ckpt_step"] = cb_params.cur_step_num

    def _append_dict_content(self, epoch_num, step_num):
        if "epoch_num" in self._append_dict:
            self._append_dict["epoch_num"] = self._append_epoch_num + epoch_num
        if "step_num" in self._append_dict:
            self._append_dict["step_num"] = self._append_step_num + step_num

    def _save(self, network, path, async_save=None):
        cfg = self._config
        if cfg.remove_redundancy:
            # MindSpore de-duplicates across data-parallel ranks; a stand-alone run refuses, as msjax does
            raise TypeError("The deduplication feature for saving checkpoint can only be used in parallel "
                            "scenarios, but got 'stand_alone'.")
        return _save_checkpoint(network, path, integrated_save=cfg.integrated_save,
                                async_save=cfg.async_save if async_save is None else async_save,
                                append_dict=dict(self._append_dict) or None, enc_key=cfg.enc_key,
                                enc_mode=cfg.enc_mode, crc_check=cfg.crc_check, format=cfg.format,
                                remove_redundancy=cfg.remove_redundancy)

    def _exception_save(self, train_network, epoch_num, step_num):
        """Save ``<prefix>-<epoch>_<step>_breakpoint.ckpt`` after training raised (``exception_save``)."""
        self._wait()
        prefix = _chg_ckpt_file_name_if_same_exist(self._directory, self._exception_prefix, True)
        path = os.path.join(self._directory, f"{prefix}-{epoch_num}_{step_num}_breakpoint.ckpt")
        self._append_dict_content(epoch_num, step_num)
        handle = self._save(train_network, path, async_save=False)
        if hasattr(handle, "result"):
            handle.result()
        return path
