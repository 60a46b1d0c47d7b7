"""What async checkpointing costs a training run: ResNet-50 Model.train with and without
ModelCheckpoint(save_checkpoint_steps=50, async_save=True), alternating in one process.

    .venv/bin/python benchmarks/bench_async.py [--quick] [--reps N] [--every 50] [--json F]

One msjax process (compiled once) runs ``Model.train`` windows of ``2.5 * every`` steps (two saves
each, the second one ``every / 2`` steps before the window ends, as in a long run where a save
has the following steps to finish), alternating "none" (no ModelCheckpoint) and "async"
(``CheckpointConfig(save_checkpoint_steps=every, keep_checkpoint_max=2, async_save=True)``) and,
unless --no-sync, "sync" (``async_save=False``). Steps/s runs from the end of step 1 to the end of
the last step (synced); the saves still running at the end are waited for outside the window.
The loss is ``1 - steps/s(async) / steps/s(none)``, medians over windows; beside it, the share of
the process's CPU time (all threads, per step, the saves' writes included) that checkpointing adds,
which other work on the machine disturbs far less.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_train import Rows, _api  # noqa: E402

BATCH, SHAPE = 8, (3, 32, 32)


#: network -> (input shape, builder name); --quick runs LeNet5 (one short compile)
NETS = {"resnet50": (SHAPE, "resnet50"), "lenet5": ((1, 32, 32), "LeNet5")}


def worker(every, reps, modes, net_name="resnet50"):
    import numpy as np
    api = _api("msjax")
    shape, builder = NETS[net_name]
    rng = np.random.default_rng(0)
    images = rng.standard_normal((64, *shape)).astype(np.float32)
    labels = rng.integers(0, 10, size=len(images)).astype(np.int32)
    net = getattr(api, builder)(**({"class_num": 10} if net_name == "resnet50" else {}))
    loss = api.nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    opt = api.nn.Momentum(net.trainable_params(), learning_rate=0.01, momentum=0.9)
    model = api.Model(net, loss_fn=loss, optimizer=opt)
    steps = every * 5 // 2

    class Timer(api.Callback):
        def __init__(self, last):
            super().__init__()
            self.times, self.cpu, self.last = {}, {}, last

        def on_train_step_end(self, run_context):
            cb = run_context.original_args()
            if cb.cur_step_num in (1, self.last):
                cb.net_outputs.asnumpy()
                self.times[cb.cur_step_num] = time.perf_counter()
                self.cpu[cb.cur_step_num] = time.process_time()

    tmp = tempfile.mkdtemp(prefix="bench_async_")

    def window(mode, n_steps=steps, save_every=every):
        timer = Timer(n_steps)
        callbacks = [timer]
        if mode != "none":
            config = api.CheckpointConfig(save_checkpoint_steps=save_every, keep_checkpoint_max=2,
                                          async_save=mode == "async")
            callbacks.insert(0, api.ModelCheckpoint(prefix="r50", directory=os.path.join(tmp, mode),
                                                    config=config))
        data = api.ds.GeneratorDataset(Rows(images, labels, n_steps * BATCH), column_names=["image", "label"],
                                       shuffle=False).batch(BATCH)
        model.train(1, data, callbacks=callbacks, dataset_sink_mode=False)
        api.ms.wait_async_save()
        cpu_s = time.process_time()
        if n_steps == 1:
            return None
        # CPU seconds of the whole process per step, the async saves' writes included (waited
        # for above): far steadier than steps/s on a machine other work shares
        cpu_per_step = (cpu_s - timer.cpu[1]) / (n_steps - 1)
        return (n_steps - 1) / (timer.times[n_steps] - timer.times[1]), cpu_per_step

    window("async", n_steps=1, save_every=1)  # compile, and the first save's one-off set-up
    out = {m: [] for m in modes}
    cpu = {m: [] for m in modes}
    for r in range(reps):
        order = modes[r % len(modes):] + modes[:r % len(modes)]
        for m in order:
            rate, cpu_per_step = window(m)
            out[m].append(rate)
            cpu[m].append(cpu_per_step)
    size = sum(os.path.getsize(os.path.join(tmp, "async", f)) for f in os.listdir(os.path.join(tmp, "async"))
               if f.endswith(".ckpt")) / max(1, len([f for f in os.listdir(os.path.join(tmp, "async"))
                                                      if f.endswith(".ckpt")]))
    return {"steps_per_s": out, "cpu_s_per_step": cpu, "steps": steps, "every": every, "ckpt_bytes": size,
            "net": net_name, "shape": list(shape)}


def measure(every, reps, modes, net_name="resnet50"):
    env = dict(os.environ, GLOG_v="3", PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, __file__, "--worker", str(every), str(reps), ",".join(modes), net_name],
                          capture_output=True, text=True, env=env, timeout=3000)
    if proc.returncode != 0:
        raise RuntimeError(f"bench_async failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def summarize(res):
    med = {m: statistics.median(v) for m, v in res["steps_per_s"].items()}
    rows = [{"row": f"Model.train steps/s, {m}", "values": {"msjax": v}, "ratios": {}} for m, v in med.items()]
    out = {"config": {k: res[k] for k in ("steps", "every", "ckpt_bytes", "net", "shape") if k in res}, "windows": res["steps_per_s"],
           "medians": med, "rows": rows}
    cpu = {m: statistics.median(v) for m, v in res.get("cpu_s_per_step", {}).items()}
    out["cpu_s_per_step"] = cpu
    for m in med:
        if m != "none":
            out[f"{m}_loss"] = 1 - med[m] / med["none"]
            rows.append({"row": f"steps/s lost to {m} checkpointing (goal <= 5% for async)",
                         "values": {"msjax": out[f"{m}_loss"]}, "ratios": {}, "signed": True})
            if m in cpu:
                out[f"{m}_cpu_share"] = 1 - cpu["none"] / cpu[m]
                rows.append({"row": f"share of the run's CPU time spent on {m} checkpointing",
                             "values": {"msjax": out[f"{m}_cpu_share"]}, "ratios": {}, "signed": True})
    print(f"\n=== {res.get('net', 'resnet50')} batch {BATCH} x {'x'.join(map(str, res.get('shape', SHAPE)))}, a save every {res['every']} steps "
          f"({res['ckpt_bytes'] / 2**20:.0f} MiB), windows of {res['steps']} steps ===")
    for row in rows:
        print(f"  {row['row']:60s} {row['values']['msjax']:.3f}")
    return out


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        print(json.dumps(worker(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4].split(","), *sys.argv[5:6])))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a save every 4 steps, one window each")
    ap.add_argument("--net", choices=sorted(NETS), default="resnet50")
    ap.add_argument("--every", type=int, help="steps between saves (default 50, --quick 4)")
    ap.add_argument("--reps", type=int, help="windows per mode (default 3, --quick 1)")
    ap.add_argument("--no-sync", action="store_true", help="only none and async")
    ap.add_argument("--json", help="also write the summary to this file")
    args = ap.parse_args()
    modes = ["none", "async"] + ([] if args.no_sync else ["sync"])
    report = summarize(measure(args.every or (4 if args.quick else 50), args.reps or (1 if args.quick else 3), modes,
                                 args.net))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
