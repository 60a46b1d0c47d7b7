"""`benchmarks/run_all.py --quick` runs every section and reports every row (no timing checks).

It runs in a subprocess, as in CI: MindSpore is imported only by its own workers. The numbers
are not compared with anything; what is checked is that each section and row the benchmark
promises is there, with positive finite numbers (differences of two timings may be negative),
and that MindSpore's rows are measured when MindSpore is importable and say why not otherwise.
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HAVE_MINDSPORE = importlib.util.find_spec("mindspore") is not None

#: (section, row-name fragments that must be present)
TRAIN_ROWS = {"lenet5": ["first step", "Model.train steps/s", "bare TrainOneStepCell steps/s",
                         "ckpt async", "one save holds the loop, async"]}   # --quick trains LeNet5 only
CKPT_CONTENDERS = ["raw", "msjax", "mindspore", "safetensors", "torch", "orbax"]
CKPT_EXTRAS = ["fsync", "jax arrays", "numpy arrays (copied)", "fork", "choice_func", "specify_prefix",
               "filter_prefix"]


def _number(value, signed=False):
    return isinstance(value, (int, float)) and math.isfinite(value) and (signed or value > 0)


def _find(rows, fragment):
    found = [r for r in rows if fragment in r["row"]]
    assert found, f"no row {fragment!r} in {[r['row'] for r in rows]}"
    return found[0]


def check_report(report, have_mindspore):
    """Every section and row of a run_all report, with positive finite numbers."""
    contenders = ["msjax", "mindspore"] if have_mindspore else ["msjax"]
    assert report["contenders"] == contenders
    assert report["machine"]["cores"] >= 1 and report["machine"]["versions"]["jax"]
    if not have_mindspore:
        assert "not importable" in report["mindspore_note"]
    for section in ("train", "checkpoint", "export", "graph_cell", "async"):
        assert section in report, section
        assert not report[section].get("failed"), report[section]["failed"]
    for net, fragments in TRAIN_ROWS.items():
        rows = report["train"]["nets"][net]["rows"]
        for fragment in fragments:
            row = _find(rows, fragment)
            for c in contenders:
                assert _number(row["values"][c], row.get("signed")), (net, row)
            if have_mindspore and "steps/s" in fragment:
                assert _number(row["ratios"]["msjax/mindspore"])
    sets = report["checkpoint"]["sets"]
    assert list(sets) == ["resnet50"]
    sec = sets["resnet50"]
    got = [r["contender"] for r in sec["rows"]]
    assert sorted(got) == sorted(c for c in CKPT_CONTENDERS if have_mindspore or c != "mindspore")
    for row in sec["rows"]:
        assert all(_number(v) for v in row["values"].values()), row
    assert len(sec["goals"]) == 6 and all(_number(g["values"]["msjax"]) for g in sec["goals"])
    for fragment in CKPT_EXTRAS:
        (value,) = [v for k, v in sec["extras"].items() if fragment in k]
        assert _number(value), fragment
    for fmt in ("MINDIR", "ONNX", "AIR"):
        row = _find(report["export"]["rows"], f"lenet5 {fmt}")
        assert _number(row["values"]["msjax"])
        if have_mindspore and fmt != "AIR":
            assert _number(row["values"]["mindspore"])
        elif have_mindspore:        # MindSpore's CPU build writes no AIR: the row says so
            assert row["values"].get("mindspore") or "Ascend" in row["notes"]["mindspore"]
    for fragment in ("load + GraphCell", "first call", "steady calls/s"):
        row = _find(report["graph_cell"]["rows"], f"lenet5 {fragment}")
        assert all(_number(row["values"][c]) for c in contenders), row
    rows = report["async"]["rows"]
    assert _number(_find(rows, "steps/s, none")["values"]["msjax"])
    assert _number(_find(rows, "steps/s, async")["values"]["msjax"])
    assert _number(_find(rows, "lost to async")["values"]["msjax"], signed=True)


def test_run_all_quick(tmp_path):
    out, md = tmp_path / "report.json", tmp_path / "report.md"
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run_all.py"), "--quick", "--json", str(out),
                           "--markdown", str(md)], capture_output=True, text=True, env=env, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-4000:]
    check_report(json.loads(out.read_text()), HAVE_MINDSPORE)
    text = md.read_text()
    assert "Machine:" in text and "### Checkpoint I/O" in text and "### Async checkpointing" in text
    assert "Machine:" in proc.stdout
