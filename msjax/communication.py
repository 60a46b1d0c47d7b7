"""``msjax.communication``: MindSpore's ``init`` / ``get_rank`` / ``get_group_size`` / ``release``
over JAX's own distributed runtime (``jax.distributed``).

A rank is a JAX *process* (which may drive several devices): ``get_rank()`` is
``jax.process_index()`` and ``get_group_size()`` is ``jax.process_count()``, the numbers a
MindSpore script passes to its dataset as ``shard_id`` / ``num_shards``.

``init()`` finds the cluster in the environment, MindSpore's ``msrun`` names first, then JAX's:

======================  ==========================  =================================
what                    MindSpore (msrun)           JAX
======================  ==========================  =================================
coordinator host:port   ``MS_SCHED_HOST``,          ``JAX_COORDINATOR_ADDRESS``
                        ``MS_SCHED_PORT``
process count           ``MS_WORKER_NUM``           ``JAX_NUM_PROCESSES``
this process's rank     ``MS_NODE_ID``              ``JAX_PROCESS_ID``
======================  ==========================  =================================

Rank 0 hosts the coordinator (no separate scheduler process as msrun starts). On CPU the
collectives go through gloo (``jax_cpu_collectives_implementation="gloo"``), so ``init()`` must
run before the first JAX computation, as MindSpore asks on Ascend.

>>> # each of two processes, MS_SCHED_HOST=127.0.0.1 MS_SCHED_PORT=8118 MS_WORKER_NUM=2 MS_NODE_ID=<0|1>
>>> from msjax.communication import init, get_rank, get_group_size
>>> init()                                  # doctest: +SKIP
>>> get_rank(), get_group_size()            # doctest: +SKIP
(0, 2)
"""
from __future__ import annotations

import os

import jax

__all__ = ["init", "release", "get_rank", "get_group_size", "HCCL_WORLD_COMM_GROUP", "NCCL_WORLD_COMM_GROUP",
           "MCCL_WORLD_COMM_GROUP"]

HCCL_WORLD_COMM_GROUP = "hccl_world_group"
NCCL_WORLD_COMM_GROUP = "nccl_world_group"
MCCL_WORLD_COMM_GROUP = "mccl_world_group"
_WORLD = (HCCL_WORLD_COMM_GROUP, NCCL_WORLD_COMM_GROUP, MCCL_WORLD_COMM_GROUP)
_BACKENDS = ("hccl", "nccl", "mccl")
_state = {"inited": False}


def _cluster_from_env():
    """(coordinator address, process count, process id) from msrun's or JAX's variables; None
    for each that is not set."""
    env = os.environ
    address = None
    if env.get("MS_SCHED_HOST") and env.get("MS_SCHED_PORT"):
        address = f"{env['MS_SCHED_HOST']}:{env['MS_SCHED_PORT']}"
    address = address or env.get("JAX_COORDINATOR_ADDRESS")
    count = env.get("MS_WORKER_NUM") or env.get("JAX_NUM_PROCESSES")
    rank = env.get("MS_NODE_ID") or env.get("JAX_PROCESS_ID")
    try:
        return address, None if count is None else int(count), None if rank is None else int(rank)
    except ValueError as error:
        raise RuntimeError(f"init: MS_WORKER_NUM / MS_NODE_ID (or JAX_NUM_PROCESSES / JAX_PROCESS_ID) must be "
                           f"integers, got {count!r} / {rank!r}") from error


def init(backend_name=None):
    """Join the cluster the environment describes (see the module's table) with
    ``jax.distributed.initialize``. ``backend_name`` is MindSpore's ("hccl", "nccl", "mccl");
    JAX picks the collectives for its platform, so it is only checked. Without any cluster
    variables ``init()`` starts one process alone (rank 0 of 1), as a single-card run."""
    if backend_name is not None and not isinstance(backend_name, str):
        raise TypeError(f"For 'init', the argument 'backend_name' must be a string, but got the type : "
                        f"{type(backend_name)}")
    if backend_name is not None and backend_name not in _BACKENDS:
        raise RuntimeError(f"For 'init', the argument 'backend_name' must be one of 'hccl', 'nccl' and 'mccl', "
                           f"but got 'backend_name' : {backend_name}")
    if _state["inited"]:
        return
    address, count, rank = _cluster_from_env()
    if address is None and count in (None, 1):
        _state["inited"] = True       # one process: nothing to join
        return
    missing = [name for name, value in (("MS_SCHED_HOST/MS_SCHED_PORT", address), ("MS_WORKER_NUM", count),
                                        ("MS_NODE_ID", rank)) if value is None]
    if missing:
        raise RuntimeError(f"init: a multi-process run needs {', '.join(missing)} in the environment (or "
                           f"JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID)")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=address, num_processes=count, process_id=rank)
    _state["inited"] = True


def release():
    """Leave the cluster (``jax.distributed.shutdown``)."""
    if _state["inited"] and jax.process_count() > 1:
        jax.distributed.shutdown()
    _state["inited"] = False


def _check_group(owner, group):
    if not isinstance(group, str):
        raise TypeError(f"For '{owner}', the argument 'group' must be type of string, but got 'group' type : "
                        f"{type(group)}.")
    if group not in _WORLD:
        raise ValueError(f"{owner}: msjax has only the world group ({', '.join(_WORLD)}), got {group!r}")


def get_rank(group=HCCL_WORLD_COMM_GROUP):
    """This process's rank in the world group: ``jax.process_index()``."""
    _check_group("get_rank", group)
    return jax.process_index()


def get_group_size(group=HCCL_WORLD_COMM_GROUP):
    """The number of processes in the world group: ``jax.process_count()``."""
    _check_group("get_group_size", group)
    return jax.process_count()
