"""Float32 gradient precision of a GraphCell on a DenseNet-121-like MINDIR, vs a float64 reference.

MindSpore 2.10 builds a DenseNet (``--layers 6,12,24,16``, growth 32, bn_size 4, compression 0.5:
DenseNet-121's layout and mindcv's names), exports its MINDIR and computes its own float32
gradient of ``sum(net(x) * r)`` with respect to every trainable parameter (eval mode, as
exported). In a process without MindSpore, msjax runs the same MINDIR with ``jax.vjp``:

* ``msjax f32``: the GraphCell's float32 gradient, as ``TrainOneStepCell`` gets it;
* ``float64``: the same graph evaluated with float64 parameters and input (``jax_enable_x64``),
  the reference.

Each parameter's error is ``max|g - g64| / max|g64|``; the table shows the worst per block for
MindSpore and msjax. ``--train`` computes the gradients in train mode (BatchNorm on batch
statistics) instead. ``--variants`` adds msjax runs with one suspect changed at a time
(every Conv2D, or every BatchNorm, computed in float64 and rounded back to float32), to find
where the error comes from.

    .venv/bin/python benchmarks/bench_graph_cell_grad.py --size 64
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

MAKE = r'''
import sys, json, numpy as np, mindspore as ms
from mindspore import nn, ops, Tensor
ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
folder, layers, size, batch, train = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1"
sys.path.insert(0, folder)
from densenet_ms import DenseNet, Probe
ms.set_seed(0)
net = DenseNet(layers)
net.set_train(False)
rng = np.random.default_rng(0)
x = rng.normal(0, 1, (batch, 3, size, size)).astype(np.float32)
ms.export(net, Tensor(x), file_name=folder + "/densenet", file_format="MINDIR")
r = rng.normal(0, 1, net(Tensor(x)).shape).astype(np.float32)
net.set_train(train)
weights = net.trainable_params()
probe = Probe(net, Tensor(r))
grads = ms.grad(probe, grad_position=None, weights=weights)(Tensor(x))
np.savez(folder + "/mindspore.npz", x=x, r=r, **{w.name: g.asnumpy() for w, g in zip(weights, grads)})
'''

NETS = r'''
from mindspore import nn, ops


class DenseLayer(nn.Cell):
    def __init__(self, cin, growth, bn_size):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(cin)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(cin, bn_size * growth, 1, has_bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth)
        self.relu2 = nn.ReLU()
        self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, pad_mode="pad", padding=1, has_bias=False)

    def construct(self, x):
        y = self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x))))))
        return ops.concat((x, y), 1)


class Transition(nn.Cell):
    def __init__(self, cin, cout):
        super().__init__()
        self.features = nn.SequentialCell([nn.BatchNorm2d(cin), nn.ReLU(), nn.Conv2d(cin, cout, 1, has_bias=False),
                                           nn.AvgPool2d(2, 2)])

    def construct(self, x):
        return self.features(x)


class DenseNet(nn.Cell):
    def __init__(self, layers, growth=32, init=64, bn_size=4, classes=10):
        super().__init__()
        cells = [nn.Conv2d(3, init, 7, 2, pad_mode="pad", padding=3, has_bias=False), nn.BatchNorm2d(init),
                 nn.ReLU(), nn.MaxPool2d(3, 2, pad_mode="same")]
        c = init
        for i, n in enumerate(layers):
            block = []
            for _ in range(n):
                block.append(DenseLayer(c, growth, bn_size))
                c += growth
            cells.append(nn.SequentialCell(block))
            if i != len(layers) - 1:
                cells.append(Transition(c, c // 2))
                c //= 2
        cells.append(nn.BatchNorm2d(c))
        cells.append(nn.ReLU())
        self.features = nn.SequentialCell(cells)
        self.classifier = nn.Dense(c, classes)

    def construct(self, x):
        return self.classifier(self.features(x).mean((2, 3)))


class Probe(nn.Cell):
    """sum(net(x) * r): its gradient is the vector-Jacobian product with r."""
    def __init__(self, net, r):
        super().__init__(auto_prefix=False)
        self.net, self.r = net, r

    def construct(self, x):
        return (self.net(x) * self.r).sum()
'''

GRAD = r'''
import dataclasses, json, sys
import jax
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
import numpy as np
from jax import lax
folder, variant, train = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
from msjax_exporters import from_mindir, graph_cell
UPCAST = {"conv-float64": ("Conv2D",), "batchnorm-float64": ("BatchNorm",)}


def upcast(fn):
    """``fn`` computed in float64 on float32 inputs, its outputs rounded back to float32."""
    def op(args, attrs):
        wide = [jnp.asarray(a, jnp.float64) if getattr(a, "dtype", None) == jnp.float32 else a for a in args]
        out = fn(wide, attrs)
        narrow = lambda o: o.astype(jnp.float32) if getattr(o, "dtype", None) == jnp.float64 else o
        return tuple(map(narrow, out)) if isinstance(out, tuple) else narrow(out)
    return op


for prim in UPCAST.get(variant, ()):        # one suspect at a time in float64, the rest float32
    from_mindir.OPS[prim] = upcast(from_mindir.OPS[prim])
graph = from_mindir.read(folder + "/densenet.mindir")
if train:
    graph = graph_cell._train_graph(graph)
flags = graph_cell.trainable(graph)
ms = np.load(folder + "/mindspore.npz")
x, r = ms["x"], ms["r"]


def grads(dtype):
    g = dataclasses.replace(graph, inputs=[(n, s, None) for n, s, _ in graph.inputs])
    params = {k: jnp.asarray(v, dtype if np.dtype(v.dtype).kind == "f" else v.dtype) for k, v in graph.parameters.items()}
    train_keys = [k for k in params if flags[k]]
    def loss(tp):
        out = from_mindir.run(g, dict(params, **tp), jnp.asarray(x, dtype))
        out = out[0] if isinstance(out, tuple) else out
        assert out.dtype == dtype, out.dtype
        return jnp.sum(out * jnp.asarray(r, dtype))
    res = jax.jit(jax.grad(loss))({k: params[k] for k in train_keys})
    assert all(v.dtype == dtype for v in res.values())
    return {k: np.asarray(v, np.float64) for k, v in res.items()}

ref = grads(jnp.float64) if variant == "float64" else None
if ref is not None:
    np.savez(folder + "/float64.npz", **ref)
else:
    np.savez(folder + f"/{variant}.npz", **grads(jnp.float32))
'''


def _run(code, *args):
    env = dict(os.environ, GLOG_v="3", PYTHONWARNINGS="ignore")
    subprocess.run([sys.executable, "-c", code, *map(str, args)], env=env, cwd=ROOT, check=True)


def _block(name, stages):
    """'features.8.3.norm1.gamma' -> 'denseblock3' (torchvision's and mindcv's stage names)."""
    parts = name.split(".")
    if parts[0] != "features":
        return parts[0]
    index = int(parts[1])
    if index < 4:
        return "stem"
    if index >= 4 + 2 * stages - 1:
        return "norm5"
    return f"{'transition' if (index - 4) % 2 else 'denseblock'}{(index - 4) // 2 + 1}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--layers", default="6,12,24,16")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--train", action="store_true")
    ap.add_argument("--variants", action="store_true")
    ap.add_argument("--keep", help="write the MINDIR and the gradients (.npz) into this folder")
    args = ap.parse_args()
    layers = [int(n) for n in args.layers.split(",")]
    train = "1" if args.train else "0"
    with tempfile.TemporaryDirectory(prefix="bench_grad_") as scratch:
        folder = args.keep or scratch
        os.makedirs(folder, exist_ok=True)
        Path(folder, "densenet_ms.py").write_text(NETS)
        _run(MAKE, folder, json.dumps(layers), args.size, args.batch, train)
        variants = ["float64", "msjax"] + (["conv-float64", "batchnorm-float64"] if args.variants else [])
        for variant in variants:
            _run(GRAD, folder, variant, train)
        ref = dict(np.load(Path(folder, "float64.npz")))
        contenders = {"MindSpore f32": dict(np.load(Path(folder, "mindspore.npz")))}
        for variant in variants[1:]:
            contenders[variant] = dict(np.load(Path(folder, f"{variant}.npz")))
        missing = set(ref) ^ (set(contenders["MindSpore f32"]) - {"x", "r"})
        if missing:
            raise SystemExit(f"gradient names differ: {sorted(missing)}")
        worst = {}
        for name, g64 in ref.items():
            scale = np.max(np.abs(g64)) or 1.0
            for who, grads in contenders.items():
                err = float(np.max(np.abs(grads[name] - g64)) / scale)
                key = (_block(name, len(layers)), who)
                if err > worst.get(key, (0, ""))[0]:
                    worst[key] = (err, name)
        order = ["stem"] + [f"{kind}{i + 1}" for i in range(len(layers)) for kind in ("denseblock", "transition")]
        order += ["norm5", "classifier"]
        blocks = [b for b in order if any((b, who) in worst for who in contenders)]
        print(f"DenseNet layers={layers} input {args.batch}x3x{args.size}x{args.size} "
              f"{'train' if args.train else 'eval'} mode: max|g - g64| / max|g64| per parameter, worst per stage")
        print(f"{'stage':12s}" + "".join(f"{who:>22s}" for who in contenders))
        for block in blocks:
            cells = [worst.get((block, who), (0.0, ""))[0] for who in contenders]
            print(f"{block:12s}" + "".join(f"{e:22.2e}" for e in cells))
        for who in contenders:
            err, name = max(worst[(b, who)] for b in blocks if (b, who) in worst)
            print(f"worst {who}: {err:.2e} at {name}")


if __name__ == "__main__":
    main()
