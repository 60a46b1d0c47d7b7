"""The msjax demo: LeNet5 on real handwritten digits, MindSpore's save/load workflow end to end.

    python -m msjax.demo [--workdir ./demo_output] [--epochs 10]

1. writes scikit-learn's real 8x8 digits as MNIST idx files and reads them with ``MnistDataset``
   through the MindSpore docs' ``create_dataset`` pipeline (Resize 32x32, Rescale, HWC2CHW, TypeCast);
2. trains LeNet5 with ``Momentum`` (cosine learning-rate list), saving checkpoints with
   ``ModelCheckpoint`` every epoch, and evaluates on the held-out split;
3. reloads the last checkpoint into a fresh LeNet5 (``load_checkpoint``/``load_param_into_net``);
4. fine-tunes: loads everything except ``fc3`` (``filter_prefix=["fc3", "moments.fc3"]``), trains one epoch;
5. exports the network to MINDIR, ONNX and AIR, and runs what it wrote: the ONNX in onnxruntime, the
   MINDIR in msjax's ``GraphCell`` and, when MindSpore is installed, in MindSpore's ``GraphCell`` (in a
   subprocess: importing mindspore switches protobuf to pure Python for the whole process). Each
   prints its output's max |diff| against the network's own.
"""
from __future__ import annotations

import argparse
import importlib.util
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

import msjax
from msjax import dataset as ds
from msjax import nn
from msjax.dataset import transforms, vision
from msjax.models import LeNet5
from msjax.train import Accuracy, CheckpointConfig, LossMonitor, Model, ModelCheckpoint

SEED = 1


def create_dataset(data_path, usage="train", batch_size=32, training=True):
    """The MindSpore docs' ``create_dataset`` for LeNet5 (MNIST statistics for normalisation)."""
    mnist_ds = ds.MnistDataset(data_path, usage=usage, shuffle=training)
    mnist_ds = mnist_ds.map(operations=transforms.TypeCast(msjax.int32), input_columns="label")
    mnist_ds = mnist_ds.map(operations=vision.Resize((32, 32), interpolation=vision.Inter.LINEAR),
                            input_columns="image")
    mnist_ds = mnist_ds.map(operations=vision.Rescale(1.0 / 255.0, 0.0), input_columns="image")
    mnist_ds = mnist_ds.map(operations=vision.Rescale(1 / 0.3081, -1 * 0.1307 / 0.3081), input_columns="image")
    mnist_ds = mnist_ds.map(operations=vision.HWC2CHW(), input_columns="image")
    if training:
        mnist_ds = mnist_ds.shuffle(buffer_size=10000)
    return mnist_ds.batch(batch_size, drop_remainder=training)


def cosine_lr(base_lr, total_steps):
    """A per-step learning-rate list (Momentum takes lists as MindSpore does), cosine to zero."""
    return [base_lr * 0.5 * (1 + math.cos(math.pi * i / total_steps)) for i in range(total_steps)]


def _say(message):
    print(message, flush=True)


def run(workdir="demo_output", epochs=10, batch_size=32, lr=0.05):
    """Run the whole demo; return a dict of the measured results."""
    started = time.time()
    ds.config.set_seed(SEED)
    msjax.set_seed(SEED)
    data_dir = os.path.join(workdir, "MNIST_Data")
    ckpt_dir = os.path.join(workdir, "checkpoints")
    counts = ds.write_digits(data_dir)
    _say(f"data: {counts['train']} train / {counts['test']} test real handwritten digits "
         f"(scikit-learn) written as MNIST idx files in {data_dir}")

    train_ds = create_dataset(data_dir, "train", batch_size)
    test_ds = create_dataset(data_dir, "test", batch_size, training=False)
    steps = train_ds.get_dataset_size()
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    metrics = {"Accuracy": Accuracy()}

    # 1. train with ModelCheckpoint
    net = LeNet5()
    opt = nn.Momentum(net.trainable_params(), learning_rate=cosine_lr(lr, epochs * steps), momentum=0.9)
    model = Model(net, loss, opt, metrics=metrics)
    config = CheckpointConfig(save_checkpoint_steps=steps, keep_checkpoint_max=3)
    ckpoint = ModelCheckpoint(prefix="checkpoint_lenet", directory=ckpt_dir, config=config)
    t0 = time.time()
    model.train(epochs, train_ds, callbacks=[ckpoint, LossMonitor(steps)])
    train_s = time.time() - t0
    accuracy = model.eval(test_ds)["Accuracy"]
    _say(f"trained LeNet5 for {epochs} epochs x {steps} steps in {train_s:.1f} s")
    _say(f"test accuracy: {accuracy:.4f}")
    saved = sorted(f for f in os.listdir(ckpt_dir) if f.endswith(".ckpt"))
    _say(f"checkpoints kept: {', '.join(saved)}")

    # 2. reload the last checkpoint into a fresh network and evaluate
    last = ckpoint.latest_ckpt_file_name
    param_dict = msjax.load_checkpoint(last)
    fresh = LeNet5()
    not_loaded, _ = msjax.load_param_into_net(fresh, param_dict)
    reloaded = Model(fresh, loss, metrics=metrics).eval(test_ds)["Accuracy"]
    _say(f"reloaded {os.path.basename(last)} ({len(param_dict)} entries, network and optimizer state; "
         f"{len(not_loaded)} network parameters not loaded): accuracy {reloaded:.4f}")

    # 3. fine-tune: keep everything but fc3 (re-initialised), train one epoch. The file also holds
    # Momentum's "moments.fc3.*": filter those too, or load_param_into_net would load them into
    # fc3 by suffix (MindSpore 2.10 does the same in non-strict mode).
    tuned = LeNet5()
    backbone = msjax.load_checkpoint(last, filter_prefix=["fc3", "moments.fc3"])
    not_loaded, _ = msjax.load_param_into_net(tuned, backbone)
    tune_model = Model(tuned, loss, nn.Momentum(tuned.trainable_params(), 0.01, 0.9), metrics=metrics)
    before = tune_model.eval(test_ds)["Accuracy"]
    tune_model.train(1, train_ds)
    after = tune_model.eval(test_ds)["Accuracy"]
    _say(f"fine-tune: loaded with filter_prefix=['fc3', 'moments.fc3'] (not loaded: {', '.join(not_loaded)}); "
         f"accuracy {before:.4f} before, {after:.4f} after 1 epoch")
    tuned_file = os.path.join(ckpt_dir, "lenet_finetuned.ckpt")
    msjax.save_checkpoint(tuned, tuned_file)

    # 4. export
    exported = export_all(fresh, workdir)
    total_s = time.time() - started
    _say(f"summary: accuracy {accuracy:.4f} (reloaded {reloaded:.4f}, fine-tuned {after:.4f}); "
         f"exported {', '.join(exported)}; total {total_s:.1f} s")
    return {"accuracy": accuracy, "reloaded": reloaded, "finetuned": after, "checkpoint": last,
            "exported": exported, "seconds": total_s}


def export_all(net, workdir):
    """Export ``net`` to MINDIR, ONNX and AIR, run the MINDIR and ONNX files; return the files written."""
    example = np.random.default_rng(0).standard_normal((1, 1, 32, 32)).astype(np.float32)
    net.set_train(False)
    expected = net(msjax.Tensor(example)).asnumpy()
    written = []
    for fmt in ("MINDIR", "ONNX", "AIR"):
        base = os.path.join(workdir, "lenet5")
        msjax.export(net, msjax.Tensor(example), file_name=base, file_format=fmt)
        path = base + "." + fmt.lower()
        written.append(os.path.basename(path))
        _say(f"export {fmt}: {path} ({os.path.getsize(path)} bytes)")
    checks = (("onnxruntime", _run_onnx, "lenet5.onnx"), ("msjax GraphCell", _run_graph_cell, "lenet5.mindir"),
              ("MindSpore GraphCell", _run_mindspore, "lenet5.mindir"))
    for runner, run_file, name in checks:
        got = run_file(os.path.join(workdir, name), example)
        if isinstance(got, str):
            _say(f"run {name} in {runner}: not run ({got})")
        else:
            _say(f"run {name} in {runner}: output max |diff| vs msjax {float(np.abs(got - expected).max()):.2e}")
    return written


def _run_onnx(path, example):
    try:
        import onnxruntime  # in the demo extra
    except ImportError:
        return "onnxruntime is not installed: pip install -e '.[demo]'"
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: example})[0]


def _run_graph_cell(path, example):
    return nn.GraphCell(msjax.load(path))(msjax.Tensor(example)).asnumpy()


_MINDSPORE_RUN = """
import sys
import numpy as np
import mindspore as ms
ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
net = ms.nn.GraphCell(ms.load(sys.argv[1]))
np.save(sys.argv[3], net(ms.Tensor(np.load(sys.argv[2]))).asnumpy())
"""


def _run_mindspore(path, example):
    """MindSpore's own ``nn.GraphCell(ms.load(path))`` in a fresh Python (never imported here)."""
    if importlib.util.find_spec("mindspore") is None:
        return "MindSpore is not installed"
    with tempfile.TemporaryDirectory() as tmp:
        x_file, y_file = os.path.join(tmp, "input.npy"), os.path.join(tmp, "output.npy")
        np.save(x_file, example)
        proc = subprocess.run([sys.executable, "-c", _MINDSPORE_RUN, path, x_file, y_file], capture_output=True,
                              text=True, timeout=300, env=dict(os.environ, GLOG_v="3"))
        if proc.returncode != 0:
            return "MindSpore failed: " + (proc.stderr.strip().splitlines() or ["no message"])[-1]
        return np.load(y_file)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m msjax.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="demo_output", help="where data, checkpoints and exports go")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.05, help="peak learning rate (cosine to zero)")
    args = parser.parse_args(argv)
    result = run(args.workdir, args.epochs, args.batch_size, args.lr)
    return 0 if result["accuracy"] >= 0.95 else 1


if __name__ == "__main__":
    sys.exit(main())
