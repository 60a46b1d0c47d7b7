"""First training step (trace + compile + run) of msjax vs MindSpore 2.10, cold and from a hot
persistent compilation cache; LeNet5 and ResNet50.

    .venv/bin/python benchmarks/bench_compile.py [--quick] [--nets lenet5,resnet50] [--rounds N] [--json F]

Each measurement is a fresh subprocess that builds the network, wraps it as
``TrainOneStepCell(WithLossCell(net, SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")),
Momentum(0.01, 0.9))`` and times its first call to the loss on the host (``.asnumpy()``): for
msjax that is tracing, lowering, XLA compilation (or loading from the cache) and one step; for
MindSpore GRAPH_MODE on CPU, its graph compilation and one step. A few further steps give the
steady step time, so a compile option that slows the step shows up; msjax's workers also count
JAX's persistent-cache hits (``msjax-cache`` must show 1: a 0 means the program changed between
the fill and the timed run, e.g. an edited msjax tree). The process CPU time of the
first step (all threads) is printed beside its wall time: on a loaded machine it moves less.
Contenders:

- ``mindspore``, ``msjax``: cache off (both frameworks' default);
- ``mindspore-cache``, ``msjax-cache``: ``set_context(enable_compile_cache=True,
  compile_cache_path=DIR)``, with DIR filled by one earlier run of the same contender (not timed).

Contenders alternate within each round. The numbers come from a shared, noisy 2-core VM: compare
the ratios printed at the end (medians over rounds), not absolute times.
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
CONTENDERS = ["mindspore", "msjax", "mindspore-cache", "msjax-cache"]
#: per network: batch and input shape (bench_train.py's)
NETS = {"lenet5": {"batch": 32, "shape": (1, 32, 32)}, "resnet50": {"batch": 8, "shape": (3, 32, 32)}}


def worker(contender, net_name, cache_dir):
    t0 = time.perf_counter()
    import numpy as np
    hits = []
    if contender.startswith("mindspore"):
        sys.path.insert(0, str(FIXTURES))
        import mindspore as ms
        from mindspore import nn
        from ms_models import LeNet5, resnet50
    else:
        import jax
        jax.monitoring.register_event_listener(lambda event, **kw: hits.append(event) if event in (
            "/jax/compilation_cache/cache_hits", "/msjax/compile_cache/hits") else None)
        import msjax as ms
        from msjax import nn
        from msjax.models import LeNet5, resnet50
    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
    if cache_dir:
        ms.set_context(enable_compile_cache=True, compile_cache_path=cache_dir)
    import_s = time.perf_counter() - t0
    cfg = NETS[net_name]
    rng = np.random.default_rng(0)
    x = ms.Tensor(rng.standard_normal((cfg["batch"], *cfg["shape"])).astype(np.float32))
    y = ms.Tensor(rng.integers(0, 10, size=cfg["batch"]).astype(np.int32))
    net = LeNet5() if net_name == "lenet5" else resnet50(class_num=10)
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    step = nn.TrainOneStepCell(nn.WithLossCell(net, loss), nn.Momentum(net.trainable_params(), 0.01, 0.9))
    step.set_train()
    t, cpu = time.perf_counter(), time.process_time()
    step(x, y).asnumpy()
    first, first_cpu = time.perf_counter() - t, time.process_time() - cpu
    steps = []
    for _ in range(3):
        t = time.perf_counter()
        step(x, y).asnumpy()
        steps.append(time.perf_counter() - t)
    return {"import_s": import_s, "first_step_s": first, "first_step_cpu_s": first_cpu,
            "step_s": statistics.median(steps), "cache_hits": len(hits),
            "msjax_hits": hits.count("/msjax/compile_cache/hits")}


def measure(contender, net_name, cache_dir=None):
    env = dict(os.environ, GLOG_v="3", PYTHONWARNINGS="ignore", PYTHONDONTWRITEBYTECODE="1")
    env = {k: v for k, v in env.items() if not k.startswith("MS_COMPILER_CACHE")}
    proc = subprocess.run([sys.executable, __file__, "--worker", contender, net_name, cache_dir or ""],
                          capture_output=True, text=True, env=env, timeout=1200)
    if proc.returncode != 0:
        raise RuntimeError(f"{contender} {net_name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(nets, rounds, contenders):
    results = {n: {c: [] for c in contenders} for n in nets}
    tmp = tempfile.mkdtemp(prefix="bench_compile_")
    try:
        caches = {}
        for net_name in nets:
            for c in contenders:
                if c.endswith("-cache"):
                    caches[net_name, c] = os.path.join(tmp, f"{net_name}-{c}")
                    measure(c, net_name, caches[net_name, c])      # fill the cache (not timed)
        for r in range(rounds):
            for net_name in nets:
                order = contenders[r % len(contenders):] + contenders[:r % len(contenders)]
                for c in order:
                    out = measure(c, net_name, caches.get((net_name, c)))
                    results[net_name][c].append(out)
                    print(f"  round {r + 1} {net_name:8s} {c:16s} first step {out['first_step_s']:7.2f} s "
                          f"(cpu {out['first_step_cpu_s']:6.2f} s)   "
                          f"step {out['step_s'] * 1000:8.1f} ms   jax cache hits {out['cache_hits']}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return results


def summarize(results):
    rows = ["| network | contender | first step (s) | its CPU time (s) | steady step (ms) | first step vs MindSpore's |",
            "| --- | --- | --- | --- | --- | --- |"]
    for net_name, per in results.items():
        med = {c: {k: statistics.median(o[k] for o in runs) for k in ("first_step_s", "first_step_cpu_s", "step_s")}
               for c, runs in per.items() if runs}
        ms_first = med.get("mindspore", {}).get("first_step_s")
        for c, m in med.items():
            ratio = f"{m['first_step_s'] / ms_first:.2f}x" if ms_first else "-"
            rows.append(f"| {net_name} | {c} | {m['first_step_s']:.2f} | {m['first_step_cpu_s']:.2f} | "
                        f"{m['step_s'] * 1000:.1f} | {ratio} |")
    return "\n".join(rows)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        print(json.dumps(worker(sys.argv[2], sys.argv[3], sys.argv[4] or None)))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nets", default="lenet5,resnet50")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--contenders", default=",".join(CONTENDERS))
    ap.add_argument("--quick", action="store_true", help="LeNet5 only, one round")
    ap.add_argument("--json", help="write the raw results here")
    args = ap.parse_args()
    nets = ["lenet5"] if args.quick else args.nets.split(",")
    results = run(nets, 1 if args.quick else args.rounds, args.contenders.split(","))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    print(summarize(results))


if __name__ == "__main__":
    main()
