"""``python -m msjax.demo`` end to end: real digits, training with checkpoints, reload, fine-tune,
export, and each export run (ONNX in onnxruntime, MINDIR in msjax's and MindSpore's GraphCell). One
subprocess run in a temporary workdir."""
import os
import re
import subprocess
import sys

from oracle import MINDSPORE_PLATFORM

# each runner's output vs the msjax network's, on one float32 input (LeNet5 logits are O(1))
RUNS = {"lenet5.onnx in onnxruntime": 1e-5, "lenet5.mindir in msjax GraphCell": 1e-6,
        "lenet5.mindir in MindSpore GraphCell": 1e-5}


def test_demo_trains_reloads_finetunes_and_exports(tmp_path):
    workdir = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "msjax.demo", "--workdir", str(workdir)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    accuracy = float(re.search(r"^test accuracy: ([0-9.]+)$", out, re.M).group(1))
    assert accuracy >= 0.95, out
    reloaded = float(re.search(r"reloaded \S+ .*accuracy ([0-9.]+)", out).group(1))
    assert reloaded == accuracy                                       # the last checkpoint is the final net
    before, after = map(float, re.search(r"accuracy ([0-9.]+) before, ([0-9.]+) after", out).groups())
    assert before < 0.5 < 0.9 <= after                                 # fc3 re-initialised, then re-learned
    assert "not loaded: fc3.weight, fc3.bias" in out
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        assert (workdir / "MNIST_Data" / name).is_file()
    ckpts = sorted(os.listdir(workdir / "checkpoints"))
    assert ckpts == ["checkpoint_lenet-10_44.ckpt", "checkpoint_lenet-8_44.ckpt", "checkpoint_lenet-9_44.ckpt",
                     "checkpoint_lenet-graph.meta", "lenet_finetuned.ckpt"]
    for fmt in ("mindir", "onnx", "air"):
        assert (workdir / f"lenet5.{fmt}").stat().st_size > 200_000
    for run, tolerance in RUNS.items():
        found = re.search(rf"^run {run}: output max \|diff\| vs msjax ([0-9.e+-]+)$", out, re.M)
        if found is None and run.endswith("MindSpore GraphCell") and not MINDSPORE_PLATFORM:
            assert f"run {run}: not run (MindSpore is not installed)" in out, out
            continue
        assert found, out
        assert float(found.group(1)) <= tolerance, found.group(0)
    assert not os.path.exists(workdir / "lenet5_input.npy")             # the MindSpore run's files are temporary
