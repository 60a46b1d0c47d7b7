"""Build time of a GraphCell from a MINDIR with ~600 parameters: msjax vs MindSpore 2.10.

MindSpore writes the file: ``--blocks`` (default 120) Conv2d(4, 4, 3) + BatchNorm2d(4) + ReLU
blocks, 5 tensors each (600). Each contender then runs in its own fresh process, ``--rounds``
times, alternating, and the table shows medians:

* ``load``: ``msjax.load(f)`` / ``mindspore.load(f)``
* ``GraphCell``: ``nn.GraphCell(<that>)``
* ``first call``: one forward call of the GraphCell (compile included)

``--baseline DIR`` adds the msjax package found in DIR as ``msjax-base`` (make one with
``mkdir /tmp/base && git archive <commit> | tar -x -C /tmp/base``).

    .venv/bin/python benchmarks/bench_graph_cell.py --rounds 3 --baseline /tmp/base
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

MAKE = r'''
import sys, numpy as np, mindspore as ms
from mindspore import nn, Tensor
ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
blocks = int(sys.argv[2])
net = nn.SequentialCell([nn.SequentialCell([nn.Conv2d(4, 4, 3, pad_mode="same", has_bias=False),
                                            nn.BatchNorm2d(4), nn.ReLU()]) for _ in range(blocks)])
net.set_train(False)
ms.export(net, Tensor(np.zeros((1, 4, 8, 8), np.float32)), file_name=sys.argv[1], file_format="MINDIR")
print(len(net.parameters_dict()))
'''

TIME = r'''
import json, sys, time
contender, path = sys.argv[1], sys.argv[2]
import numpy as np
if contender == "mindspore":
    import mindspore as fw
    from mindspore import nn, Tensor
    fw.set_context(mode=fw.GRAPH_MODE, device_target="CPU")
else:
    import msjax as fw
    import msjax_exporters
    from msjax import nn, Tensor
    print("from", fw.__file__, msjax_exporters.__file__, file=sys.stderr)
t0 = time.perf_counter()
graph = fw.load(path)
t1 = time.perf_counter()
cell = nn.GraphCell(graph)
t2 = time.perf_counter()
out = cell(Tensor(np.ones((1, 4, 8, 8), np.float32)))
np.asarray(out.asnumpy())
t3 = time.perf_counter()
print(json.dumps({"load": t1 - t0, "GraphCell": t2 - t1, "first call": t3 - t2,
                  "parameters": len(cell.parameters_dict())}))
'''


def _run(contender, path, baseline):
    env = dict(os.environ, GLOG_v="3", PYTHONWARNINGS="ignore")
    if contender == "msjax-base":       # its exporters/ is installed as msjax_exporters: a link does that
        shim = Path(path).parent / "shim"
        if not shim.exists():
            shim.mkdir()
            (shim / "msjax_exporters").symlink_to(Path(baseline).resolve() / "exporters")
        env["PYTHONPATH"] = os.pathsep.join([str(shim), str(Path(baseline).resolve())])
    out = subprocess.run([sys.executable, "-c", TIME, "mindspore" if contender == "mindspore" else "msjax",
                          path], env=env, cwd=baseline if contender == "msjax-base" else ROOT,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--blocks", type=int, default=120)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    contenders = ["msjax", "mindspore"] + (["msjax-base"] if args.baseline else [])
    with tempfile.TemporaryDirectory(prefix="bench_graph_cell_") as tmp:
        path = os.path.join(tmp, "deep")
        made = subprocess.run([sys.executable, "-c", MAKE, path, str(args.blocks)], capture_output=True,
                              text=True, check=True, env=dict(os.environ, GLOG_v="3"))
        print(f"MINDIR: {args.blocks} conv+BN blocks, {made.stdout.split()[-1]} parameters")
        runs = {c: [] for c in contenders}
        for _ in range(args.rounds):
            for contender in contenders:
                runs[contender].append(_run(contender, path + ".mindir", args.baseline))
    rows = ["load", "GraphCell", "first call"]
    summary = {c: {r: statistics.median(run[r] for run in runs[c]) for r in rows} for c in contenders}
    print(f"{'row':<12}" + "".join(f"{c:>14}" for c in contenders) + f"{'msjax/ms':>10}")
    for r in rows + ["load+cell"]:
        value = {c: (summary[c]["load"] + summary[c]["GraphCell"]) if r == "load+cell" else summary[c][r]
                 for c in contenders}
        print(f"{r:<12}" + "".join(f"{value[c]:>13.3f}s" for c in contenders)
              + f"{value['msjax'] / value['mindspore']:>10.2f}")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
