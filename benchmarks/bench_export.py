"""Export and MINDIR execution: msjax vs MindSpore 2.10 on LeNet5 and ResNet-50.

    .venv/bin/python benchmarks/bench_export.py [--quick] [--nets lenet5,resnet50] [--rounds N] [--json F]

* export: ``export(net, x, file_name=..., file_format=F)`` for MINDIR, ONNX and AIR, one fresh
  process per contender and round, each format timed on its first call (tracing included);
  MindSpore's rows say where its CPU build cannot write a format.
* MINDIR execution: the MINDIR MindSpore wrote in the export step, run by each contender's
  GraphCell in a fresh process: ``load(f)`` + ``nn.GraphCell(graph)``, the first call (compile
  included) and steady calls per second.

LeNet5 takes 1x1x32x32 inputs, ResNet-50 (class_num=10) 1x3x32x32. Contenders alternate across
rounds; medians over rounds.
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

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "mindspore"
FORMATS = ["MINDIR", "ONNX", "AIR"]
SHAPES = {"lenet5": (1, 1, 32, 32), "resnet50": (1, 3, 32, 32)}
SUFFIX = {"MINDIR": ".mindir", "ONNX": ".onnx", "AIR": ".air"}


def _framework(contender):
    import numpy as np
    if contender == "mindspore":
        sys.path.insert(0, str(FIXTURES))
        import mindspore as fw
        from mindspore import Tensor, nn
        from ms_models import LeNet5, resnet50
        fw.set_context(mode=fw.GRAPH_MODE, device_target="CPU")
    else:
        import msjax as fw
        from msjax import Tensor, nn
        from msjax.models import LeNet5, resnet50
    fw.set_seed(1)
    return fw, Tensor, nn, {"lenet5": LeNet5, "resnet50": lambda: resnet50(class_num=10)}, np


def export_worker(contender, nets, tmp):
    fw, Tensor, _, makers, np = _framework(contender)
    out = {}
    for net_name in nets:
        net = makers[net_name]()
        net.set_train(False)
        x = Tensor(np.ones(SHAPES[net_name], np.float32))
        for fmt in FORMATS:
            base = os.path.join(tmp, f"{net_name}_{contender}")
            t0 = time.perf_counter()
            try:
                fw.export(net, x, file_name=base, file_format=fmt)
            except Exception as err:  # noqa: BLE001 - a format this build cannot write: say so
                out[f"{net_name}/{fmt}"] = {"error": f"{type(err).__name__}: {(str(err).splitlines() or [''])[0][:200]}"}
                continue
            out[f"{net_name}/{fmt}"] = {"time_s": time.perf_counter() - t0,
                                        "bytes": os.path.getsize(base + SUFFIX[fmt])}
    return out


def graph_cell_worker(contender, path, shape, window_s=1.0):
    fw, Tensor, nn, _, np = _framework(contender)
    x = Tensor(np.ones(shape, np.float32))
    t0 = time.perf_counter()
    cell = nn.GraphCell(fw.load(path))
    t1 = time.perf_counter()
    cell(x).asnumpy()
    t2 = time.perf_counter()
    calls = 0
    while time.perf_counter() - t2 < window_s or calls < 3:
        out = cell(x)
        calls += 1
    out.asnumpy()
    return {"load_build_s": t1 - t0, "first_call_s": t2 - t1, "calls_per_s": calls / (time.perf_counter() - t2)}


# ------------------------------------------------------------------ driver side

def _sub(*args):
    env = dict(os.environ, GLOG_v="3", PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, __file__, "--worker", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=900, cwd=args[-1] if args[0] == "export" else None)
    if proc.returncode != 0:
        raise RuntimeError(f"{args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def plan_export(nets, rounds, contenders, tmp):
    """Export jobs: (key, thunk) with key ("export", round, contender); each round its own folder."""
    jobs = []
    for r in range(rounds):
        shift = r % len(contenders)
        for c in contenders[shift:] + contenders[:shift]:
            folder = os.path.join(tmp, f"export_{r}")
            os.makedirs(folder, exist_ok=True)
            jobs.append((("export", r, c), lambda c=c, f=folder: _sub("export", c, ",".join(nets), f)))
    return jobs


def plan_graph_cell(nets, rounds, contenders, tmp, window_s):
    """GraphCell jobs on MindSpore's MINDIRs of round 0's export (run after the export jobs)."""
    jobs = []
    for net_name in nets:
        path = os.path.join(tmp, "export_0", f"{net_name}_mindspore.mindir")
        if not os.path.exists(path):   # MindSpore absent: the fixture LeNet5 MINDIR it wrote earlier
            path = str(FIXTURES / "lenet5.mindir") if net_name == "lenet5" else None
        if path is None:
            continue
        for r in range(rounds):
            shift = r % len(contenders)
            for c in contenders[shift:] + contenders[:shift]:
                jobs.append(((net_name, r, c), lambda c=c, p=path, n=net_name: _sub(
                    "graph_cell", c, p, json.dumps(SHAPES[n]), window_s)))
    return jobs


def collect_export(results, nets, contenders):
    rows = []
    for net_name in nets:
        for fmt in FORMATS:
            key = f"{net_name}/{fmt}"
            values, notes = {}, {}
            for c in contenders:
                runs = [res[key] for (s, _, cc), res in results.items() if s == "export" and cc == c]
                ok = [x["time_s"] for x in runs if "time_s" in x]
                if ok:
                    values[c] = statistics.median(ok)
                elif runs:
                    notes[c] = runs[0]["error"]
            row = {"row": f"{net_name} {fmt} export, s", "values": values, "notes": notes, "ratios": {}}
            if "msjax" in values and "mindspore" in values:
                row["ratios"]["msjax/mindspore"] = values["msjax"] / values["mindspore"]
            rows.append(row)
    return {"rows": rows}


def collect_graph_cell(results, nets, contenders):
    rows = []
    for net_name in nets:
        for key, label in [("load_build_s", "load + GraphCell, s"), ("first_call_s", "first call (compile), s"),
                           ("calls_per_s", "steady calls/s")]:
            values = {c: statistics.median(res[key] for (n, _, cc), res in results.items()
                                           if n == net_name and cc == c)
                      for c in contenders if any(n == net_name and cc == c for (n, _, cc) in results)}
            if not values:
                continue
            row = {"row": f"{net_name} {label}", "values": values, "ratios": {}}
            if "msjax" in values and "mindspore" in values:
                row["ratios"]["msjax/mindspore"] = values["msjax"] / values["mindspore"]
            rows.append(row)
    return {"rows": rows}


def print_rows(title, section):
    print(f"\n=== {title} ===")
    for row in section["rows"]:
        vals = "  ".join(f"{c} {v:.3f}" for c, v in row["values"].items())
        notes = "  ".join(f"{c}: {n[:60]}" for c, n in row.get("notes", {}).items())
        ratio = "  ".join(f"{k} {v:.2f}x" for k, v in row["ratios"].items())
        print(f"  {row['row']:36s} {vals}  {ratio}  {notes}")


def run(nets, rounds, contenders, window_s=1.0):
    with tempfile.TemporaryDirectory(prefix="bench_export_") as tmp:
        export = {k: job() for k, job in plan_export(nets, rounds, contenders, tmp)}
        graph = {k: job() for k, job in plan_graph_cell(nets, rounds, contenders, tmp, window_s)}
    report = {"export": collect_export(export, nets, contenders),
              "graph_cell": collect_graph_cell(graph, nets, contenders)}
    print_rows("export", report["export"])
    print_rows("MINDIR execution (MindSpore's MINDIR)", report["graph_cell"])
    return report


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        kind, rest = sys.argv[2], sys.argv[3:]
        if kind == "export":
            result = export_worker(rest[0], rest[1].split(","), rest[2])
        else:
            result = graph_cell_worker(rest[0], rest[1], tuple(json.loads(rest[2])), float(rest[3]))
        print(json.dumps(result))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one round, short call windows")
    ap.add_argument("--nets", default="lenet5,resnet50")
    ap.add_argument("--rounds", type=int, help="default 2 (--quick 1)")
    ap.add_argument("--json", help="also write the summary to this file")
    args = ap.parse_args()
    report = run(args.nets.split(","), args.rounds or (1 if args.quick else 2), ["msjax", "mindspore"],
                 0.3 if args.quick else 2.0)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
