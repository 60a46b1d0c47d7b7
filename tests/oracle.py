"""Real MindSpore 2.10 as a test oracle, always in a subprocess.

``import mindspore`` switches protobuf to its pure-Python implementation for the whole process,
so msjax is never measured or tested in a process that imported MindSpore.

    out = run_mindspore('''
        net = LeNet5()                      # from fixtures/mindspore/ms_models.py
        outputs["y"] = net(ms.Tensor(inputs["x"])).asnumpy()
    ''', inputs={"x": x})
"""
from __future__ import annotations

import importlib.util
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest

#: files written by real MindSpore 2.10, committed with the tests (fixtures/mindspore/README.md)
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "mindspore"

# MindSpore 2.10.0 publishes CPU wheels for Linux x86-64/aarch64; elsewhere the oracle tests skip.
MINDSPORE_PLATFORM = sys.platform == "linux" and platform.machine() in ("x86_64", "aarch64")
HAVE_MINDSPORE = importlib.util.find_spec("mindspore") is not None

requires_mindspore = pytest.mark.skipif(
    not MINDSPORE_PLATFORM, reason="no MindSpore 2.10.0 wheel exists for this platform")

_PRELUDE = """
import os, sys
import numpy as np
sys.path.insert(0, {fixtures!r})
sys.dont_write_bytecode = True
import mindspore as ms
from mindspore import nn, ops, Tensor, Parameter
ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
FIXTURES = {fixtures!r}
_data = np.load({inputs!r}, allow_pickle=False)
inputs = {{k: _data[k] for k in _data.files}}
outputs = {{}}
"""

_POSTLUDE = """
np.savez({outputs!r}, **{{k: np.asarray(v) for k, v in outputs.items()}})
"""


def run_mindspore(code: str, inputs: dict | None = None, *, cwd=None, timeout: int = 900) -> dict:
    """Run ``code`` with real MindSpore in a fresh Python; return the arrays it put in ``outputs``.

    ``code`` sees ``ms``, ``nn``, ``ops``, ``Tensor``, ``Parameter``, ``np``, ``FIXTURES``,
    ``inputs`` (the arrays passed in) and the fixture modules (``from ms_models import LeNet5``).
    """
    if not MINDSPORE_PLATFORM:
        pytest.skip("no MindSpore 2.10.0 wheel exists for this platform")
    if not HAVE_MINDSPORE:
        pytest.fail("mindspore is not installed: install the test extras (pip install -e '.[test]')")
    with tempfile.TemporaryDirectory(prefix="ms_oracle_") as tmp:
        in_path, out_path = os.path.join(tmp, "in.npz"), os.path.join(tmp, "out.npz")
        np.savez(in_path, **(inputs or {}))
        script = (_PRELUDE.format(fixtures=str(FIXTURES), inputs=in_path)
                  + textwrap.dedent(code) + _POSTLUDE.format(outputs=out_path))
        env = dict(os.environ, GLOG_v="3", PYTHONWARNINGS="ignore")
        proc = subprocess.run([sys.executable, "-c", script], cwd=cwd or tmp, env=env,
                              capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise AssertionError(f"MindSpore oracle failed (exit {proc.returncode}):\n"
                                 f"{proc.stderr[-6000:]}\n--- stdout ---\n{proc.stdout[-2000:]}")
        with np.load(out_path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}


def once_per_session(tmp_path_factory, name, compute):
    """``compute()`` once per test session, also under xdist: the first worker computes and pickles
    it under the session's temporary root, the others wait on a lock and read it (an oracle table
    that every worker needs is then paid for once)."""
    import fcntl
    import pickle

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent                                     # shared by the session's workers
    result = root / f"{name}.pickle"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if result.exists():
            return pickle.loads(result.read_bytes())          # written by this session's own worker
        value = compute()
        result.write_bytes(pickle.dumps(value))
        return value
