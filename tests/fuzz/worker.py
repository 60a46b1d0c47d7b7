"""The fuzz worker: a child process that imports msjax once and runs cases on request.

Protocol: one JSON object per line. The first line from the parent is the config; the worker
answers ``{"ready": ...}``, then each ``{"op": "run" | "save", "reader", "case", ...}`` line gets
one answer line. The worker writes answers to the stdout it was started with; its own fd 1 is
pointed at stderr, so stray prints never corrupt the protocol.
"""
from __future__ import annotations

import fcntl
import json
import os
import resource
import signal
import sys
import time
import traceback
import tracemalloc
import warnings

from . import mut_pth, mutate, seeds, targets

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_PROJECT = tuple(os.path.join(ROOT, d) + os.sep for d in ("msjax", "exporters"))
_HARNESS = os.path.dirname(os.path.abspath(__file__)) + os.sep


def proc_status(key: str) -> int:
    """A ``/proc/self/status`` value in bytes (VmSize, VmRSS, VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux clear_refs 5); False when not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def ensure_seeds(directory: str) -> tuple[dict, dict]:
    """Build the seed files once (a lock serialises concurrent workers).

    Returns (reader -> seed bytes, reader -> why its seed could not be built).
    """
    os.makedirs(directory, exist_ok=True)
    done = os.path.join(directory, ".complete.json")
    with open(os.path.join(directory, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(done):
            _, errors = seeds.build(directory)
            with open(done, "w") as f:
                json.dump(errors, f)
    with open(done) as f:
        errors = json.load(f)
    out = {}
    for reader, name in seeds.SEEDS.items():
        if reader not in errors:
            with open(os.path.join(directory, name), "rb") as f:
                out[reader] = f.read()
    return out, errors


def _located(filename: str) -> bool:
    """Frames worth naming: the readers, and the mutators (for harness bugs)."""
    if filename.startswith(_PROJECT):
        return True
    return filename.startswith(_HARNESS) and os.path.basename(filename) not in ("targets.py", "worker.py")


def where(exc: BaseException) -> str:
    """The innermost msjax/exporters/tests frame of ``exc``'s traceback ("file.py:LINE in func")."""
    found, tb = "?", exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if _located(code.co_filename):
            found = f"{os.path.relpath(code.co_filename, ROOT)}:{tb.tb_lineno} in {code.co_name}"
        tb = tb.tb_next
    return found


def _memory_error_in_chain(exc) -> bool:
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, MemoryError):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def _name(exc) -> str:
    t = type(exc)
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def classify(exc, path, peak, limit, invalid_msg=None):
    """(outcome, kind, message): outcome is "loaded", "error" or "other"."""
    from msjax.errors import MsjaxError
    if peak > limit:
        return "other", "PeakMemory", f"peak {peak / 2 ** 20:.0f} MiB > limit {limit / 2 ** 20:.0f} MiB"
    if exc is None:
        if invalid_msg:
            return "other", "LoadedInvalid", invalid_msg
        return "loaded", "", ""
    msg = f"{exc}"
    if _memory_error_in_chain(exc):
        return "other", "MemoryError", f"{_name(exc)}: {msg}"
    if not isinstance(exc, MsjaxError):
        return "other", _name(exc), msg
    if not isinstance(exc, ValueError):
        return "other", f"NotValueError({type(exc).__name__})", msg
    if os.path.basename(path) not in msg:
        return "other", f"Unnamed({type(exc).__name__})", msg
    return "error", type(exc).__name__, msg


class Runner:
    """Runs cases in this process under the memory measurement."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.seeds, self.seed_errors = ensure_seeds(cfg["seeds"])
        self.scratch = os.path.realpath(cfg["scratch"])
        os.makedirs(self.scratch, exist_ok=True)
        self.hwm = reset_peak_rss()
        self.tracemalloc = cfg.get("tracemalloc", False)
        self.cap = None                  # RLIMIT_AS between cases (set after warm-up)

    def path(self, reader, case):
        return os.path.join(self.scratch, f"{reader}-{case}{targets.suffix(reader)}")

    def write(self, reader, case, path=None, source=None):
        """Write case ``case`` (or the bytes of the file ``source``) where ``reader`` reads it."""
        if source is None:
            c = mutate.make(reader, case, self.seeds)
        else:
            with open(source, "rb") as f:
                c = mutate.Case(f.read(), f"the file {source}")
        path = path or self.path(reader, case)
        with open(path, "wb") as f:
            f.write(c.data)
        return c, path

    def run(self, reader, case, show=False, source=None):
        t0 = time.perf_counter()
        if targets.base(reader) in self.seed_errors:
            return {"outcome": "other", "kind": "SeedError", "msg": self.seed_errors[targets.base(reader)],
                    "where": "", "note": "", "size": 0, "peak": 0, "secs": 0.0}
        try:
            c, path = self.write(reader, case, source=source)
        except Exception as e:              # noqa: BLE001 - a bug in the harness, not the reader
            return {"outcome": "other", "kind": "HarnessError", "msg": f"mutator failed: {e!r}",
                    "where": where(e), "note": "", "size": 0, "peak": 0, "secs": 0.0,
                    "traceback": "".join(traceback.format_exception(e))}
        size = len(c.data)
        limit = max(self.cfg["mem_limit"], self.cfg["mem_factor"] * size)
        result = exc = None
        rss0 = proc_status("VmRSS")
        if self.cap:                     # the case may map at most limit + slack more bytes
            _cap(proc_status("VmSize") + limit + self.cfg["as_slack"])
        if self.hwm:
            reset_peak_rss()
        if self.tracemalloc:
            tracemalloc.start()
        t1 = time.perf_counter()
        try:
            result = targets.load(reader, path)
        except BaseException as e:           # noqa: BLE001 - everything is a finding
            exc = e
        load_s = time.perf_counter() - t1
        if self.cap:
            _cap(self.cap)
        traced = tracemalloc.get_traced_memory()[1] if self.tracemalloc else 0
        if self.tracemalloc:
            tracemalloc.stop()
        rss = proc_status("VmHWM") - rss0 if self.hwm else 0
        peak = max(traced, rss)
        invalid_msg = mut_pth.check_invalid(result, c.invalid) if exc is None else None
        outcome, kind, msg = classify(exc, path, peak, limit, invalid_msg)
        reply = {"outcome": outcome, "kind": kind, "msg": msg[:400], "size": size, "peak": peak,
                 "traced": traced, "rss": rss, "load_s": load_s, "note": c.note[:300],
                 "where": where(exc) if exc is not None else "", "secs": 0.0}
        if show:
            reply["traceback"] = "".join(traceback.format_exception(exc)) if exc is not None else ""
            reply["msg"] = msg
            reply["note"] = c.note
        del result, exc
        try:
            os.unlink(path)
        except OSError:
            pass
        reply["secs"] = time.perf_counter() - t0
        return reply


def _cap(nbytes: int) -> int:
    """Set the soft RLIMIT_AS (the address space) to ``nbytes``, within the hard limit."""
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        nbytes = min(nbytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (nbytes, hard))
    return nbytes


def _warm_jax():
    """Start jax's CPU backend now: it maps ~1 GiB, which must precede the RLIMIT_AS cap."""
    import jax
    import jax.numpy as jnp
    jax.jit(lambda x: x * 2)(jnp.ones(2)).block_until_ready()


def main():
    signal.signal(signal.SIGINT, signal.SIG_IGN)    # Ctrl-C is for the runner, which reports
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    warnings.simplefilter("ignore")
    cfg = json.loads(sys.stdin.readline())
    runner = Runner(cfg)
    _warm_jax()
    for reader in targets.READERS + tuple(cfg.get("extra", ())):   # warm up: imports, first parses
        runner.run(reader, 0)
    if cfg.get("as_headroom", 0) > 0:
        # jax/XLA reserve ~1.5 GiB of address space at start; cap only what comes after
        runner.cap = _cap(proc_status("VmSize") + cfg["as_headroom"])
    cap = runner.cap or 0
    out.write(json.dumps({"ready": True, "pid": os.getpid(), "vm": proc_status("VmSize"),
                          "rlimit_as": cap, "hwm": runner.hwm}) + "\n")
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] == "run":
            reply = runner.run(cmd["reader"], cmd["case"], cmd.get("show", False), cmd.get("file"))
        elif cmd["op"] == "save":
            try:
                c, path = runner.write(cmd["reader"], cmd["case"], cmd["path"])
                reply = {"saved": path, "note": c.note}
            except Exception as e:          # noqa: BLE001 - reported, the worker lives on
                reply = {"error": f"mutator failed: {e!r}"}
        else:
            reply = {"error": f"unknown op {cmd['op']!r}"}
        out.write(json.dumps(reply) + "\n")


if __name__ == "__main__":
    main()
