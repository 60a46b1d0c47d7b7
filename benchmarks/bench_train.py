"""msjax vs MindSpore 2.10 on training throughput: LeNet5 and ResNet50, Model.train and the bare step.

    .venv/bin/python benchmarks/bench_train.py [--quick] [--nets lenet5,resnet50] [--rounds N] [--json F]
                                               [--baseline DIR [--no-mindspore]]

Both contenders train the same network with the same random data, batch, loss
(SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")) and optimizer (Momentum 0.01/0.9):
LeNet5 (batch 32, 1x32x32) and ResNet50 (class_num=10, batch 8, 3x32x32; "resnet50_64": 3x64x64,
model and step phases only, short windows: MindSpore takes seconds a step). MindSpore runs in
GRAPH_MODE on CPU with its defaults. Every contender runs in its own subprocess (MindSpore is never
imported into msjax's process); contenders alternate across rounds and each worker interleaves
its phases:

- first step: from ``Model.train(...)`` to the end of step 1 (includes tracing/compiling), synced;
- model: ``Model.train(1, GeneratorDataset(Rows(...)).batch(B), dataset_sink_mode=False)``,
  steps per second between two synced steps after warm-up;
- step: ``model.train_network`` (TrainOneStepCell(WithLossCell(net, loss), opt)) called in a loop
  on fixed Tensors, no dataset: the step cost alone (model minus step = input pipeline + loop);
- ckpt sync / ckpt async: the model phase with ``ModelCheckpoint(CheckpointConfig(
  save_checkpoint_steps=N, keep_checkpoint_max=2, async_save=...))``, reported as the extra time
  per step over the model phase (an async save's last write finishes after the window), and as
  the time one save holds the loop (inside ModelCheckpoint's step hook, after syncing the step).

``--baseline DIR`` adds the msjax package in DIR (e.g. `git archive HEAD~1 | tar -x -C DIR`) as contender
``msjax-base``, for before/after numbers of an msjax change. Steady-state numbers are medians over
windows (several per worker, and every round). The README's numbers come from a noisy, shared
2-core VM: compare ratios, not absolute times.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "mindspore"
PHASES = ["model", "step", "ckpt_sync", "ckpt_async"]

#: per network: batch, input shape, checkpoint interval N, windows of k*N steps timed after `skip`
NETS = {
    "lenet5": {"batch": 32, "shape": (1, 32, 32), "ckpt_every": 10, "saves": 6, "reps": 3},
    "resnet50": {"batch": 8, "shape": (3, 32, 32), "ckpt_every": 3, "saves": 2, "reps": 2},
    # 3x64x64 costs MindSpore about 4 s a step on 2 cores: a short window, no checkpoint phases
    "resnet50_64": {"net": "resnet50", "batch": 8, "shape": (3, 64, 64), "ckpt_every": 2, "saves": 1,
                    "reps": 1, "phases": ["model", "step"]},
}
QUICK = {
    "lenet5": {"ckpt_every": 10, "saves": 2, "reps": 1},
    "resnet50": {"ckpt_every": 1, "saves": 2, "reps": 1, "phases": ["step"], "first_is_window": True},
    "resnet50_64": {"ckpt_every": 1, "saves": 1, "reps": 0, "phases": [], "first_is_window": True},
}


# ------------------------------------------------------------------ worker side (one contender)

class Rows:
    """Random-access source of (image, np.array(label)), as fixtures/mindspore/generate.py's Rows."""

    def __init__(self, images, labels, length):
        self.images, self.labels, self.length = images, labels, length

    def __getitem__(self, i):
        import numpy as np
        i = i % len(self.images)
        return self.images[i], np.array(self.labels[i])

    def __len__(self):
        return self.length


def _api(contender):
    """The names both frameworks share, from the contender's own package."""
    import types
    if contender == "mindspore":
        sys.path.insert(0, str(FIXTURES))
        import mindspore as ms
        from mindspore import dataset as ds
        from mindspore import nn
        from mindspore.train import Callback, CheckpointConfig, Model, ModelCheckpoint
        from ms_models import LeNet5, resnet50
        ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
        ms.set_seed(1)
    else:
        import msjax as ms
        base = os.environ.get("PYTHONPATH", "").split(os.pathsep)[0]
        if contender == "msjax-base" and not ms.__file__.startswith(base):
            raise RuntimeError(f"msjax-base imported {ms.__file__}, not the --baseline tree")
        from msjax import dataset as ds
        from msjax import nn
        from msjax.models import LeNet5, resnet50
        from msjax.train import Callback, CheckpointConfig, Model, ModelCheckpoint
        ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
        ms.set_seed(1)
    return types.SimpleNamespace(ms=ms, ds=ds, nn=nn, Callback=Callback, CheckpointConfig=CheckpointConfig,
                                 Model=Model, ModelCheckpoint=ModelCheckpoint, LeNet5=LeNet5, resnet50=resnet50)


def worker(contender, net_name, cfg):
    import numpy as np
    api = _api(contender)
    batch, shape, every, saves, reps = (cfg[k] for k in ("batch", "shape", "ckpt_every", "saves", "reps"))
    phases = cfg.get("phases", PHASES)
    skip = every                      # steps before the window: warm-up, and the first save
    steps = skip + saves * every      # one Model.train call; the window is (skip, steps]
    rng = np.random.default_rng(0)
    images = rng.standard_normal((64 * batch // 8, *shape)).astype(np.float32)
    labels = rng.integers(0, 10, size=len(images)).astype(np.int32)

    net = api.LeNet5() if cfg.get("net", net_name) == "lenet5" else api.resnet50(class_num=10)
    loss = api.nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    opt = api.nn.Momentum(net.trainable_params(), learning_rate=0.01, momentum=0.9)
    model = api.Model(net, loss_fn=loss, optimizer=opt)

    def dataset(n_steps):
        source = Rows(images, labels, n_steps * batch)
        return api.ds.GeneratorDataset(source, column_names=["image", "label"], shuffle=False).batch(batch)

    class Timer(api.Callback):
        """Time at the end of each step; syncs (reads the loss) only at the window's two ends."""

        def __init__(self, sync_at):
            super().__init__()
            self.sync_at, self.times = set(sync_at), {}

        def on_train_step_end(self, run_context):
            cb = run_context.original_args()
            if cb.cur_step_num in self.sync_at:
                cb.net_outputs.asnumpy()
            self.times[cb.cur_step_num] = time.perf_counter()

    class TimedCheckpoint(api.ModelCheckpoint):
        """ModelCheckpoint that times how long each save holds the training loop (after a sync)."""

        blocked = []

        def on_train_step_end(self, run_context):
            cb = run_context.original_args()
            if cb.cur_step_num % every:
                return super().on_train_step_end(run_context)
            cb.net_outputs.asnumpy()  # the step itself is done: time the save alone
            t0 = time.perf_counter()
            super().on_train_step_end(run_context)
            self.blocked.append(time.perf_counter() - t0)

    tmp = tempfile.mkdtemp(prefix=f"bench_train_{contender}_")
    os.chdir(tmp)  # MindSpore may drop side files (rank_0/...) into the working directory
    runs = iter(range(10**6))

    def train(phase, n_steps=steps):
        timer = Timer({1, skip, n_steps})
        callbacks = [timer]
        if phase.startswith("ckpt"):
            config = api.CheckpointConfig(save_checkpoint_steps=every, keep_checkpoint_max=2,
                                          async_save=phase == "ckpt_async")
            directory = os.path.join(tmp, f"run{next(runs)}")
            callbacks.insert(0, TimedCheckpoint(prefix="bench", directory=directory, config=config))
        data = dataset(n_steps)
        t0 = time.perf_counter()
        model.train(1, data, callbacks=callbacks, dataset_sink_mode=False)
        if n_steps <= skip:
            return timer.times[1] - t0, None
        return timer.times[1] - t0, (timer.times[n_steps] - timer.times[skip]) / (n_steps - skip)

    def bare_steps():
        x = api.ms.Tensor(images[:batch])
        y = api.ms.Tensor(labels[:batch])
        step = model.train_network
        for _ in range(skip):
            out = step(x, y)
        out.asnumpy()
        t0 = time.perf_counter()
        for _ in range(steps - skip):
            out = step(x, y)
        out.asnumpy()
        return (time.perf_counter() - t0) / (steps - skip)

    result = {"first_step_s": None, "call_to_step1_s": [], "save_sync_blocked_s": [], "save_async_blocked_s": [],
              **{p: [] for p in phases}}
    # trace + compile; with first_is_window (--quick) the same call's later steps are the model window
    result["first_step_s"], per_step = train("model", n_steps=steps if cfg.get("first_is_window") else 1)
    if cfg.get("first_is_window"):
        result.setdefault("model", []).append(per_step)
    for r in range(reps):
        order = phases[r % len(phases):] + phases[:r % len(phases)]
        for phase in order:
            if phase == "step":
                result["step"].append(bare_steps())
            else:
                TimedCheckpoint.blocked = []
                first, per_step = train(phase)
                result[phase].append(per_step)
                if phase.startswith("ckpt"):
                    result[f"save_{phase[5:]}_blocked_s"].extend(TimedCheckpoint.blocked)
                if phase == "model":
                    result["call_to_step1_s"].append(first)
    shutil.rmtree(tmp, ignore_errors=True)
    return result


# ------------------------------------------------------------------ driver side

def measure(contender, net_name, cfg, baseline=None):
    env = dict(os.environ, GLOG_v="3", PYTHONWARNINGS="ignore", PYTHONDONTWRITEBYTECODE="1")
    if contender == "msjax-base":  # another msjax tree (e.g. `git worktree add ../base HEAD~1`) first on sys.path
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [baseline, env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, __file__, "--worker", contender, net_name, json.dumps(cfg)],
                          capture_output=True, text=True, env=env, timeout=1200)
    if proc.returncode != 0:
        raise RuntimeError(f"{contender} {net_name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def config(net_name, quick):
    return dict(NETS[net_name], **(QUICK[net_name] if quick else {}))


def plan(nets, rounds, quick, contenders, baseline=None):
    """The measurements of a run, in order: (key, thunk) with key = (net, round, contender)."""
    jobs = []
    for net_name in nets:
        cfg = config(net_name, quick)
        for r in range(rounds):
            shift = r % len(contenders)
            for c in contenders[shift:] + contenders[:shift]:
                jobs.append(((net_name, r, c), lambda c=c, n=net_name, cfg=cfg: _timed(c, n, cfg, baseline)))
    return jobs


def _timed(c, net_name, cfg, baseline):
    t0 = time.perf_counter()
    res = measure(c, net_name, cfg, baseline)
    print(f"  [{net_name}] {c:10s} first step {res['first_step_s']:.2f}s  "
          + "  ".join(f"{p} {1e3 * statistics.median(res[p]):.1f}ms" for p in PHASES if res.get(p))
          + f"   ({time.perf_counter() - t0:.0f}s)", flush=True)
    return res


def collect(nets, quick, contenders, results):
    """One summary per network from ``results`` ({(net, round, contender): worker result})."""
    report = {}
    keys = ["first_step_s", "call_to_step1_s", "save_sync_blocked_s", "save_async_blocked_s", *PHASES]
    for net_name in nets:
        per = {c: {k: [] for k in keys} for c in contenders}
        for (n, _, c), res in results.items():
            if n != net_name:
                continue
            per[c]["first_step_s"].append(res["first_step_s"])
            for k in keys[1:]:
                per[c][k].extend(res.get(k, []))
        report[net_name] = summarize(net_name, config(net_name, quick), per)
    return report


def run(nets, rounds, quick, contenders, baseline=None):
    results = {key: job() for key, job in plan(nets, rounds, quick, contenders, baseline)}
    return collect(nets, quick, contenders, results)


def summarize(net_name, cfg, per):
    """Print one table per network; ratios are msjax over each other contender."""
    med = {c: {k: statistics.median(v) for k, v in d.items() if v} for c, d in per.items()}
    for m in med.values():
        if "step" in m:
            m["pipeline_ms"] = 1e3 * (m["model"] - m["step"])
        for p in ("ckpt_sync", "ckpt_async"):
            if p in m:
                m[f"{p}_extra_ms"] = 1e3 * (m[p] - m["model"])
    others = [c for c in med if c != "msjax"]
    out = {"config": cfg, "medians": med, "windows": {c: len(per[c]["model"]) for c in per}, "ratios": {},
           "rows": []}
    print(f"\n=== {net_name}: batch {cfg['batch']} x {'x'.join(map(str, cfg['shape']))}, Momentum 0.01/0.9, "
          f"GRAPH_MODE CPU; medians over {out['windows']['msjax']} windows ===")
    print(f"{'':34s}" + "".join(f"{c:>11s}" for c in med) + "".join(f"{'msjax/' + c[:6]:>13s}" for c in others))
    rows = [("first step (compile) s", "first_step_s", lambda v: v, "{:.2f}", False),
            ("Model.train call -> step 1 s", "call_to_step1_s", lambda v: v, "{:.3f}", False),
            ("Model.train steps/s", "model", lambda v: 1 / v, "{:.2f}", True),
            ("bare TrainOneStepCell steps/s", "step", lambda v: 1 / v, "{:.2f}", True),
            ("pipeline+loop ms/step", "pipeline_ms", lambda v: v, "{:.2f}", None),
            (f"ckpt sync every {cfg['ckpt_every']}: +ms/step", "ckpt_sync_extra_ms", lambda v: v, "{:.1f}", None),
            (f"ckpt async every {cfg['ckpt_every']}: +ms/step", "ckpt_async_extra_ms", lambda v: v, "{:.1f}", None),
            ("one save holds the loop, sync: ms", "save_sync_blocked_s", lambda v: 1e3 * v, "{:.1f}", False),
            ("one save holds the loop, async: ms", "save_async_blocked_s", lambda v: 1e3 * v, "{:.1f}", False)]
    for label, key, show, fmt, ratio in rows:
        if not all(key in m for m in med.values()):
            continue
        line = f"{label:34s}" + "".join(f"{fmt.format(show(med[c][key])):>11s}" for c in med)
        row = {"row": label, "values": {c: show(med[c][key]) for c in med}, "ratios": {},
               "signed": ratio is None}      # a difference of two timings: noise can make it negative
        if ratio is not None:
            for c in others:
                r = show(med["msjax"][key]) / show(med[c][key])
                out["ratios"][f"{key}_msjax_over_{c}"] = row["ratios"][f"msjax/{c}"] = r
                line += f"{r:>12.2f}x"
        out["rows"].append(row)
        print(line)
    print("(ratios: msjax's number over the other's; steps/s >1 and times <1 favour msjax)")
    return out


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        print(json.dumps(worker(sys.argv[2], sys.argv[3], json.loads(sys.argv[4]))))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer, shorter windows and one round (about 2 min)")
    ap.add_argument("--nets", default="lenet5,resnet50", help="of lenet5, resnet50, resnet50_64")
    ap.add_argument("--rounds", type=int, help="processes per contender and network (default 2, --quick 1)")
    ap.add_argument("--json", help="also write the summary to this file")
    ap.add_argument("--baseline", metavar="DIR", help="also run the msjax package found in DIR (a checkout of "
                    "another commit) as contender 'msjax-base', for before/after numbers")
    ap.add_argument("--no-mindspore", action="store_true", help="skip MindSpore (with --baseline: A/B only)")
    args = ap.parse_args()
    rounds = args.rounds or (1 if args.quick else 2)
    contenders = ["msjax"] + (["msjax-base"] if args.baseline else []) + ([] if args.no_mindspore else ["mindspore"])
    if len(contenders) < 2:
        ap.error("--no-mindspore needs --baseline")
    t0 = time.perf_counter()
    report = run(args.nets.split(","), rounds, args.quick, contenders, args.baseline and os.path.abspath(args.baseline))
    print(f"\ntotal {time.perf_counter() - t0:.0f}s on {os.cpu_count()} CPUs; numbers from one machine "
          f"(a noisy shared VM in the README): compare ratios, not absolute times")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
