"""Atomic saves and async handles (the pytree-path <-> dotted-name layer: test_names.py)."""
import os
import subprocess
import sys
import textwrap

import jax.numpy as jnp
import numpy as np
import pytest

import msjax
from msjax.checkpoint import codec
from msjax.errors import CheckpointError, CheckpointWriteError


def _save(path, value, **kwargs):
    return msjax.save_checkpoint({"w": np.full(4, value, np.float32)}, str(path), **kwargs)


def _load_w(path):
    return float(msjax.load_checkpoint(str(path))["w"].asnumpy()[0])


def test_failed_save_leaves_previous_file_and_no_temporaries(tmp_path, monkeypatch):
    path = tmp_path / "m.ckpt"
    _save(path, 1.0)

    def broken(f, named, **kwargs):
        f.write(b"\x0a\x05partial")
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(codec, "write_records", broken)
    with pytest.raises(CheckpointWriteError, match="m.ckpt: save failed: no space left") as info:
        _save(path, 2.0)
    assert isinstance(info.value, OSError) and info.value.errno == 28
    assert _load_w(path) == 1.0
    assert os.listdir(tmp_path) == ["m.ckpt"]


def test_killed_process_mid_save_leaves_previous_file(tmp_path):
    path = tmp_path / "m.ckpt"
    script = textwrap.dedent(f"""
        import sys, time, numpy as np, msjax
        from msjax.checkpoint import codec
        msjax.save_checkpoint({{"w": np.full(4, 1.0, np.float32)}}, {str(path)!r})
        real = codec.write_records
        def slow(f, named, **kw):
            f.write(b"\\x0a\\x05partial")
            f.flush()
            print("writing", flush=True)
            time.sleep(600)
        codec.write_records = slow
        msjax.save_checkpoint({{"w": np.full(4, 2.0, np.float32)}}, {str(path)!r})
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
    finally:
        proc.kill()
        proc.wait()
    assert _load_w(path) == 1.0


def test_fsync_can_be_turned_off(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append(fd))
    _save(tmp_path / "a.ckpt", 1.0, fsync=False)
    assert calls == []
    _save(tmp_path / "a.ckpt", 1.0)
    assert calls            # file (and directory) synced by default


@pytest.mark.parametrize("mode", [True, "thread", "process"])
def test_async_save_returns_a_handle(tmp_path, mode):
    path = tmp_path / "a.ckpt"
    handle = _save(path, 3.0, async_save=mode)
    assert handle.result() is None and handle.done()
    assert _load_w(path) == 3.0


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_async_failure_is_reraised_by_result(tmp_path, mode):
    bad = tmp_path / "missing_dir" / "a.ckpt"
    handle = _save(bad, 1.0, async_save=mode)
    with pytest.raises(OSError):
        handle.result()


def test_async_failure_is_raised_by_wait_and_by_next_save(tmp_path):
    bad = tmp_path / "missing_dir" / "a.ckpt"
    _save(bad, 1.0, async_save=True)
    with pytest.raises(OSError):
        msjax.wait_async_save()
    _save(bad, 1.0, async_save=True)
    with pytest.raises(OSError):
        _save(bad, 1.0)                       # the next save to that file raises the earlier failure
    msjax.wait_async_save()                   # nothing left pending


@pytest.mark.parametrize("mode", [True, "process"])
def test_async_snapshot_is_taken_before_returning(tmp_path, mode):
    array = np.zeros(1000, np.float32)
    jax_value = jnp.ones(10)
    handle = msjax.save_checkpoint({"np": array, "jax": jax_value}, str(tmp_path / "s.ckpt"), async_save=mode)
    array[:] = 7.0                            # the caller keeps training
    handle.result()
    loaded = msjax.load_checkpoint(str(tmp_path / "s.ckpt"))
    assert loaded["np"].asnumpy().max() == 0.0 and loaded["jax"].asnumpy().sum() == 10


def test_interpreter_exit_waits_for_async_saves(tmp_path):
    ok, bad = tmp_path / "ok.ckpt", tmp_path / "no_dir" / "bad.ckpt"
    script = (f"import numpy as np, msjax\n"
              f"msjax.save_checkpoint({{'w': np.ones(1 << 20, np.float32)}}, {str(ok)!r}, async_save=True)\n"
              f"msjax.save_checkpoint({{'w': np.ones(4, np.float32)}}, {str(bad)!r}, async_save=True)\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    assert msjax.load_checkpoint(str(ok))["w"].shape == (1 << 20,)
    assert "async save of" in proc.stderr and "bad.ckpt failed" in proc.stderr


def test_bad_save_arguments(tmp_path):
    path = str(tmp_path / "a.ckpt")
    with pytest.raises(ValueError):
        _save(path, 1.0, async_save="fork")
    with pytest.raises(ValueError):
        _save(path, 1.0, enc_key=b"0123456789abcdef", crc_check=True)
    with pytest.raises(ValueError):
        _save(str(tmp_path / "a.safetensors"), 1.0, format="safetensors", enc_key=b"0123456789abcdef")
    with pytest.raises(CheckpointError):
        _save(path, 1.0, enc_key=b"short")
    with pytest.raises(ValueError):
        _save(path, 1.0, format="pickle")
    assert not os.path.exists(path)


def test_convert_between_ckpt_and_safetensors(fixtures_dir, tmp_path):
    msjax.ckpt_to_safetensors(str(fixtures_dir / "lenet5.ckpt"), save_path=str(tmp_path),
                              name_map={"fc3.bias": "head.bias"})
    st = msjax.load_checkpoint(str(tmp_path / "lenet5.safetensors"), format="safetensors")
    assert "head.bias" in st and "fc3.bias" not in st
    msjax.safetensors_to_ckpt(str(fixtures_dir / "lenet5.safetensors"), save_path=str(tmp_path))
    back = msjax.load_checkpoint(str(tmp_path / "lenet5.ckpt"))
    assert sorted(back) == sorted(msjax.load_checkpoint(str(fixtures_dir / "lenet5.ckpt")))


def test_checkpoint_error_carries_the_file():
    err = CheckpointError("bad", file="x.ckpt")
    assert err.file == "x.ckpt" and "x.ckpt" in str(err) and isinstance(err, ValueError)
