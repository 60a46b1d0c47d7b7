"""Every msjax benchmark in one run, with ratios against the peers measured in the same run.

    .venv/bin/python benchmarks/run_all.py [--quick] [--json F] [--markdown F] [--sections ...] [--jobs N]

Sections (each contender in its own subprocess; MindSpore is never imported here):

* train: LeNet5 (batch 32, 1x32x32), ResNet-50 (batch 8, 3x32x32 and 3x64x64; not in --quick),
  msjax vs MindSpore 2.10 (``bench_train``);
* checkpoint: save/load of ResNet-50's parameters (and 1 GiB without --quick): raw
  write/readinto, msjax, MindSpore, safetensors, torch, orbax; the issue-12 goals; subset loads
  and async saves (``bench_checkpoint``);
* export: MINDIR/ONNX/AIR export of LeNet5 and ResNet-50 (--quick: LeNet5), msjax vs MindSpore
  (``bench_export``);
* graph_cell: MindSpore-written MINDIRs run by msjax's GraphCell vs MindSpore's (``bench_export``);
* async: ResNet-50 ``Model.train`` with a save every 50 steps, ``async_save=True`` vs no
  ModelCheckpoint (``bench_async``; --quick: LeNet5, a save every 2 steps).

``--quick`` (CI) shortens every window and set so the whole run takes a minute or two on two
cores, and runs two measurements at a time (``--jobs 2``): its numbers prove the benchmark runs,
they are not for comparison. A full run (about 20-25 minutes on two cores) runs one at a time.
If MindSpore is not importable its rows say so.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import importlib.metadata
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_async  # noqa: E402
import bench_checkpoint  # noqa: E402
import bench_export  # noqa: E402
import bench_train  # noqa: E402

SECTIONS = ["train", "checkpoint", "export", "graph_cell", "async"]
NETS = ["lenet5", "resnet50", "resnet50_64"]
PACKAGES = ["jax", "jaxlib", "flax", "optax", "numpy", "mindspore", "torch", "safetensors", "orbax-checkpoint",
            "onnxruntime"]


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = next(int(x.split()[1]) for x in Path("/proc/meminfo").read_text().splitlines()
                   if x.startswith("MemTotal")) * 1024
    except (OSError, StopIteration):
        mem = 0
    versions = {}
    for pkg in PACKAGES:
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = None
    return {"cpu": cpu, "cores": os.cpu_count(), "ram_gib": round(mem / 2**30, 1),
            "python": platform.python_version(), "system": f"{platform.system()} {platform.release()}",
            "versions": versions}


def machine_line(m) -> str:
    v = ", ".join(f"{k} {x}" for k, x in m["versions"].items() if x)
    return f"{m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM; Python {m['python']}, {v}"


def mindspore_importable() -> tuple[bool, str]:
    proc = subprocess.run([sys.executable, "-c", "import mindspore"], capture_output=True, text=True,
                          env=dict(os.environ, GLOG_v="3"), timeout=300)
    return proc.returncode == 0, (proc.stderr.strip().splitlines() or [""])[-1]


def _pool(jobs, workers):
    """Run (key, thunk) jobs, ``workers`` at a time; {key: result or {"error": text}}."""
    def one(job):
        key, thunk = job
        try:
            return key, thunk()
        except Exception as err:  # noqa: BLE001 - one contender failing must not lose the rest
            print(f"  !! {key}: {type(err).__name__}: {str(err)[-1500:]}", flush=True)
            return key, {"error": f"{type(err).__name__}: {str(err)[-300:]}"}

    if workers <= 1:
        return dict(map(one, jobs))
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return dict(pool.map(one, jobs))


def _ok(results):
    return {k: v for k, v in results.items() if not (isinstance(v, dict) and "error" in v)}


def _failed(results):
    return {"/".join(map(str, k)): v["error"] for k, v in results.items() if isinstance(v, dict) and "error" in v}


def run(sections, quick, workers, contenders):
    report = {}
    train_rounds = 1 if quick else 2
    ckpt_sets = ["resnet50"] if quick else ["resnet50", "1gib"]
    export_nets = ["lenet5"] if quick else ["lenet5", "resnet50"]
    train_nets = ["lenet5"] if quick else NETS      # --quick: no ResNet-50 compiles
    with tempfile.TemporaryDirectory(prefix="msjax_run_all_") as tmp:
        groups = {}
        if "train" in sections:
            groups["train"] = [(("train",) + k, j)
                               for k, j in bench_train.plan(train_nets, train_rounds, quick, contenders)]
        if "checkpoint" in sections:
            ck = [c for c in bench_checkpoint.CONTENDERS if c != "mindspore" or "mindspore" in contenders]
            groups["checkpoint"] = [(("checkpoint",) + k, j) for k, j in bench_checkpoint.plan(
                1 if quick else 3, ckpt_sets, tmp, ck, quick)]
        if "export" in sections or "graph_cell" in sections:
            groups["export"] = [(("export",) + k, j) for k, j in bench_export.plan_export(
                export_nets, 1 if quick else 2, contenders, tmp)]
        if "async" in sections:
            every, reps = (2, 1) if quick else (50, 3)
            net = "lenet5" if quick else "resnet50"
            groups["async"] = [(("async",), lambda: bench_async.measure(every, reps, ["none", "async"], net))]
        # the long single-process async run first, so that two workers overlap it with the rest
        order = ["async", "train", "checkpoint", "export"]
        results = _pool([job for g in order for job in groups.get(g, [])], workers)
        by = {g: {k[1:]: v for k, v in results.items() if k[0] == g} for g in groups}
        if "graph_cell" in sections:
            jobs = bench_export.plan_graph_cell(export_nets, 1 if quick else 2, contenders, tmp,
                                                0.3 if quick else 2.0)
            by["graph_cell"] = _pool(jobs, workers)
    if "train" in by:
        report["train"] = {"nets": bench_train.collect(
            train_nets, quick, contenders, _ok(by["train"])), "failed": _failed(by["train"])}
    if "checkpoint" in by:
        report["checkpoint"] = {"sets": bench_checkpoint.collect(ckpt_sets, _ok(by["checkpoint"]), ck),
                                "failed": _failed(by["checkpoint"])}
    if "export" in by and "export" in sections:
        report["export"] = dict(bench_export.collect_export(_ok(by["export"]), export_nets, contenders),
                                failed=_failed(by["export"]))
        bench_export.print_rows("export", report["export"])
    if "graph_cell" in by:
        report["graph_cell"] = dict(bench_export.collect_graph_cell(_ok(by["graph_cell"]), export_nets,
                                                                    contenders), failed=_failed(by["graph_cell"]))
        bench_export.print_rows("MINDIR execution", report["graph_cell"])
    if "async" in by:
        res = by["async"][()]
        report["async"] = bench_async.summarize(res) if "error" not in res else {"rows": [], "failed": res}
    return report


# ------------------------------------------------------------------ markdown

def _fmt(v):
    if v is None or not isinstance(v, (int, float)) or not math.isfinite(v):
        return "-"
    a = abs(v)
    return f"{v:.0f}" if a >= 1000 else f"{v:.1f}" if a >= 100 else f"{v:.2f}" if a >= 1 else f"{v:.3f}"


def _table(rows, contenders, notes_col=True):
    head = ["", *contenders] + [f"msjax/{c}" for c in contenders if c != "msjax"] + (["note"] if notes_col else [])
    out = ["| " + " | ".join(head) + " |", "| --- |" + " ---: |" * (len(head) - 1 - notes_col)
           + (" --- |" if notes_col else "")]
    for row in rows:
        cells = [row["row"]] + [_fmt(row["values"].get(c)) for c in contenders]
        cells += [(_fmt(row["ratios"].get(f"msjax/{c}")) + "x") if row["ratios"].get(f"msjax/{c}") else ""
                  for c in contenders if c != "msjax"]
        if notes_col:
            cells.append("; ".join(f"{c}: {n[:90]}" for c, n in row.get("notes", {}).items()))
        out.append("| " + " | ".join(cells) + " |")
    return out


def markdown(report) -> str:
    lines = [f"Machine: {report['machine_line']}", "", f"Command: `{report['command']}` ({report['wall_s']:.0f} s"
             f"{'; --quick: not for comparison' if report['quick'] else ''}).", ""]
    if report.get("mindspore_note"):
        lines += [f"MindSpore: {report['mindspore_note']}", ""]
    cs = report["contenders"]
    train = report.get("train")
    if train:
        for net, sec in train["nets"].items():
            cfg = sec["config"]
            lines += [f"### Training: {net} (batch {cfg['batch']} x {'x'.join(map(str, cfg['shape']))})", ""]
            lines += _table(sec["rows"], [c for c in cs if c in sec["medians"]], notes_col=False) + [""]
    ck = report.get("checkpoint")
    if ck:
        cols = [("save", "fresh save s"), ("load", "fresh load s"), ("warm_save", "steady save s"),
                ("warm_load", "steady load s"), ("load_rss", "load +RSS / data")]
        for set_name, sec in ck["sets"].items():
            lines += [f"### Checkpoint I/O: {set_name} ({sec['nbytes'] / 2**20:.0f} MiB)", "",
                      "| contender | " + " | ".join(h for _, h in cols) + " | msjax / it (steady save, load) |",
                      "| --- |" + " ---: |" * (len(cols) + 1)]
            for row in sec["rows"]:
                r = next(iter(row["ratios"].values()), None)
                ratio = f"{_fmt(r['warm_save'])}x, {_fmt(r['warm_load'])}x" if r else ""
                lines.append(f"| {row['row']} | " + " | ".join(_fmt(row["values"][k]) for k, _ in cols)
                             + f" | {ratio} |")
            lines += ["", "| goal (issue 12) | msjax | met |", "| --- | ---: | --- |"]
            lines += [f"| {g['row']} | {_fmt(g['values']['msjax'])} | {'yes' if g['met'] else '**no**'} |"
                      for g in sec["goals"]]
            lines += [f"| {k} | {_fmt(v)} | |" for k, v in sec["extras"].items()] + [""]
    for key, title in [("export", "Export"), ("graph_cell", "MINDIR execution (MindSpore's MINDIR, GraphCell)")]:
        if report.get(key):
            lines += [f"### {title}", ""] + _table(report[key]["rows"], cs) + [""]
    if report.get("async"):
        a = report["async"]
        cfg = a.get("config", {})
        lines += [f"### Async checkpointing: ResNet-50, a save every {cfg.get('every')} steps, windows of "
                  f"{cfg.get('steps')} steps", ""] + _table(a["rows"], ["msjax"], notes_col=False) + [""]
    failed = {s: report[s].get("failed") for s in SECTIONS if isinstance(report.get(s), dict)}
    failed = {s: f for s, f in failed.items() if f}
    if failed:
        lines += ["Failed measurements: " + json.dumps(failed)[:2000], ""]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="CI: tiny windows and sets, two at a time")
    ap.add_argument("--json", help="write the whole report here")
    ap.add_argument("--markdown", help="write the markdown tables here")
    ap.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {SECTIONS}")
    ap.add_argument("--jobs", type=int, help="measurements at a time (default 1; --quick 2)")
    ap.add_argument("--no-mindspore", action="store_true", help="leave MindSpore out")
    args = ap.parse_args()
    sections = args.sections.split(",")
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        ap.error(f"unknown sections {sorted(unknown)}")
    t0 = time.perf_counter()
    m = machine()
    print("machine:", machine_line(m), flush=True)
    ok, why = (False, "left out (--no-mindspore)") if args.no_mindspore else mindspore_importable()
    contenders = ["msjax", "mindspore"] if ok else ["msjax"]
    note = None if ok else f"not measured: MindSpore is not importable ({why})"
    if note:
        print(note)
    report = run(sections, args.quick, args.jobs or (2 if args.quick else 1), contenders)
    report.update(machine=m, machine_line=machine_line(m), quick=args.quick, contenders=contenders,
                  mindspore_note=note, wall_s=time.perf_counter() - t0,
                  command="benchmarks/run_all.py" + (" --quick" if args.quick else ""))
    text = markdown(report)
    print("\n" + text)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=str))
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")


if __name__ == "__main__":
    main()
