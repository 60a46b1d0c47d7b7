"""The best plain JAX + optax train steps we could write (ResNet-50, LeNet5), against msjax's, on the same batch.

    .venv/bin/python benchmarks/bench_plain_jax.py [--hw 32] [--rounds 3] [--nets resnet50,lenet5]
        [--variants all|best|NAME,...] [--eval] [--quick] [--json F]

How the plain steps are written (no msjax import): benchmarks/bench_plain_resnet.py and
bench_plain_lenet.py, whose docstrings list the variants. In short: NHWC activations and HWIO kernels
throughout, 1x1 convolutions as ``x @ w`` on the strided view, small-spatial 3x3 convolutions as
one matmul per live kernel tap (taps that read only padding dropped) or as im2col, BatchNorm in
training mode with batch statistics (biased variance normalises, unbiased variance updates the
moving averages, momentum 0.9, eps 1e-4: the model zoo's ``_bn``), sparse softmax cross entropy
(mean), ``optax.sgd(0.01, momentum=0.9)`` (MindSpore's Momentum rule), float32, one ``jax.jit`` with
donated buffers. ``BEST`` names the variant kept as the reference for each network; the others are
the documented alternatives (``--variants all``).

msjax's step is TrainOneStepCell(WithLossCell(net, SoftmaxCrossEntropyWithLogits(sparse, mean)),
Momentum(0.01, 0.9)) as bench_lowering.py builds it. Every contender runs in its own subprocess,
the order rotating across rounds; each number is the median over rounds of a median over timing
windows, wall and process CPU time. ``--eval`` adds the eval forward GFLOP/s of the best plain
ResNet-50 with the nominal FLOPs of the canonical network (XLA's cost analysis of the all-XLA-
convolution forward, which counts every tap, as bench_lowering.py's eval50 row does).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

BEST = {"resnet50": "taps16", "lenet5": "im2col_taps_first"}


def _timed(call, n, windows):
    """Median seconds per call over ``windows`` windows of ``n`` calls: (wall, process CPU)."""
    call().block_until_ready()
    for _ in range(2):
        out = call()
    out.block_until_ready()
    wall, cpu = [], []
    for _ in range(windows):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(n):
            out = call()
        out.block_until_ready()
        wall.append((time.perf_counter() - t0) / n)
        cpu.append((time.process_time() - c0) / n)
    return statistics.median(wall), statistics.median(cpu)


def _msjax_step(net_name, hw, train=True):
    import numpy as np

    import msjax as ms
    from msjax import nn
    from msjax.common.tensor import unwrap
    from msjax.models import LeNet5, resnet50
    ms.set_seed(1)
    rng = np.random.default_rng(0)
    lenet = net_name == "lenet5"
    batch, shape = (32, (1, 32, 32)) if lenet else (8, (3, hw, hw))
    net = LeNet5() if lenet else resnet50(class_num=10)
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    step = nn.TrainOneStepCell(nn.WithLossCell(net, loss), nn.Momentum(net.trainable_params(), 0.01, 0.9))
    step.set_train(train)  # as Model.train does; without it BatchNorm uses (and keeps) its moving statistics
    x = ms.Tensor(rng.standard_normal((batch, *shape)).astype(np.float32))
    y = ms.Tensor(rng.integers(0, 10, size=batch).astype(np.int32))
    return lambda: unwrap(step(x, y))


def _msjax_names(net_name, params, stats):
    """The plain trees as {msjax parameter name: array in msjax's layout (NCHW/OIHW, Dense (out, in))}."""
    import numpy as np
    params, stats = {k: v for k, v in params.items()}, dict(stats or {})
    out = {}
    if net_name == "lenet5":
        nchw = params["conv1"].ndim == 4 and params["conv1"].shape[0] == 6
        for k in ("conv1", "conv2"):
            out[f"{k}.weight"] = np.asarray(params[k]) if nchw else np.transpose(params[k], (3, 2, 0, 1))
        fc1 = np.asarray(params["fc1"]["w"])
        if not nchw:  # rows in (h, w, c) order -> MindSpore's (c, h, w)
            fc1 = fc1.reshape(5, 5, 16, -1).transpose(2, 0, 1, 3).reshape(400, -1)
        for k, w in (("fc1", fc1), ("fc2", params["fc2"]["w"]), ("fc3", params["fc3"]["w"])):
            out[f"{k}.weight"], out[f"{k}.bias"] = np.asarray(w).T, np.asarray(params[k]["b"])
        return out
    import bench_plain_resnet as R

    def bn(prefix, p, st):
        out.update({f"{prefix}.gamma": p["gamma"], f"{prefix}.beta": p["beta"], f"{prefix}.moving_mean": st["mean"],
                    f"{prefix}.moving_variance": st["var"]})
    out["conv1.weight"] = np.transpose(params["conv1"], (3, 2, 0, 1))
    bn("bn1", params["bn1"], stats["bn1"])
    names = [f"layer{li + 1}.{i}" for li, (_, n, _) in enumerate(R.LAYERS) for i in range(n)]
    for (block, _), ms_name in zip(R.init_blocks(), names):
        p, st = params[block], stats[block]
        for conv, norm, ms_conv, ms_norm in (("c1", "n1", "conv1", "bn1"), ("c2", "n2", "conv2", "bn2"),
                                             ("c3", "n3", "conv3", "bn3"), ("cd", "nd", "down_sample_layer.0",
                                                                            "down_sample_layer.1")):
            if conv in p:
                out[f"{ms_name}.{ms_conv}.weight"] = np.transpose(p[conv], (3, 2, 0, 1))
                bn(f"{ms_name}.{ms_norm}", p[norm], st[norm])
    out["end_point.weight"], out["end_point.bias"] = np.asarray(params["fc"]["w"]).T, params["fc"]["b"]
    return {k: np.asarray(v) for k, v in out.items()}


def check(net_name, variant, hw=32, steps=2):
    """{name: max |plain - msjax| / max |msjax|} for the loss and every parameter and moving statistic after
    ``steps`` train steps from the same weights on the same batch.

    ResNet-50 at batch 8 is badly conditioned (BatchNorm over 8 samples at layer4's 1x1 map amplifies
    rounding), so compare the median: against a float64 run of the plain step, float32 plain is
    2.6e-5 (median) / 2.7e-2 (worst) off at 3x32x32 and msjax 4.4e-5 / 1.2e-1; a semantic difference
    (padding side, biased variance, momentum convention) moves the median to 1e-2..1."""
    import numpy as np

    import msjax as ms
    from msjax import nn
    from msjax.common.tensor import unwrap
    from msjax.models import LeNet5, resnet50
    if net_name == "lenet5":
        import bench_plain_lenet
        call, _, state, (x, y) = bench_plain_lenet.build(variant)
        stats_of = lambda: None  # noqa: E731
        net = LeNet5()
    else:
        import bench_plain_resnet
        call, _, state, (x, y) = bench_plain_resnet.build(hw, variant)
        stats_of = lambda: state[1]  # noqa: E731
        net = resnet50(class_num=10)
    start = _msjax_names(net_name, state[0], stats_of())
    for name, param in net.parameters_and_names():
        param.set_data(ms.Tensor(start[name]))
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    step = nn.TrainOneStepCell(nn.WithLossCell(net, loss), nn.Momentum(net.trainable_params(), 0.01, 0.9))
    step.set_train()
    xm = np.asarray(x) if net_name == "lenet5" and x.shape[1] == 1 else np.transpose(x, (0, 3, 1, 2))  # to NCHW
    xm, ym = ms.Tensor(np.ascontiguousarray(xm)), ms.Tensor(np.asarray(y))
    diffs = {}
    for _ in range(steps):
        lp, lm = float(call()), float(np.asarray(unwrap(step(xm, ym))))
        diffs["loss"] = max(diffs.get("loss", 0.0), abs(lp - lm) / abs(lm))
    after = _msjax_names(net_name, state[0], stats_of())
    for name, param in net.parameters_and_names():
        ref = np.asarray(unwrap(param))
        diffs[name] = float(np.max(np.abs(after[name] - ref)) / max(np.max(np.abs(ref)), 1e-12))
    return diffs


def _eval_gflops(hw, variant, quick):
    import jax

    import bench_plain_resnet as R
    _, _, state, (x, _) = R.build(hw, variant)
    params, stats = state[0], state[1]
    fast = jax.jit(R.eval_forward(variant))
    flops = jax.jit(R.eval_forward("xla")).lower(params, stats, x).compile().cost_analysis()
    flops = (flops[0] if isinstance(flops, list) else flops)["flops"]
    wall, cpu = _timed(lambda: fast(params, stats, x), 2 if quick else 10, 2 if quick else 5)
    return {"ms": 1e3 * wall, "cpu_ms": 1e3 * cpu, "gflops": flops / wall / 1e9, "flops": flops}


def worker(net_name, who, hw, quick):
    if who.startswith("check:"):
        diffs = check(net_name, who[6:], hw)
        name = max(diffs, key=diffs.get)
        return {"variant": who[6:], "loss": diffs["loss"], "median": statistics.median(diffs.values()),
                "worst": name, "worst_rel": diffs[name]}
    if who == "eval":
        return _eval_gflops(hw, BEST["resnet50"], quick)
    if who in ("msjax", "msjax_untrained_bn"):
        call = _msjax_step(net_name, hw, train=who == "msjax")
    elif net_name == "lenet5":
        import bench_plain_lenet
        call = bench_plain_lenet.build(who)[0]
    else:
        import bench_plain_resnet
        call = bench_plain_resnet.build(hw, who)[0]
    lenet = net_name == "lenet5"
    n, windows = ((5 if quick else 20) if lenet else (1 if quick else 3)), (2 if quick else 5)
    wall, cpu = _timed(call, n, windows)
    return {"ms": 1e3 * wall, "cpu_ms": 1e3 * cpu}


def _variants(net_name, spec):
    if spec == "best":
        return [BEST[net_name]]
    if spec == "all":
        import bench_plain_lenet
        import bench_plain_resnet
        return list((bench_plain_lenet if net_name == "lenet5" else bench_plain_resnet).VARIANTS)
    return [v for v in spec.split(",") if v in _variants(net_name, "all")]


def measure(net_name, who, hw, quick):
    cmd = [sys.executable, *(["-S"] if sys.flags.no_site else []), __file__, "--worker", who, "--nets", net_name, "--hw", str(hw)] + (["--quick"] if quick else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONWARNINGS="ignore"), timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"{net_name} {who} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker")
    parser.add_argument("--hw", type=int, default=32, help="ResNet-50 input height and width")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--nets", default="resnet50,lenet5")
    parser.add_argument("--variants", default="best", help="plain variants: best, all, or names")
    parser.add_argument("--eval", action="store_true", help="also the best plain ResNet-50's eval forward GFLOP/s")
    parser.add_argument("--quick", action="store_true", help="one round, short windows, best variants only")
    parser.add_argument("--untrained-bn", action="store_true",
                        help="also msjax's step without set_train() (bench_lowering.py's: BatchNorm on moving statistics)")
    parser.add_argument("--check", action="store_true", help="compare each plain variant with msjax from the same weights")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.nets, args.worker, args.hw, args.quick)))
        return
    rounds = 1 if args.quick else args.rounds
    report = {}
    if args.check:
        for net_name in args.nets.split(","):
            for v in _variants(net_name, args.variants):
                print(json.dumps(measure(net_name, f"check:{v}", args.hw, True)), flush=True)
        return
    for net_name in args.nets.split(","):
        who = _variants(net_name, "best" if args.quick else args.variants) + ["msjax"] + (
            ["msjax_untrained_bn"] if args.untrained_bn else [])
        per = {w: [] for w in who}
        for r in range(rounds):
            shift = r % len(who)
            for w in who[shift:] + who[:shift]:
                per[w].append(measure(net_name, w, args.hw, args.quick))
                print(f"  [round {r + 1}] {net_name} {w:22s} {per[w][-1]['ms']:8.1f} ms/step "
                      f"(cpu {per[w][-1]['cpu_ms']:.1f} ms)", flush=True)
        med = {w: {k: statistics.median(v[k] for v in per[w]) for k in ("ms", "cpu_ms")} for w in who}
        best = BEST[net_name] if BEST[net_name] in med else who[0]
        shape = "32 x 1x32x32" if net_name == "lenet5" else f"8 x 3x{args.hw}x{args.hw}"
        print(f"\n{net_name}, batch {shape}: | contender | ms/step | cpu ms/step | / {best} |\n| --- | ---: | ---: | ---: |")
        for w in who:
            print(f"| {w} | {med[w]['ms']:.1f} | {med[w]['cpu_ms']:.1f} | {med[w]['ms'] / med[best]['ms']:.2f}x |")
        print(f"msjax / plain ({best}) = {med['msjax']['ms'] / med[best]['ms']:.2f}x wall, "
              f"{med['msjax']['cpu_ms'] / med[best]['cpu_ms']:.2f}x cpu\n", flush=True)
        report[net_name] = {"shape": shape, "best": best, "medians": med, "runs": per}
    if args.eval:
        e = measure("resnet50", "eval", 32, args.quick)
        print(f"best plain ResNet-50 ({BEST['resnet50']}) eval forward, batch 8 x 3x32x32: {e['ms']:.1f} ms, "
              f"{e['gflops']:.1f} GFLOP/s ({e['flops'] / 1e9:.2f} GFLOP nominal)")
        report["eval50"] = e
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
