"""The best plain JAX + optax ResNet-50 train step we could write, against msjax's, on the same batch.

    .venv/bin/python benchmarks/bench_plain_jax.py [--hw 32] [--rounds 3]

How it is written: NHWC activations and HWIO kernels throughout (no transposes), every convolution
one ``lax.conv_general_dilated`` with SAME padding (TensorFlow's rule, as MindSpore's pad_mode="same"),
1x1 convolutions as ``x @ w`` on the strided view, BatchNorm in training mode with batch statistics
(biased variance to normalise, unbiased to update moving averages, momentum 0.9, eps 1e-4: the
model zoo's ``_bn``), the 3x3/s2 SAME max pool as ``lax.reduce_window``, a mean over H and W, a Dense
layer, sparse softmax cross entropy (mean), and ``optax.sgd(0.01, momentum=0.9)`` (MindSpore's
Momentum rule). Parameters, moving statistics and optimizer state go through one ``jax.jit`` with
donated buffers. msjax's step is TrainOneStepCell(WithLossCell(resnet50(10), loss), Momentum) as in
bench_lowering.py. Each contender runs in its own subprocess; they alternate across rounds.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_lowering import _timed  # noqa: E402

LAYERS = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))


def plain_step(hw):
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    from jax import lax
    rng = np.random.default_rng(0)

    def conv_param(k, cin, cout):
        return jnp.asarray(rng.standard_normal((k, k, cin, cout)).astype(np.float32) * np.sqrt(2 / (k * k * cout)))

    def bn_param(c):
        return {"gamma": jnp.ones(c), "beta": jnp.zeros(c)}, {"mean": jnp.zeros(c), "var": jnp.ones(c)}

    params, stats = {"conv1": conv_param(7, 3, 64)}, {}
    params["bn1"], stats["bn1"] = bn_param(64)
    blocks, cin = [], 64
    for width, n, stride in LAYERS:
        for i in range(n):
            name, s = f"b{len(blocks)}", stride if i == 0 else 1
            p = {"c1": conv_param(1, cin, width), "c2": conv_param(3, width, width), "c3": conv_param(1, width, 4 * width)}
            st = {}
            for bn, c in (("n1", width), ("n2", width), ("n3", 4 * width)):
                p[bn], st[bn] = bn_param(c)
            if s != 1 or cin != 4 * width:
                p["cd"] = conv_param(1, cin, 4 * width)
                p["nd"], st["nd"] = bn_param(4 * width)
            params[name], stats[name] = p, st
            blocks.append((name, s))
            cin = 4 * width
    params["fc"] = {"w": jnp.asarray(rng.standard_normal((2048, 10)).astype(np.float32) * 0.02), "b": jnp.zeros(10)}

    def conv(x, w, s):
        if w.shape[0] == 1:
            return x[:, ::s, ::s] @ w[0, 0]
        return lax.conv_general_dilated(x, w, (s, s), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))

    def bn(x, p, st):
        mean = jnp.mean(x, axis=(0, 1, 2))
        var = jnp.mean(jnp.square(x - mean), axis=(0, 1, 2))
        count = x.size // x.shape[-1]
        new = {"mean": 0.9 * st["mean"] + 0.1 * mean, "var": 0.9 * st["var"] + 0.1 * var * count / (count - 1)}
        scale = p["gamma"] * lax.rsqrt(var + 1e-4)
        return x * scale + (p["beta"] - mean * scale), jax.lax.stop_gradient(new)

    def forward(params, stats, x):
        new = {}
        x, new["bn1"] = bn(conv(x, params["conv1"], 2), params["bn1"], stats["bn1"])
        x = lax.reduce_window(jax.nn.relu(x), -jnp.inf, lax.max, (1, 3, 3, 1), (1, 2, 2, 1), "SAME")
        for name, s in blocks:
            p, st, ns = params[name], stats[name], {}
            out, ns["n1"] = bn(conv(x, p["c1"], 1), p["n1"], st["n1"])
            out, ns["n2"] = bn(conv(jax.nn.relu(out), p["c2"], s), p["n2"], st["n2"])
            out, ns["n3"] = bn(conv(jax.nn.relu(out), p["c3"], 1), p["n3"], st["n3"])
            if "cd" in p:
                x, ns["nd"] = bn(conv(x, p["cd"], s), p["nd"], st["nd"])
            x, new[name] = jax.nn.relu(out + x), ns
        return jnp.mean(x, axis=(1, 2)) @ params["fc"]["w"] + params["fc"]["b"], new

    opt = optax.sgd(0.01, momentum=0.9)

    @jax.jit
    def step(params, stats, opt_state, x, y):
        def loss_fn(params):
            logits, new = forward(params, stats, x)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), new
        (loss, new), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), new, opt_state, loss

    x = jnp.asarray(rng.standard_normal((8, hw, hw, 3)).astype(np.float32))
    y = jnp.asarray(rng.integers(0, 10, size=8).astype(np.int32))
    state = [params, stats, opt.init(params)]

    def call():
        state[0], state[1], state[2], loss = step(*state, x, y)
        return loss
    return call


def msjax_step(hw):
    import numpy as np

    import msjax as ms
    from msjax import nn
    from msjax.common.tensor import unwrap
    from msjax.models import resnet50
    ms.set_seed(1)
    rng = np.random.default_rng(0)
    net = resnet50(class_num=10)
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    step = nn.TrainOneStepCell(nn.WithLossCell(net, loss), nn.Momentum(net.trainable_params(), 0.01, 0.9))
    x = ms.Tensor(rng.standard_normal((8, 3, hw, hw)).astype(np.float32))
    y = ms.Tensor(rng.integers(0, 10, size=8).astype(np.int32))
    return lambda: unwrap(step(x, y))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker")
    parser.add_argument("--hw", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    if args.worker:
        call = (plain_step if args.worker == "plain" else msjax_step)(args.hw)
        print(json.dumps({"ms": 1e3 * _timed(call, 3, 5)}))
        return
    per = {"plain": [], "msjax": []}
    for r in range(args.rounds):
        for who in (["plain", "msjax"] if r % 2 == 0 else ["msjax", "plain"]):
            out = subprocess.run([sys.executable, __file__, "--worker", who, "--hw", str(args.hw)],
                                 capture_output=True, text=True, check=True)
            per[who].append(json.loads(out.stdout.strip().splitlines()[-1])["ms"])
            print(f"  [round {r + 1}] {who:6s} {per[who][-1]:.1f} ms/step", flush=True)
    med = {k: statistics.median(v) for k, v in per.items()}
    print(f"ResNet-50 step, batch 8 x 3 x {args.hw} x {args.hw}: plain JAX {med['plain']:.1f} ms, msjax "
          f"{med['msjax']:.1f} ms, msjax / plain = {med['msjax'] / med['plain']:.2f}x")


if __name__ == "__main__":
    main()
