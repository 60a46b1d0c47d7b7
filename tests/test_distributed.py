"""Multi-process data parallel: two local processes joined by ``msjax.communication.init()``
(``jax.distributed`` over loopback, gloo collectives on CPU), two devices each.

Each rank feeds its half of every batch (MindSpore's ``shard_id=get_rank()``); together they must
train as one process on the whole batch. The .ckpt is written once, by rank 0; the orbax
checkpoint by both ranks into one directory.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import test_parallel as single

ROOT = Path(__file__).resolve().parents[1]
RANKS = 2
TOL = single.TOL


# --------------------------------------------------------------------------- fast: the API without a cluster

@pytest.fixture
def cluster_env(monkeypatch):
    for name in ("MS_SCHED_HOST", "MS_SCHED_PORT", "MS_WORKER_NUM", "MS_NODE_ID", "JAX_COORDINATOR_ADDRESS",
                 "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"):
        monkeypatch.delenv(name, raising=False)
    from msjax import communication
    monkeypatch.setitem(communication._state, "inited", False)
    return monkeypatch


def test_one_process_is_rank_zero_of_one(cluster_env):
    from msjax import communication
    communication.init()
    assert (communication.get_rank(), communication.get_group_size()) == (0, 1)
    assert communication.get_rank(communication.MCCL_WORLD_COMM_GROUP) == 0
    communication.release()


@pytest.mark.parametrize("call, error, match", [
    (lambda c: c.init(1), TypeError, "must be a string"),
    (lambda c: c.init("gloo"), RuntimeError, "'hccl', 'nccl' and 'mccl'"),
    (lambda c: c.get_rank(7), TypeError, "must be type of string"),
    (lambda c: c.get_group_size("my_group"), ValueError, "only the world group"),
])
def test_bad_arguments_raise_as_mindspore(cluster_env, call, error, match):
    from msjax import communication
    with pytest.raises(error, match=match):
        call(communication)


def test_half_a_cluster_names_what_is_missing(cluster_env):
    from msjax import communication
    cluster_env.setenv("MS_WORKER_NUM", "2")
    with pytest.raises(RuntimeError, match="MS_SCHED_HOST/MS_SCHED_PORT, MS_NODE_ID"):
        communication.init()
    cluster_env.setenv("MS_NODE_ID", "one")
    with pytest.raises(RuntimeError, match="must be integers"):
        communication.init()


# --------------------------------------------------------------------------- slow: two processes

def _rank_worker(out, directory):
    """One rank: join the cluster, train 3 steps on this rank's half of each batch, save. Rank 1
    starts from other values, which ``parameter_broadcast=True`` replaces by rank 0's."""
    from msjax.communication import get_group_size, get_rank, init
    init()
    import jax

    from msjax.common import parallel
    from msjax.train import CheckpointConfig, ModelCheckpoint
    rank, size = get_rank(), get_group_size()
    parallel.set_auto_parallel_context(parallel_mode="data_parallel", gradients_mean=True, parameter_broadcast=True)
    rows = 16 // size
    batches = [(x[rank * rows:(rank + 1) * rows], y[rank * rows:(rank + 1) * rows])
               for x, y in single._batches(4, seed=2)]
    net = single._nets()["lenet"]()
    if rank:      # parameter_broadcast=True: rank 0's initial values win
        for p in net.trainable_params():
            p.set_data(p.asnumpy() + 1.0)
    model = single._model(net)
    saves = [ModelCheckpoint(prefix="mp", directory=directory, config=CheckpointConfig(save_checkpoint_steps=3)),
             ModelCheckpoint(prefix="mp", directory=directory,
                             config=CheckpointConfig(save_checkpoint_steps=3, format="orbax"))]
    seen = single._train(model, batches[:3], callbacks=saves)
    out.update(rank=rank, size=size, devices=len(jax.devices()), local=len(jax.local_devices()),
               losses=seen["losses"], shards=seen["batch_shards"], device_number=seen["device_number"],
               files=[s.latest_ckpt_file_name for s in saves],
               next_loss=single._train(model, batches[3:])["losses"][0], eval=model.eval(batches[:2]),
               predict=np.asarray(model.predict(batches[0][0])).tolist())


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _spawn_ranks(directory, timeout=600):
    port = _free_port()
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); import test_distributed as t; out = {}; "
            "t._rank_worker(out, sys.argv[2]); print('@@' + json.dumps(out, default=float))")
    procs = []
    for rank in range(RANKS):
        env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu",
                   PYTHONWARNINGS="ignore", MS_SCHED_HOST="127.0.0.1", MS_SCHED_PORT=str(port),
                   MS_WORKER_NUM=str(RANKS), MS_NODE_ID=str(rank))
        procs.append(subprocess.Popen([sys.executable, "-c", code, str(ROOT / "tests"), str(directory)], env=env,
                                      cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = []
    try:
        for proc in procs:
            stdout, stderr = proc.communicate(timeout=timeout)
            assert proc.returncode == 0, stderr[-6000:]
            results.append(json.loads(stdout.rsplit("@@", 1)[1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    return results


@pytest.mark.slow
def test_two_processes_train_as_one_and_save_once(tmp_path):
    from msjax.common import parallel
    ranks = _spawn_ranks(tmp_path)
    parallel.reset_auto_parallel_context()
    batches = single._batches(4, seed=2)
    model = single._model(single._nets()["lenet"]())
    one = single._train(model, batches[:3])
    expected = {p.name: np.asarray(p.get_value()) for p in model.train_network.get_parameters()}
    next_loss = single._train(model, batches[3:])["losses"][0]
    metrics, predicted = model.eval(batches[:2]), np.asarray(model.predict(batches[0][0]))
    for rank, got in enumerate(ranks):
        assert (got["rank"], got["size"], got["devices"], got["local"]) == (rank, 2, 4, 2)
        assert got["device_number"] == 4 and got["shards"] == [[4, 1, 32, 32]]
        np.testing.assert_allclose(got["losses"], one["losses"], **TOL)
        np.testing.assert_allclose(got["next_loss"], next_loss, **TOL)
        np.testing.assert_allclose(got["eval"]["loss"], metrics["loss"], **TOL)    # the global batch's
        assert got["eval"]["accuracy"] == metrics["accuracy"]
        np.testing.assert_allclose(got["predict"], predicted, **TOL)               # all 16 rows, gathered
    ckpt, orbax = ranks[0]["files"]
    assert ranks[1]["files"] == ["", orbax]          # rank 1 wrote no .ckpt, and shares the orbax directory
    assert sorted(os.listdir(tmp_path)) == ["mp-1_3.ckpt", "mp-1_3.orbax", "mp-graph.meta"]
    for path in (ckpt, orbax):
        loaded = single._load(path)
        assert list(loaded) == list(expected)
        for name, value in expected.items():
            np.testing.assert_allclose(np.asarray(loaded[name].get_value()), value, **TOL, err_msg=f"{path}: {name}")
