"""The atomic writer: short writes are continued or raise, and dead temporaries are told from live."""
import errno
import fcntl
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import msjax
from msjax.common import atomic
from msjax.errors import CheckpointWriteError, ExportWriteError


def _short_writes(monkeypatch, limit=None, chunk=3):
    """os.write writes at most ``chunk`` bytes per call; past ``limit`` bytes it fails (ENOSPC)."""
    real, written = os.write, [0]

    def write(fd, data):
        if limit is not None and written[0] >= limit:
            raise OSError(errno.ENOSPC, "No space left on device")
        n = real(fd, bytes(memoryview(data)[:chunk]))
        written[0] += n
        return n
    monkeypatch.setattr(os, "write", write)


def test_short_writes_are_continued(tmp_path, monkeypatch):
    path = tmp_path / "a.ckpt"
    _short_writes(monkeypatch)
    msjax.save_checkpoint({"w": np.arange(50, dtype=np.float32)}, str(path))
    monkeypatch.undo()
    np.testing.assert_array_equal(msjax.load_checkpoint(str(path))["w"].asnumpy(), np.arange(50))


@pytest.mark.parametrize("kwargs", [{}, {"enc_key": b"k" * 16}, {"async_save": "thread"}])
def test_a_short_write_then_a_full_disk_raises_and_keeps_the_old_file(tmp_path, monkeypatch, kwargs):
    path = tmp_path / "a.ckpt"
    msjax.save_checkpoint({"w": np.zeros(4, np.float32)}, str(path), **kwargs)
    if kwargs.get("async_save"):
        msjax.wait_async_save()
    before = path.read_bytes()
    _short_writes(monkeypatch, limit=100, chunk=64)
    with pytest.raises(CheckpointWriteError, match=r"a\.ckpt: save failed: no space left") as info:
        handle = msjax.save_checkpoint({"w": np.ones(1000, np.float32)}, str(path), **kwargs)
        if handle is not None:
            handle.result()
    assert info.value.errno == errno.ENOSPC and isinstance(info.value, OSError)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["a.ckpt"]


def test_export_write_error(tmp_path):
    with pytest.raises(ExportWriteError, match="export failed: no space left") as info:
        atomic.atomic_write(tmp_path / "m.onnx", lambda f: (_ for _ in ()).throw(OSError(errno.ENOSPC, "x")),
                            error=ExportWriteError, what="export")
    assert info.value.file == str(tmp_path / "m.onnx")
    assert os.listdir(tmp_path) == []


def _dead_temp(tmp_path, target="old.ckpt"):
    """A temporary file left by a SIGKILLed writer (a real process that is gone)."""
    script = textwrap.dedent(f"""
        import os, signal
        from msjax.common import atomic
        tmp, fd = atomic._create_locked({str(tmp_path / target)!r}, atomic._new_file)
        os.write(fd, b"partial")
        print(tmp, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    tmp = out.stdout.strip()
    assert os.path.exists(tmp) and atomic.is_temp_name(os.path.basename(tmp)), out.stderr
    return tmp


def test_dead_temporaries_are_removed_by_the_next_save(tmp_path):
    dead = _dead_temp(tmp_path)
    msjax.save_checkpoint({"w": np.zeros(2, np.float32)}, str(tmp_path / "new.ckpt"))
    assert not os.path.exists(dead)
    assert os.listdir(tmp_path) == ["new.ckpt"]


def test_a_live_writers_temporary_is_kept_whatever_its_pid(tmp_path):
    # a temporary held by this very process (another thread's save in flight) is live
    tmp, fd = atomic._create_locked(str(tmp_path / "busy.ckpt"), atomic._new_file)
    try:
        assert atomic.clean_orphans(tmp_path) == []
        assert os.path.exists(tmp)
    finally:
        os.close(fd)
    assert atomic.clean_orphans(tmp_path) == [tmp]       # the lock died with its holder


def test_a_reused_pid_does_not_keep_an_orphan_alive(tmp_path):
    # a dead writer's name may carry a pid that is alive now (here: ours); the lock decides
    name = f".x.ckpt.msjax-{os.getpid()}-0badf00d.tmp"
    (tmp_path / name).write_bytes(b"partial")
    assert atomic.clean_orphans(tmp_path) == [str(tmp_path / name)]


def test_cleaning_ignores_other_files(tmp_path):
    for name in ("a.ckpt", ".hidden.tmp", ".a.ckpt.msjax-12-zzzz.tmp", "b.tmp"):
        (tmp_path / name).write_bytes(b"x")
    assert atomic.clean_orphans(tmp_path) == []
    assert len(os.listdir(tmp_path)) == 4


def test_a_cleaner_that_wins_the_race_makes_the_writer_take_a_new_name(tmp_path, monkeypatch):
    made = []
    real = atomic._new_file

    def new_file(tmp):
        fd = real(tmp)
        if not made:          # a cleaner removes the first one before its writer locks it
            os.unlink(tmp)
        made.append(tmp)
        return fd
    monkeypatch.setattr(atomic, "_new_file", new_file)
    atomic.atomic_write(tmp_path / "a.bin", lambda f: f.write(b"hello"))
    assert len(made) == 2 and (tmp_path / "a.bin").read_bytes() == b"hello"
    assert os.listdir(tmp_path) == ["a.bin"]


def test_locked_temp_dir_is_live_until_closed(tmp_path):
    staging = atomic.LockedTempDir(tmp_path / "ckpt")
    (open(os.path.join(staging.path, "x"), "w")).close()
    assert atomic.clean_orphans(tmp_path) == []
    staging.close()
    assert os.listdir(tmp_path) == []


def test_exchange_swaps_directories(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "new").write_text("1")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "old").write_text("0")
    atomic.exchange(str(tmp_path / "a"), str(tmp_path / "b"))
    assert os.listdir(tmp_path / "b") == ["new"] and os.listdir(tmp_path / "a") == ["old"]


def test_flock_is_what_tells_live_from_dead(tmp_path):
    # the contract clean_orphans relies on: a second open file description cannot take the lock
    tmp, fd = atomic._create_locked(str(tmp_path / "c.ckpt"), atomic._new_file)
    other = os.open(tmp, os.O_RDONLY)
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(other)
        os.close(fd)
