"""msjax vs MindSpore 2.10 vs the safetensors library (vs a raw write/readinto) on .ckpt save/load.

    .venv/bin/python benchmarks/bench_checkpoint.py [--rounds 3] [--sets resnet50,1gib]

Sets: "resnet50" (the 267 Float32 tensors of resnet50_params.txt, 94 MB) and "1gib" (200 Float32
tensors, 1 GiB). Every measurement runs in its own subprocess (so peak RSS belongs to one
contender, and MindSpore's import never touches msjax's process); contenders alternate within
each round; the table shows medians over rounds. Files stay in the page cache, for every
contender alike, and every measurement starts after os.sync() so that no contender pays for the
previous one's writeback. "extra RSS" is the peak RSS a save or load adds over the process's state just
before it (the data itself, for a save), as a fraction of the data size. "async blocked" is the
time save_checkpoint(async_save=...) holds the caller: for jax arrays (the training case; no
copy), for numpy arrays with async_save=True (copied for the snapshot) and with "process" (a
fork's copy-on-write snapshot).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "mindspore"
CONTENDERS = ["raw", "msjax", "mindspore", "safetensors"]


def shapes(set_name):
    if set_name == "1gib":
        return [(f"layer{i}.weight", [1342177]) for i in range(200)]
    lines = (FIXTURES / "resnet50_params.txt").read_text().splitlines()
    return [(name, json.loads(dims)) for name, dims, _ in (line.split("\t") for line in lines)]


def make_data(set_name):
    import numpy as np
    out = {}
    for i, (name, shape) in enumerate(shapes(set_name)):
        n = int(np.prod(shape)) if shape else 1
        out[name] = (np.arange(n, dtype=np.float32) * np.float32(1e-6) + np.float32(i)).reshape(shape)
    return out


def peak_rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def rss_now():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# ------------------------------------------------------------------ worker side (one measurement)

def warm_worker(contender, set_name, path, repeats=5):
    """Save and load ``repeats`` times in one process, as a training job checkpoints again and again.

    Fresh-process numbers include first-touch page faults on new memory, which on a virtual machine
    can cost seconds per GiB and swamp the codec; steady state is what a long training run sees.
    """
    import numpy as np
    data = make_data(set_name)
    if contender == "mindspore":
        import mindspore as ms
        obj = [{"name": k, "data": ms.Tensor.from_numpy(v)} for k, v in data.items()]
        save, load = (lambda: ms.save_checkpoint(obj, path)), (lambda: ms.load_checkpoint(path))
    elif contender == "safetensors":
        from safetensors.numpy import load_file, save_file
        save, load = (lambda: save_file(data, path)), (lambda: load_file(path))
    elif contender == "raw":
        shp = shapes(set_name)

        def save():
            with open(path, "wb", buffering=0) as f:
                for v in data.values():
                    f.write(memoryview(v.reshape(-1).view(np.uint8)))

        def load():
            out = {}
            with open(path, "rb", buffering=0) as f:
                for name, shape in shp:
                    out[name] = a = np.empty(shape, np.float32)
                    f.readinto(memoryview(a.reshape(-1).view(np.uint8)))
            return out
    else:
        import msjax
        save = lambda: msjax.save_checkpoint(data, path, fsync=False)  # noqa: E731
        load = lambda: msjax.load_checkpoint(path)  # noqa: E731
    saves, loads = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        save()
        saves.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        loaded = load()
        loads.append(time.perf_counter() - t0)
        del loaded
    return {"save": statistics.median(saves[1:]), "load": statistics.median(loads[1:])}


def worker(contender, op, set_name, path):
    import numpy as np
    if op == "warm":
        return warm_worker(contender, set_name, path)
    result = {}
    if op == "save":
        data = make_data(set_name)
        if contender == "mindspore":
            import mindspore as ms
            obj = [{"name": k, "data": ms.Tensor.from_numpy(v)} for k, v in data.items()]
            run = lambda: ms.save_checkpoint(obj, path)  # noqa: E731
        elif contender == "safetensors":
            from safetensors.numpy import save_file
            run = lambda: save_file(data, path)  # noqa: E731
        elif contender == "raw":
            def run():
                with open(path, "wb", buffering=0) as f:
                    for v in data.values():
                        f.write(memoryview(v.reshape(-1).view(np.uint8)))
        elif contender in ("msjax", "msjax_fsync"):
            import msjax
            run = lambda: msjax.save_checkpoint(data, path, fsync=contender == "msjax_fsync")  # noqa: E731
        elif contender.startswith("msjax_async"):
            import msjax
            if contender == "msjax_async_jax":
                import jax.numpy as jnp
                data = {k: jnp.asarray(v) for k, v in data.items()}
                for v in data.values():
                    v.block_until_ready()
            t0 = time.perf_counter()
            msjax.save_checkpoint(data, path, fsync=False)
            result["sync_s"] = time.perf_counter() - t0
            base = peak_rss()
            t0 = time.perf_counter()
            mode = "process" if contender.endswith("process") else True
            handle = msjax.save_checkpoint(data, path, fsync=False, async_save=mode)
            result["time_s"] = time.perf_counter() - t0
            handle.result()
            result["total_s"] = time.perf_counter() - t0
            result["extra_rss"] = max(0, peak_rss() - base)
            return result
        base_peak = max(peak_rss(), rss_now())
        t0 = time.perf_counter()
        run()
        result["time_s"] = time.perf_counter() - t0
        result["extra_rss"] = max(0, peak_rss() - base_peak)
        return result
    # load
    if contender == "mindspore":
        import mindspore as ms
        run = lambda: ms.load_checkpoint(path)  # noqa: E731
    elif contender == "safetensors":
        from safetensors.numpy import load_file
        run = lambda: load_file(path)  # noqa: E731
    elif contender == "raw":
        shp = shapes(set_name)

        def run():
            out = {}
            with open(path, "rb", buffering=0) as f:
                for name, shape in shp:
                    a = np.empty(shape, np.float32)
                    f.readinto(memoryview(a.reshape(-1).view(np.uint8)))
                    out[name] = a
            return out
    else:
        import msjax
        run = lambda: msjax.load_checkpoint(path)  # noqa: E731
    base_peak = max(peak_rss(), rss_now())
    t0 = time.perf_counter()
    loaded = run()
    result["time_s"] = time.perf_counter() - t0
    result["extra_rss"] = max(0, peak_rss() - base_peak)
    result["count"] = len(loaded)
    return result


# ------------------------------------------------------------------ driver side

def measure(contender, op, set_name, path):
    # Start every measurement with no dirty pages in flight: otherwise the kernel's writeback of
    # the previous contender's gigabyte lands on (and throttles) whoever runs next.
    os.sync()
    env = dict(os.environ, GLOG_v="3", PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, __file__, "--worker", contender, op, set_name, path],
                          capture_output=True, text=True, env=env, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"{contender} {op} {set_name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def suffix(contender):
    return {"safetensors": ".safetensors", "raw": ".bin"}.get(contender, ".ckpt")


def run(rounds, sets):
    report = {}
    with tempfile.TemporaryDirectory(prefix="msjax_bench_", dir=os.environ.get("BENCH_DIR")) as tmp:
        for set_name in sets:
            nbytes = sum(4 * max(1, int(__import__("math").prod(s))) for _, s in shapes(set_name))
            rows = {c: {"save": [], "load": [], "save_rss": [], "load_rss": [], "warm_save": [], "warm_load": []}
                    for c in CONTENDERS}
            extra = {"msjax_fsync": [], "msjax_async_jax": [], "msjax_async_numpy": [],
                     "msjax_async_numpy_process": []}
            for r in range(rounds):
                order = CONTENDERS[r % len(CONTENDERS):] + CONTENDERS[:r % len(CONTENDERS)]
                for c in order:
                    path = os.path.join(tmp, f"{set_name}_{c}{suffix(c)}")
                    s = measure(c, "save", set_name, path)
                    ld = measure(c, "load", set_name, path)
                    rows[c]["save"].append(s["time_s"])
                    rows[c]["save_rss"].append(s["extra_rss"])
                    rows[c]["load"].append(ld["time_s"])
                    rows[c]["load_rss"].append(ld["extra_rss"])
                    os.unlink(path)
                    w = measure(c, "warm", set_name, path)
                    rows[c]["warm_save"].append(w["save"])
                    rows[c]["warm_load"].append(w["load"])
                    os.unlink(path)
                    print(f"  [{set_name} round {r + 1}] {c:12s} save {s['time_s']:.3f}s  load "
                          f"{ld['time_s']:.3f}s   steady state: save {w['save']:.3f}s  load "
                          f"{w['load']:.3f}s", flush=True)
                for c in extra:
                    path = os.path.join(tmp, f"{set_name}_{c}.ckpt")
                    extra[c].append(measure(c, "save", set_name, path))
                    os.unlink(path)
            report[set_name] = summarize(set_name, nbytes, rows, extra)
    return report


def summarize(set_name, nbytes, rows, extra):
    med = {c: {k: statistics.median(v) for k, v in d.items()} for c, d in rows.items()}
    ms, mj, raw = med["mindspore"], med["msjax"], med["raw"]
    print(f"\n=== {set_name}: {len(shapes(set_name))} tensors, {nbytes / 2**20:.0f} MiB ===")
    print(f"{'':12s} {'fresh process':^19s} {'steady state':^19s}")
    print(f"{'contender':12s} {'save s':>9s} {'load s':>9s} {'save s':>9s} {'load s':>9s} {'save +RSS':>10s} "
          f"{'load +RSS':>10s}")
    for c, m in med.items():
        print(f"{c:12s} {m['save']:9.3f} {m['load']:9.3f} {m['warm_save']:9.3f} {m['warm_load']:9.3f} "
              f"{m['save_rss'] / nbytes:9.2f}x {m['load_rss'] / nbytes:9.2f}x")
    fs = statistics.median(x["time_s"] for x in extra["msjax_fsync"])
    aj = statistics.median(x["time_s"] for x in extra["msjax_async_jax"])
    aj_sync = statistics.median(x["sync_s"] for x in extra["msjax_async_jax"])
    an = statistics.median(x["time_s"] for x in extra["msjax_async_numpy"])
    an_sync = statistics.median(x["sync_s"] for x in extra["msjax_async_numpy"])
    ap = statistics.median(x["time_s"] for x in extra["msjax_async_numpy_process"])
    ap_sync = statistics.median(x["sync_s"] for x in extra["msjax_async_numpy_process"])
    out = {
        "steady_save_speedup_vs_mindspore": ms["warm_save"] / mj["warm_save"],
        "steady_save_vs_raw_write": mj["warm_save"] / raw["warm_save"],
        "steady_load_speedup_vs_mindspore": ms["warm_load"] / mj["warm_load"],
        "steady_load_vs_raw_read": mj["warm_load"] / raw["warm_load"],
        "save_speedup_vs_mindspore": ms["save"] / mj["save"],
        "save_vs_raw_write": mj["save"] / raw["save"],
        "load_speedup_vs_mindspore": ms["load"] / mj["load"],
        "load_extra_rss_over_data": mj["load_rss"] / nbytes,
        "mindspore_load_extra_rss_over_data": ms["load_rss"] / nbytes,
        "msjax_save_with_fsync_s": fs,
        "async_blocked_over_sync_jax": aj / aj_sync,
        "async_blocked_over_sync_numpy": an / an_sync,
        "async_process_blocked_over_sync_numpy": ap / ap_sync,
        "medians": med,
    }
    print(f"steady state: msjax saves {out['steady_save_speedup_vs_mindspore']:.1f}x faster than MindSpore "
          f"(goal >= 5x) at {out['steady_save_vs_raw_write']:.2f}x the raw write (goal <= 1.5x); loads "
          f"{out['steady_load_speedup_vs_mindspore']:.1f}x faster (goal >= 10x) at "
          f"{out['steady_load_vs_raw_read']:.2f}x the raw readinto")
    print(f"fresh process: msjax save: {out['save_speedup_vs_mindspore']:.1f}x faster than MindSpore (goal >= 5x), "
          f"{out['save_vs_raw_write']:.2f}x the raw write (goal <= 1.5x); with fsync {fs:.3f}s")
    print(f"fresh process: msjax load: {out['load_speedup_vs_mindspore']:.1f}x faster than MindSpore (goal >= 10x), "
          f"extra peak RSS {out['load_extra_rss_over_data']:.2f}x data (goal <= 1.2x; MindSpore "
          f"{out['mindspore_load_extra_rss_over_data']:.2f}x)")
    print(f"async caller blocked: {aj:.3f}s = {out['async_blocked_over_sync_jax']:.0%} of sync save "
          f"for jax arrays, {an:.3f}s = {out['async_blocked_over_sync_numpy']:.0%} for numpy arrays "
          f"(copied), {ap:.3f}s = {out['async_process_blocked_over_sync_numpy']:.0%} for numpy arrays "
          f"with async_save='process' (fork) (goal <= 25%)")
    return out


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        print(json.dumps(worker(*sys.argv[2:6])))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sets", default="resnet50,1gib")
    ap.add_argument("--json", help="also write the summary to this file")
    args = ap.parse_args()
    report = run(args.rounds, args.sets.split(","))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
