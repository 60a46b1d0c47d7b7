"""Child process of test_disk_full.py: every save mode and export format against a full disk.

    python disk_full_child.py DIR (rlimit | tmpfs | readonly) OUT.json

``DIR`` is an empty directory: a tmpfs mounted by the parent (``tmpfs``; ``readonly`` as root,
remounted read-only) or any directory (``readonly`` as another user: chmod 555; ``rlimit``: RLIMIT_FSIZE with SIGXFSZ ignored, so writes past the limit fail with
EFBIG). For each case the child first writes the "previous" file (small), then squeezes the disk
to half of what the new, bigger file needs and tries to replace it. It records what was raised
and whether the previous file still loads with its old content; the parent asserts.
"""
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import traceback

import numpy as np

import msjax
from msjax import nn
from msjax.checkpoint.orbax_format import load_orbax, save_orbax
from msjax.common.atomic import is_temp_name

BIG = {"w": np.arange(256 * 1024, dtype=np.float32)}          # 1 MiB
SMALL = {"w": np.arange(16, dtype=np.float32)}
KEY = b"0123456789abcdef"


def _ckpt(**kw):
    suffix = "safetensors" if kw.get("format") == "safetensors" else "ckpt"
    load_kw = {"format": "safetensors"} if suffix == "safetensors" else {}
    if "enc_key" in kw:
        load_kw.update(dec_key=kw["enc_key"], dec_mode=kw.get("enc_mode", "AES-GCM"))

    def save(path, data):
        handle = msjax.save_checkpoint(data, path, **kw)
        if handle is not None:
            handle.result()

    def load(path):
        return msjax.load_checkpoint(path, **load_kw)["w"].asnumpy()
    return suffix, save, load


class _Dense(nn.Cell):
    def __init__(self, n):
        super().__init__()
        self.fc = nn.Dense(n, n)

    def construct(self, x):
        return self.fc(x)


def _export(fmt):
    suffix = fmt.lower()

    def save(path, data):
        n = 512 if data is BIG else 4
        msjax.export(_Dense(n), msjax.Tensor(np.ones((1, n), np.float32)),
                     file_name=path, file_format=fmt)

    def load(path):
        with open(path, "rb") as f:
            return f.read()
    return suffix, save, load


def _graph_meta():
    from msjax_exporters.graph_meta import write_graph_meta

    def save(path, data):
        n = 512 if data is BIG else 4
        write_graph_meta(_Dense(n), (msjax.Tensor(np.ones((1, n), np.float32)),), path)

    def load(path):
        from msjax_exporters.graph_meta import read_graph_meta
        return read_graph_meta(path).SerializeToString()
    return "meta", save, load


def _orbax():
    def save(path, data):
        save_orbax(data, path, force=True)

    def load(path):
        return load_orbax(path)["w"].asnumpy()
    return "orbax", save, load


CASES = {
    "sync": lambda: _ckpt(),
    "async_true": lambda: _ckpt(async_save=True),
    "thread": lambda: _ckpt(async_save="thread"),
    "process": lambda: _ckpt(async_save="process"),
    "crc": lambda: _ckpt(crc_check=True),
    "aes_gcm": lambda: _ckpt(enc_key=KEY),
    "aes_cbc": lambda: _ckpt(enc_key=KEY, enc_mode="AES-CBC"),
    "sm4_cbc": lambda: _ckpt(enc_key=KEY, enc_mode="SM4-CBC"),
    "safetensors": lambda: _ckpt(format="safetensors"),
    "orbax": _orbax,
    "MINDIR": lambda: _export("MINDIR"),
    "ONNX": lambda: _export("ONNX"),
    "AIR": lambda: _export("AIR"),
    "graph_meta": _graph_meta,
}


def _size(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)
    return os.path.getsize(path)


class Squeeze:
    """Leave ``free`` bytes writable: by RLIMIT_FSIZE, or by a filler file on the tmpfs."""

    def __init__(self, directory, how):
        self.how, self.filler = how, os.path.join(directory, "filler")

    def __call__(self, free):
        if self.how == "rlimit":
            resource.setrlimit(resource.RLIMIT_FSIZE, (free, resource.RLIM_INFINITY))
            return
        if os.path.exists(self.filler):
            os.unlink(self.filler)
        st = os.statvfs(os.path.dirname(self.filler))
        avail = st.f_bavail * st.f_frsize
        with open(self.filler, "wb") as f:
            f.truncate(0)
            f.write(b"\0" * max(avail - free, 0))

    def release(self):
        if self.how == "rlimit":
            resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        elif os.path.exists(self.filler):
            os.unlink(self.filler)


def _set_readonly(directory, readonly):
    """Root ignores permission bits: remount the parent's tmpfs; anyone else: chmod."""
    if os.geteuid() == 0:
        subprocess.run(["mount", "-o", "remount," + ("ro" if readonly else "rw"), directory],
                       check=True)
    else:
        os.chmod(directory, 0o555 if readonly else 0o755)


def _remove(path):
    if os.path.isdir(path):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _leftovers(directory):
    return sorted(n for n in os.listdir(directory) if is_temp_name(n) or n.endswith(".old"))


def run_case(name, directory, squeeze, readonly):
    suffix, save, load = CASES[name]()
    path = os.path.join(directory, f"{name}.{suffix}")
    scratch = os.path.join(directory, f"measure-{name}.{suffix}")
    result = {"case": name, "path": path}
    save(path, SMALL)
    before = load(path)
    if readonly:
        _set_readonly(directory, True)
        need = 1 << 20
    else:
        save(scratch, BIG)                    # how big is the new file?
        need = _size(scratch)
        _remove(scratch)
        squeeze(need // 2)
    try:
        save(path, BIG)
        result["raised"] = None
    except Exception as err:  # noqa: BLE001 - reported to the parent
        result["raised"] = type(err).__name__
        result["classes"] = [c.__name__ for c in type(err).__mro__]
        result["message"] = str(err)
        result["errno"] = getattr(err, "errno", None)
    finally:
        if readonly:
            _set_readonly(directory, False)
        else:
            squeeze.release()
    try:
        after = load(path)
        result["previous_intact"] = bool(np.array_equal(np.asarray(after), np.asarray(before))) \
            if not isinstance(after, bytes) else after == before
    except Exception as err:  # noqa: BLE001
        result["previous_intact"] = False
        result["load_error"] = f"{type(err).__name__}: {err}"
    result["need"] = need
    result["leftovers"] = _leftovers(directory)
    return result


def main():
    directory, how, out = sys.argv[1], sys.argv[2], sys.argv[3]
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    squeeze = Squeeze(directory, how)
    results = []
    for name in CASES:
        try:
            results.append(run_case(name, directory, squeeze, how == "readonly"))
        except Exception:  # noqa: BLE001 - a broken scenario is reported, not hidden
            results.append({"case": name, "scenario_error": traceback.format_exc()})
    with open(out, "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
