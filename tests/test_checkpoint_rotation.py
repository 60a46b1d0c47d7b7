"""Rotation after commit: ModelCheckpoint removes old files only once the new one is in place.

For each keep policy, sync and async: a save that fails (here: the disk is full) leaves every old
checkpoint, and a successful save removes the replaced file only after the rename.
"""
import errno
import os

import numpy as np
import pytest

import msjax
from msjax import nn
from msjax.common import atomic
from msjax.errors import CheckpointWriteError
from msjax.train import CheckpointConfig, LambdaCallback, Model, ModelCheckpoint
from msjax.train.callback import _checkpoint


def _data(n):
    rng = np.random.RandomState(0)
    return [(rng.randn(4, 3).astype(np.float32), rng.randn(4, 2).astype(np.float32)) for _ in range(n)]


def _ckpts(directory):
    return sorted(f for f in os.listdir(directory) if f.endswith(".ckpt"))


def _model():
    msjax.set_seed(0)
    net = nn.Dense(3, 2)
    return Model(net, nn.MSELoss(), nn.Momentum(net.trainable_params(), 0.1, 0.9))


POLICIES = {
    "keep_max_1": dict(keep_checkpoint_max=1),
    "keep_max_2": dict(keep_checkpoint_max=2),
    "per_n_minutes": dict(keep_checkpoint_max=0, keep_checkpoint_per_n_minutes=1),
}


def _disk_full_for(monkeypatch, name):
    """The save of ``name`` fails: the disk is full after a partial write (ENOSPC)."""
    real = atomic._write_all

    def write_all(fd, data):
        if f".{name}.msjax-" in os.readlink(f"/proc/self/fd/{fd}"):
            real(fd, bytes(memoryview(data).cast("B")[:3]))
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data)
    monkeypatch.setattr(atomic, "_write_all", write_all)


@pytest.mark.parametrize("async_save", [False, True, "process"])
@pytest.mark.parametrize("policy", POLICIES)
def test_a_failed_save_removes_nothing(tmp_path, monkeypatch, clock, policy, async_save):
    def tick(rc):
        clock.now += 20.0
    config = CheckpointConfig(save_checkpoint_steps=1, async_save=async_save, **POLICIES[policy])
    cb = ModelCheckpoint(prefix="net", directory=tmp_path, config=config)
    _disk_full_for(monkeypatch, "net-1_4.ckpt")
    with pytest.raises(CheckpointWriteError, match="no space left"):
        _model().train(1, _data(6), callbacks=[LambdaCallback(on_train_step_begin=tick), cb])
    monkeypatch.undo()
    before_failure = {"keep_max_1": ["net-1_3.ckpt"], "keep_max_2": ["net-1_2.ckpt", "net-1_3.ckpt"],
                      "per_n_minutes": ["net-1_1.ckpt", "net-1_3.ckpt"]}[policy]
    assert _ckpts(tmp_path) == before_failure
    for name in before_failure:      # each one whole
        assert "weight" in msjax.load_checkpoint(str(tmp_path / name))
    assert [n for n in os.listdir(tmp_path) if atomic.is_temp_name(n)] == []


@pytest.mark.parametrize("async_save", [False, True])
def test_the_old_file_goes_only_after_the_new_one_is_renamed(tmp_path, monkeypatch, async_save):
    seen = []
    real = os.replace

    def replace(src, dst):
        if str(dst).endswith(".ckpt"):
            seen.append((os.path.basename(dst), _ckpts(tmp_path)))
        real(src, dst)
    monkeypatch.setattr(os, "replace", replace)
    config = CheckpointConfig(save_checkpoint_steps=1, keep_checkpoint_max=1, async_save=async_save)
    _model().train(1, _data(3), callbacks=[ModelCheckpoint(prefix="net", directory=tmp_path, config=config)])
    # at every rename the previous checkpoint was still there
    assert seen == [("net-1_1.ckpt", []), ("net-1_2.ckpt", ["net-1_1.ckpt"]),
                    ("net-1_3.ckpt", ["net-1_2.ckpt"])]
    assert _ckpts(tmp_path) == ["net-1_3.ckpt"]


def test_model_checkpoint_start_up_cleans_dead_temporaries(tmp_path):
    dead = tmp_path / ".net-1_1.ckpt.msjax-1-deadbeef.tmp"
    dead.write_bytes(b"partial")
    ModelCheckpoint(prefix="net", directory=tmp_path)
    assert not dead.exists()


def test_checkpoint_manager_keeps_mindspores_immediate_methods(tmp_path):
    """MindSpore's own tests drive its private CheckpointManager directly: removal there is at once."""
    manager = _checkpoint.CheckpointManager()
    for name in ("t-1_1.ckpt", "t-2_1.ckpt", "t-3_1.ckpt"):
        (tmp_path / name).write_bytes(b"")
        os.utime(tmp_path / name, (1000 + len(manager._saved_at), 1000 + int(name[2])))
    manager.update_ckpoint_filelist(str(tmp_path), "t")
    assert manager.ckpoint_num == 3
    manager.remove_oldest_ckpoint_file()
    assert _ckpts(tmp_path) == ["t-2_1.ckpt", "t-3_1.ckpt"]
    manager.keep_one_ckpoint_per_minutes(1, 1010.0)
    assert _ckpts(tmp_path) == ["t-2_1.ckpt"]
