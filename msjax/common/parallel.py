"""MindSpore's auto-parallel context mapped onto a ``jax.sharding.Mesh``.

``set_auto_parallel_context(parallel_mode="data_parallel", device_num=N, gradients_mean=True)``
makes ``Model`` train data-parallel: a one-axis mesh ``("data",)`` over ``jax.devices()[:N]``
(every process's devices under ``jax.distributed``), each batch sharded on axis 0
(``NamedSharding(mesh, P("data"))``), parameters and optimizer state replicated; XLA's SPMD
partitioner inserts the gradient all-reduce.

How a batch maps: each *process* feeds its own batch (as each MindSpore rank reads its own shard
of the dataset) and that batch is split over the process's devices in the mesh. One process with
8 devices therefore trains on the dataset's batch as the global batch; two processes each give
half of it. The loss is the mean over the global batch and BatchNorm normalises with the global
batch's statistics (MindSpore's data parallel uses each device's local batch for BatchNorm).

Across processes every rank must start from the same values (seed them alike, as in MindSpore),
or set ``parameter_broadcast=True``: ``Model`` then copies rank 0's values to every rank first.

The modes msjax does not run (``semi_auto_parallel``, ``auto_parallel``, ``hybrid_parallel``)
raise :class:`ParallelModeError`; the other keys are stored and read back with MindSpore's
defaults, and those that would change training warn once that msjax ignores them.
"""
from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from msjax.common.warn_once import warn_ignored
from msjax.errors import MsjaxError

__all__ = ["ParallelMode", "ParallelModeError", "set_auto_parallel_context", "get_auto_parallel_context",
           "reset_auto_parallel_context", "data_parallel_mesh"]


class ParallelModeError(MsjaxError, ValueError):
    """A parallel mode or device count that msjax cannot run."""


class ParallelMode:
    """MindSpore's parallel mode names (``mindspore.ParallelMode``)."""

    STAND_ALONE = "stand_alone"
    DATA_PARALLEL = "data_parallel"
    HYBRID_PARALLEL = "hybrid_parallel"
    SEMI_AUTO_PARALLEL = "semi_auto_parallel"
    AUTO_PARALLEL = "auto_parallel"
    MODE_LIST = [STAND_ALONE, DATA_PARALLEL, HYBRID_PARALLEL, SEMI_AUTO_PARALLEL, AUTO_PARALLEL]


#: MindSpore 2.10's keys and defaults (``reset_auto_parallel_context``'s list)
_DEFAULTS = {
    "parallel_mode": "stand_alone", "device_num": 1, "global_rank": 0, "gradients_mean": False,
    "gradient_fp32_sync": True, "loss_repeated_mean": True, "search_mode": "recursive_programming",
    "auto_parallel_search_mode": "recursive_programming", "parameter_broadcast": False,
    "strategy_ckpt_load_file": "", "strategy_ckpt_save_file": "", "full_batch": False,
    "dataset_strategy": "data_parallel", "enable_parallel_optimizer": False, "force_fp32_communication": False,
    "enable_alltoall": False, "all_reduce_fusion_config": [], "pipeline_stages": 1,
    "pipeline_result_broadcast": False, "pipeline_config": {}, "parallel_optimizer_config": {},
    "comm_fusion": {}, "strategy_ckpt_config": {}, "group_ckpt_save_file": "", "auto_pipeline": False,
    "dump_local_norm": False, "dump_local_norm_path": "", "dump_device_local_norm": False,
}
_TYPES = {"device_num": int, "global_rank": int, "gradients_mean": bool, "gradient_fp32_sync": bool,
          "loss_repeated_mean": bool, "parameter_broadcast": bool, "full_batch": bool,
          "enable_parallel_optimizer": bool, "force_fp32_communication": bool, "enable_alltoall": bool,
          "pipeline_stages": int, "parallel_mode": str}
#: keys whose value changes nothing in msjax's data parallel (replicated, fp32 as the net is, ...)
_HARMLESS = {"parallel_mode", "device_num", "global_rank", "gradients_mean", "gradient_fp32_sync",
             "loss_repeated_mean", "parameter_broadcast", "search_mode", "auto_parallel_search_mode",
             "strategy_ckpt_save_file", "dataset_strategy", "all_reduce_fusion_config", "comm_fusion",
             "force_fp32_communication", "enable_alltoall", "group_ckpt_save_file"}
_RUNS = (ParallelMode.STAND_ALONE, ParallelMode.DATA_PARALLEL)
_state = dict(_DEFAULTS)
_given = set()          # keys set since the last reset (``device_num`` unset means every device)


def _problems(kwargs):
    """(TypeError messages, ValueError messages) for ``kwargs``, all of them."""
    bad_type, bad_value = [], []
    for key, value in kwargs.items():
        if key not in _DEFAULTS:
            bad_value.append(f"Set context keyword {key} is not recognized!")
            continue
        want = _TYPES.get(key)
        if want is not None and (type(value) is not want):
            bad_type.append(f"The parameter '{key}' must be {want}, but got {type(value)}")
        elif key == "parallel_mode" and value not in ParallelMode.MODE_LIST:
            bad_value.append("The context configuration parameter 'parallel_mode' only support 'stand_alone', "
                             "'data_parallel', 'hybrid_parallel', 'semi_auto_parallel' and 'auto_parallel', "
                             f"but got the value : {value}.")
        elif key in ("device_num", "pipeline_stages") and value <= 0:
            bad_value.append(f"The context configuration parameter '{key}' must be a positive integer, "
                             f"but got the value of {key} : {value}.")
        elif key == "global_rank" and not 0 <= value <= 4095:
            bad_value.append("The context configuration parameter 'global_rank' must be in [0, 4095], "
                             f"but got the value of global_rank : {value}.")
    return bad_type, bad_value


def set_auto_parallel_context(**kwargs):
    """Set MindSpore's auto-parallel keys (``parallel_mode``, ``device_num``, ``gradients_mean``, ...).

    Unknown keys and bad values raise as in MindSpore (ValueError / TypeError, every problem in one
    message); modes other than stand_alone and data_parallel raise :class:`ParallelModeError`.

    >>> set_auto_parallel_context(parallel_mode=ParallelMode.DATA_PARALLEL, gradients_mean=True)
    """
    bad_type, bad_value = _problems(kwargs)
    if bad_type or bad_value:
        raise (TypeError if bad_type else ValueError)("; ".join(bad_type + bad_value))
    mode = kwargs.get("parallel_mode")
    if mode is not None and mode not in _RUNS:
        raise ParallelModeError(f"set_auto_parallel_context: parallel_mode={mode!r} is not run by msjax (model "
                                f"parallelism with strategies); use 'data_parallel' or 'stand_alone'")
    for key, value in kwargs.items():
        if key not in _HARMLESS and value != _DEFAULTS[key]:
            warn_ignored("set_auto_parallel_context", f"{key}={value!r}", "msjax runs plain data parallel "
                         "(replicated parameters, batch sharded by XLA's SPMD partitioner)")
        _state[key] = value
        _given.add(key)


def get_auto_parallel_context(attr_key):
    """The value of one auto-parallel key (MindSpore's default when it was not set)."""
    if attr_key not in _DEFAULTS:
        raise ValueError(f"Get context keyword {attr_key} is not recognized!")
    return _state[attr_key]


def reset_auto_parallel_context():
    """Every key back to MindSpore's default (stand_alone, device_num 1, gradients_mean False, ...)."""
    _state.clear()
    _state.update(_DEFAULTS)
    _given.clear()


def data_parallel_mesh():
    """The ``("data",)`` mesh that the context asks for, or None when not in data_parallel mode.

    ``device_num`` picks ``jax.devices()[:device_num]``; left unset it means every device. Across
    processes the mesh must hold devices of every process, so there it must be all of them.
    """
    if _state["parallel_mode"] != ParallelMode.DATA_PARALLEL:
        return None
    devices = jax.devices()
    count = _state["device_num"] if "device_num" in _given else len(devices)
    if count > len(devices):
        raise ParallelModeError(f"data_parallel: device_num={count} but JAX sees {len(devices)} devices "
                                f"({devices[0].platform}); lower device_num, or on CPU start Python with "
                                f"XLA_FLAGS=--xla_force_host_platform_device_count={count}")
    chosen = devices[:count]
    if jax.process_count() > 1 and count != len(devices):
        raise ParallelModeError(f"data_parallel over {jax.process_count()} processes: device_num={count} "
                                f"must be every device ({len(devices)}); leave it unset")
    return Mesh(np.asarray(chosen), ("data",))


def replicated(mesh):
    """``NamedSharding(mesh, P())``: a full copy on every device of ``mesh``."""
    return NamedSharding(mesh, PartitionSpec())


def batch_sharding(mesh):
    """``NamedSharding(mesh, P("data"))``: axis 0 split over the mesh's devices."""
    return NamedSharding(mesh, PartitionSpec("data"))


def shard_batch(mesh, array, owner="Model"):
    """This process's batch ``array`` as a global array sharded on axis 0 over ``mesh``.

    Each process gives its own rows; the global batch is them in process order. A batch whose
    rows do not split evenly over this process's devices raises :class:`ParallelModeError`."""
    array = np.asarray(array) if not isinstance(array, jax.Array) else array
    local = sum(d.process_index == jax.process_index() for d in mesh.devices.flat)
    if array.ndim == 0 or array.shape[0] % local:
        rows = "a scalar" if array.ndim == 0 else f"{array.shape[0]} rows"
        raise ParallelModeError(f"{owner}: data_parallel splits each batch on axis 0 over this process's "
                                f"{local} devices, but a column has {rows} (shape {tuple(array.shape)}); "
                                f"make the batch size a multiple of {local}")
    sharding = batch_sharding(mesh)
    if jax.process_count() == 1:
        return jax.device_put(array, sharding)
    return jax.make_array_from_process_local_data(sharding, np.asarray(array))
