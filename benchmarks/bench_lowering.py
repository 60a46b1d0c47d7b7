"""msjax's fast lowering (msjax/ops/_lowering.py) against the canonical one, and the best single convolution.

    .venv/bin/python benchmarks/bench_lowering.py [--quick] [--rounds N] [--modes 'canonical;fast;fast,-im2col'] [--json F]

Each (mode, case) runs in its own subprocess with ``MSJAX_LOWERING=<mode>`` (``canonical``, ``fast``,
or ``fast,-im2col`` etc. to switch one fast path off); modes alternate across rounds and every
number is the median over rounds of a median over timing windows. Cases:

- ``resnet50_32`` / ``resnet50_64``: TrainOneStepCell(WithLossCell(ResNet50(10), SoftmaxCrossEntropyWithLogits
  (sparse, mean)), Momentum(0.01, 0.9)) on a fixed batch 8 x 3 x H x W, ms per step;
- ``lenet5``: the same step for LeNet5, batch 32 x 1 x 32 x 32;
- ``eval50`` / ``eval50_64``: ResNet50 eval forward at batch 8 x 3 x 32 x 32 / 3 x 64 x 64, in GFLOP/s,
  with the nominal FLOPs: what XLA's cost analysis counts for the canonical graph (never the rewritten one);
- ``--best-conv``: every distinct convolution of ResNet-50 at 3x32x32 and 3x64x64 (batch 8), alone,
  jitted in NHWC/HWIO (and NCHW), and the fastest GFLOP/s among them.
The machine is a shared 2-core VM: compare ratios within one run, not absolute times.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CASES = ["resnet50_32", "resnet50_64", "lenet5", "eval50", "eval50_64"]


def _timed(call, n, windows):
    call().block_until_ready()
    for _ in range(2):
        out = call()
    out.block_until_ready()
    times = []
    for _ in range(windows):
        t0 = time.perf_counter()
        for _ in range(n):
            out = call()
        out.block_until_ready()
        times.append((time.perf_counter() - t0) / n)
    return statistics.median(times)


def worker(case, quick):
    import jax
    import numpy as np

    import msjax as ms
    from msjax import nn
    from msjax.common.tensor import unwrap
    from msjax.models import LeNet5, resnet50
    from msjax.ops import _lowering
    ms.set_seed(1)
    rng = np.random.default_rng(0)
    lenet = case == "lenet5"
    hw = 64 if case.endswith("_64") else 32
    batch, shape = (32, (1, 32, 32)) if lenet else (8, (3, hw, hw))
    net = LeNet5() if lenet else resnet50(class_num=10)
    x = ms.Tensor(rng.standard_normal((batch, *shape)).astype(np.float32))
    y = ms.Tensor(rng.integers(0, 10, size=batch).astype(np.int32))
    windows = 2 if quick else 5
    if case.startswith("eval50"):
        net.set_train(False)
        seconds = _timed(lambda: unwrap(net(x)), 2 if quick else 10, windows)
        from flax import nnx
        graphdef, state = nnx.split(net)
        with _lowering.canonical():
            cost = jax.jit(lambda s, v: unwrap(nnx.merge(graphdef, s)(ms.Tensor(v)))).lower(
                state, unwrap(x)).compile().cost_analysis()
        cost = cost[0] if isinstance(cost, list) else cost
        return {"ms": 1e3 * seconds, "gflops": cost["flops"] / seconds / 1e9, "flops": cost["flops"]}
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    opt = nn.Momentum(net.trainable_params(), learning_rate=0.01, momentum=0.9)
    step = nn.TrainOneStepCell(nn.WithLossCell(net, loss), opt)
    n = (5 if quick else 20) if lenet else (1 if quick else 3)
    return {"ms": 1e3 * _timed(lambda: unwrap(step(x, y)), n, windows)}


def best_conv(quick):
    """GFLOP/s of each distinct ResNet-50 convolution alone (NHWC and NCHW), jitted."""
    import jax
    import jax.numpy as jnp
    from jax import lax
    shapes = set()
    for hw in (32, 64):  # (batch, h, w, cin, cout, k, stride) of the stem and each bottleneck's convs
        h = hw // 2
        shapes.add((8, hw, hw, 3, 64, 7, 2))
        h //= 2
        cin = 64
        for width, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            shapes |= {(8, h, h, cin, width, 1, 1), (8, h, h, width, width, 3, stride), (8, h, h, cin, 4 * width, 1, stride)}
            h //= stride if stride > 1 else 1
            shapes |= {(8, h, h, width, 4 * width, 1, 1), (8, h, h, 4 * width, width, 1, 1), (8, h, h, width, width, 3, 1)}
            cin = 4 * width
    rows = []
    key = jax.random.PRNGKey(0)
    for n, h, w, cin, cout, k, s in sorted(shapes)[: 4 if quick else None]:
        x = jax.random.normal(key, (n, h, w, cin))
        wt = jax.random.normal(key, (k, k, cin, cout))
        for layout in ("NHWC", "NCHW"):
            xx, ww = (x, wt) if layout == "NHWC" else (jnp.transpose(x, (0, 3, 1, 2)), jnp.transpose(wt, (3, 2, 0, 1)))
            dims = ("NHWC", "HWIO", "NHWC") if layout == "NHWC" else ("NCHW", "OIHW", "NCHW")
            f = jax.jit(lambda a, b, dims=dims, s=s: lax.conv_general_dilated(a, b, (s, s), "SAME", dimension_numbers=dims))
            out_hw = -(-h // s) * -(-w // s)
            flops = 2 * n * out_hw * cout * cin * k * k
            seconds = _timed(lambda f=f, xx=xx, ww=ww: f(xx, ww), 3 if quick else 20, 3 if quick else 5)
            rows.append({"shape": [n, h, w, cin, cout, k, s], "layout": layout, "ms": 1e3 * seconds,
                         "gflops": flops / seconds / 1e9})
    best = max(rows, key=lambda r: r["gflops"])
    return {"rows": rows, "best": best}


def measure(mode, case, quick):
    env = dict(os.environ, MSJAX_LOWERING=mode, PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, __file__, "--worker", case] + (["--quick"] if quick else []),
                          capture_output=True, text=True, env=env, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} {case} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--modes", default="canonical;fast", help="MSJAX_LOWERING values, ';'-separated")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--best-conv", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    if args.worker:
        result = best_conv(args.quick) if args.worker == "best_conv" else worker(args.worker, args.quick)
        print(json.dumps(result))
        return
    modes, cases = args.modes.split(";"), args.cases.split(",")
    per = {(m, c): [] for m in modes for c in cases}
    for r in range(1 if args.quick else args.rounds):
        for c in cases:
            shift = r % len(modes)
            for m in modes[shift:] + modes[:shift]:
                per[(m, c)].append(measure(m, c, args.quick))
                print(f"  [round {r + 1}] {c:12s} {m:22s} {per[(m, c)][-1]}", flush=True)
    report = {"cases": {}}
    print(f"\n| case | {' | '.join(modes)} | {' | '.join(f'{m} / {modes[0]}' for m in modes[1:])} |")
    print("|" + " --- |" * (1 + 2 * len(modes) - 1))
    for c in cases:
        key = "gflops" if c.startswith("eval50") else "ms"
        med = {m: statistics.median(v[key] for v in per[(m, c)]) for m in modes}
        report["cases"][c] = {"unit": "GFLOP/s" if key == "gflops" else "ms/step", "medians": med}
        ratios = [(med[modes[0]] / med[m]) if key == "ms" else med[m] / med[modes[0]] for m in modes[1:]]
        print(f"| {c} ({report['cases'][c]['unit']}) | " + " | ".join(f"{med[m]:.1f}" for m in modes) + " | "
              + " | ".join(f"{r:.2f}x" for r in ratios) + " |")
    if args.best_conv:
        report["best_conv"] = measure("fast", "best_conv", args.quick)
        b = report["best_conv"]["best"]
        print(f"best single convolution: {b['gflops']:.1f} GFLOP/s ({b['layout']}, n,h,w,cin,cout,k,s={b['shape']})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
