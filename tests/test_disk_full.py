"""Full disks and read-only directories: every save mode and export format raises a clear msjax
write error, the previous file still loads with its old content, and no temporary file is left.

The scenario runs in a child process (tests/reliability/disk_full_child.py) so the file-size limit
and the mounts never touch the test runner. Full disk is tried two ways: a small tmpfs (ENOSPC;
needs root and mount) and RLIMIT_FSIZE with SIGXFSZ ignored (EFBIG; any user). A read-only
directory is a tmpfs remounted read-only when root, else a directory without write permission.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CHILD = Path(__file__).parent / "reliability" / "disk_full_child.py"
CASES = ["sync", "async_true", "thread", "process", "crc", "aes_gcm", "aes_cbc", "sm4_cbc",
         "safetensors", "orbax", "MINDIR", "ONNX", "AIR", "graph_meta"]
EXPORTS = {"MINDIR", "ONNX", "AIR", "graph_meta"}
ERRNO = {"tmpfs": 28, "rlimit": 27, "readonly": 30 if os.geteuid() == 0 else 13}  # ENOSPC, EFBIG, EROFS/EACCES


def _mount_tmpfs(directory, size):
    if os.geteuid() != 0:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)],
                          capture_output=True)
    return done.returncode == 0


def _run_child(directory, how, tmp_path):
    out = tmp_path / f"{how}.json"
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")
    proc = subprocess.run([sys.executable, str(CHILD), str(directory), how, str(out)],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return {r["case"]: r for r in json.loads(out.read_text())}


@pytest.fixture(scope="module", params=["tmpfs", "rlimit", "readonly"])
def scenario(request, tmp_path_factory):
    how = request.param
    tmp_path = tmp_path_factory.mktemp(how)
    directory = tmp_path / "disk"
    directory.mkdir()
    mounted = how in ("tmpfs", "readonly") and _mount_tmpfs(directory, "16m")
    if how == "tmpfs" and not mounted:
        pytest.skip("tmpfs needs root and mount; the RLIMIT_FSIZE variant covers full disks")
    if how == "readonly" and not mounted and os.geteuid() == 0:
        pytest.skip("a read-only directory needs a mount when running as root")
    try:
        yield how, _run_child(directory, how, tmp_path)
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(directory)], check=False)


@pytest.mark.parametrize("case", CASES)
def test_full_disk_save_fails_cleanly(scenario, case):
    how, results = scenario
    r = results[case]
    assert "scenario_error" not in r, r["scenario_error"]
    expected = "ExportWriteError" if case in EXPORTS else "CheckpointWriteError"
    assert r["raised"] == expected, r
    assert "OSError" in r["classes"] and "ValueError" in r["classes"]
    assert r["errno"] == ERRNO[how], r
    assert r["message"].startswith(r["path"]), r["message"]
    assert r["previous_intact"], r
    assert r["leftovers"] == [], r
