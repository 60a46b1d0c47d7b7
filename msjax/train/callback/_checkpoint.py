"""``ModelCheckpoint``: MindSpore's checkpoint callback (file names, save and keep policies, graph.meta).

Files are ``<prefix>-<epoch>_<step in epoch>.ckpt`` (``.safetensors``, or an ``.orbax`` directory
with msjax's ``CheckpointConfig(format="orbax")``); if files of ``prefix`` already exist in the
directory the prefix becomes ``<prefix>_<N>``; ``<prefix>-graph.meta`` is written once, at the first
step. The policies are ``CheckpointConfig``'s (``_checkpoint_config``); the files and the keep rule
are ``_checkpoint_files``'. Under ``jax.distributed`` rank 0 alone writes .ckpt / .safetensors
files (the gathered, replicated parameters) and graph.meta; every rank writes its shards of an
orbax checkpoint. Time comes from the module-level ``_time`` (tests swap in a fake clock).

>>> config = CheckpointConfig(save_checkpoint_steps=2, keep_checkpoint_max=3)
>>> model.train(2, ds, callbacks=[ModelCheckpoint(prefix="lenet", directory="ckpt", config=config)])
"""
from __future__ import annotations

import os
import time
import warnings

import jax

from msjax._lazy import exporters
from msjax.checkpoint import orbax_format, save_checkpoint
from msjax.common import parallel
from msjax.common.atomic import clean_orphans
from msjax.nn.cell import Cell, last_call_inputs
from msjax.train.callback._callback import Callback
from msjax.train.callback._checkpoint_config import CheckpointConfig
from msjax.train.callback._checkpoint_files import (
    CheckpointManager,
    _CheckpointManager,
    _chg_ckpt_file_name_if_same_exist,
)

__all__ = ["CheckpointConfig", "CheckpointManager", "ModelCheckpoint", "_chg_ckpt_file_name_if_same_exist"]

#: the clock every policy reads; tests replace it (``monkeypatch.setattr(_checkpoint, "_time", fake)``)
_time = time.time


def _now():
    return _time()


def _write_graph(network, example_inputs, path):
    """Write ``<prefix>-graph.meta``; report whether it did.

    The graph comes from ``example_inputs`` (the batch, in ``Model.train``), else from the
    network's last compiled call (``last_call_inputs``: its last input signature). As in
    MindSpore, which writes the file only when the network has a compiled graph, a network never
    called in GRAPH_MODE gets none, and graph.meta never fails a save: an error writing it is a
    warning, and the checkpoints are still written.
    """
    try:
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
        self._manager = _CheckpointManager(config.format, clock=_now)
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
        if not self._graph_saved and self._writes():
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

    def _writes(self):
        """Whether this process writes: every process writes its shards of an orbax checkpoint;
        a .ckpt / .safetensors file of the gathered parameters is written once, by rank 0."""
        return self._config.format == "orbax" or jax.process_index() == 0

    def _save_ckpt(self, cb_params, force_to_save=False):
        if cb_params.cur_step_num == self._last_triggered_step:
            return
        if not self._check_save_ckpt(cb_params, force_to_save):
            return
        if not self._writes():
            self._last_triggered_step = cb_params.cur_step_num
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
        if cfg.format == "orbax":
            return orbax_format.save_orbax(network, path, async_save=bool(cfg.async_save if async_save is None
                                                                           else async_save),
                                           force=True, append_dict=dict(self._append_dict) or None)
        if cfg.remove_redundancy and parallel.get_auto_parallel_context("parallel_mode") != "data_parallel":
            # MindSpore de-duplicates across data-parallel ranks; a stand-alone run refuses, as msjax does.
            # Under data_parallel rank 0's one file already holds each parameter once.
            raise TypeError("The deduplication feature for saving checkpoint can only be used in parallel "
                            "scenarios, but got 'stand_alone'.")
        return save_checkpoint(network, path, integrated_save=cfg.integrated_save,
                                async_save=cfg.async_save if async_save is None else async_save,
                                append_dict=dict(self._append_dict) or None, enc_key=cfg.enc_key,
                                enc_mode=cfg.enc_mode, crc_check=cfg.crc_check, format=cfg.format,
                                remove_redundancy=cfg.remove_redundancy)

    def _exception_save(self, train_network, epoch_num, step_num):
        """Save ``<prefix>-<epoch>_<step>_breakpoint.ckpt`` after training raised (``exception_save``)."""
        self._wait()
        if not self._writes():
            return None
        prefix = _chg_ckpt_file_name_if_same_exist(self._directory, self._exception_prefix, True)
        path = os.path.join(self._directory, f"{prefix}-{epoch_num}_{step_num}_breakpoint.ckpt")
        self._append_dict_content(epoch_num, step_num)
        handle = self._save(train_network, path, async_save=False)
        if hasattr(handle, "result"):
            handle.result()
        return path
