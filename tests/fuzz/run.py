"""Run fuzz cases in worker subprocesses and report per reader.

    python -m tests.fuzz.run --reader all --cases 100000 --jobs 2
    python -m tests.fuzz.run --reader pth --case 17 --show       # replay one case
    python -m tests.fuzz.run --reader pth --file saved.pth       # replay a saved input
    python -m tests.fuzz.run --reader mindir_run,air_run         # opt-in: also run the graphs

Each case runs in a persistent worker (``worker.py``) that imports msjax once. A case past the
time limit kills and restarts its worker; a worker that dies is a crash. Both count as "other",
as does any exception that is not an msjax error (``MsjaxError`` and ``ValueError``) naming the
file, a peak memory past ``max(mem_limit, mem_factor x file size)`` (peak RSS, a MemoryError
from the per-case RLIMIT_AS of mem_limit + slack, and with --tracemalloc untouched allocations),
and a .pth tensor loaded although torch refuses it. Failing inputs are saved under
``<out>/failures/`` with a ``.txt`` beside each that names the replay commands.
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time

from .targets import EXTRA, READERS, suffix

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(TESTS_DIR)
_BOOT = f"import sys; sys.path.insert(0, {TESTS_DIR!r}); from fuzz import worker; worker.main()"


@dataclasses.dataclass
class Limits:
    time_s: float = 10.0
    mem_limit: int = 256 * 2 ** 20
    mem_factor: int = 64
    as_headroom: int = 3 * 2 ** 30      # RLIMIT_AS between cases, above the warm worker's size
    as_slack: int = 128 * 2 ** 20       # a case may map mem_limit + this much more, else MemoryError
    start_s: float = 180.0              # worker start: imports, seeds, warm-up
    tracemalloc: bool = False           # also count untouched numpy/Python allocations (slower)
    recycle: int = 0                    # restart a worker after this many cases (0: never)
    extra: tuple = ()                   # opt-in readers to warm up (mindir_run, air_run)


class WorkerDied(Exception):
    pass


class Worker:
    """One child process speaking the JSON-lines protocol."""

    def __init__(self, out_dir, index, limits: Limits):
        self.out_dir, self.index, self.limits = out_dir, index, limits
        self.start()

    def start(self):
        scratch = os.path.join(self.out_dir, f"scratch{self.index}")
        os.makedirs(scratch, exist_ok=True)
        env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONDONTWRITEBYTECODE="1",
                   XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
                   TF_CPP_MIN_LOG_LEVEL="3", OMP_NUM_THREADS="1")
        self.log = open(os.path.join(self.out_dir, f"worker{self.index}.log"), "ab")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, "-c", _BOOT], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log, cwd=scratch, env=env)
        self.buf = b""
        self.done = 0                   # cases answered since this process started
        cfg = {"seeds": os.path.join(self.out_dir, "seeds"), "scratch": scratch,
               "mem_limit": self.limits.mem_limit, "mem_factor": self.limits.mem_factor,
               "as_headroom": self.limits.as_headroom, "as_slack": self.limits.as_slack,
               "tracemalloc": self.limits.tracemalloc, "extra": list(self.limits.extra)}
        try:
            self.send(cfg)
            self.info = self.recv(self.limits.start_s)
        except (OSError, WorkerDied) as exc:
            self.kill()
            raise WorkerDied(f"fuzz worker failed to start ({exc}):\n{self.log_tail()}") from None
        if self.info is None:
            self.kill()
            raise WorkerDied(f"fuzz worker did not start in {self.limits.start_s} s:\n{self.log_tail()}")

    def log_tail(self, lines=25) -> str:
        """The end of this worker's stderr log (why it died)."""
        with open(self.log.name, "rb") as f:
            text = f.read()[-20000:].decode("utf-8", "replace")
        return "\n".join(text.splitlines()[-lines:]) + f"\n(full log: {self.log.name})"

    def send(self, obj):
        self.proc.stdin.write((json.dumps(obj) + "\n").encode())
        self.proc.stdin.flush()

    def recv(self, timeout):
        """The next reply, None on timeout; raises WorkerDied on EOF."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise WorkerDied(self.exit_status())
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def exit_status(self) -> str:
        code = self.proc.wait()
        if code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exit status {code}"

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.log.close()

    def restart(self):
        self.kill()
        self.start()


@dataclasses.dataclass
class Stats:
    cases: int = 0
    loaded: int = 0
    errors: int = 0
    other: int = 0
    secs: float = 0.0
    max_secs: float = 0.0
    max_peak: int = 0


class Pool:
    """``jobs`` workers; ``run(pairs)`` runs (reader, case) pairs and returns the results."""

    def __init__(self, out_dir=None, jobs=1, limits: Limits | None = None):
        self.out_dir = os.path.realpath(out_dir or tempfile.mkdtemp(prefix="msjax-fuzz-"))
        os.makedirs(self.out_dir, exist_ok=True)
        self.limits = limits or Limits()
        self.workers = [Worker(self.out_dir, i, self.limits) for i in range(jobs)]

    def close(self):
        for w in self.workers:
            w.kill()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _dead(self, w, kind, msg):
        """Restart ``w`` after a hang or crash; the reply that stands for the case."""
        w.restart()
        return {"outcome": "other", "kind": kind, "msg": msg, "where": "", "note": "", "size": 0,
                "peak": 0, "secs": 0.0, "dead": True}

    def run(self, pairs, show=False, progress=None, depth=4, keep=True, source=None):
        """Run every (reader, case); return [(reader, case, reply)] in completion order
        (``keep=False``: return nothing, ``progress(reader, case, reply)`` sees every answer).
        ``source`` (a file path) replaces the generated input of every case.

        Each worker gets up to ``depth`` cases queued on its pipe (fewer round trips); a case's
        clock starts when the answer before it arrives.
        """
        todo = collections.deque(pairs)
        queued = {w.index: collections.deque() for w in self.workers}   # sent, unanswered
        since = {}                      # worker index -> when its head case started
        results = []
        depth = 1 if show else depth
        while todo or any(queued.values()):
            for w in self.workers:
                q = queued[w.index]
                if self.limits.recycle and not q and w.done >= self.limits.recycle:
                    w.restart()                 # a fresh process: caches (jax ops) start empty
                while todo and len(q) < depth and not (
                        self.limits.recycle and w.done + len(q) >= self.limits.recycle):
                    reader, case = todo.popleft()
                    try:
                        w.send({"op": "run", "reader": reader, "case": case, "show": show,
                                "file": source})
                    except OSError:             # it died after its last answer
                        self._requeue(w, todo, q)
                        w.restart()
                        continue
                    if not q:
                        since[w.index] = time.monotonic()
                    q.append((reader, case))
            busy = [w for w in self.workers if queued[w.index]]
            if all(b"\n" not in w.buf for w in busy):
                soonest = min(since[w.index] for w in busy) + self.limits.time_s
                select.select([w.proc.stdout for w in busy], [], [], max(0.0, soonest - time.monotonic()))
            for w in busy:
                q = queued[w.index]
                while q:
                    reader, case = q[0]
                    try:
                        reply = w.recv(0)
                    except WorkerDied as died:
                        reply = self._dead(w, "Crash", f"worker {died}")
                    if reply is None and time.monotonic() - since[w.index] >= self.limits.time_s:
                        reply = self._dead(w, "Timeout", f"no answer in {self.limits.time_s:g} s")
                        reply["secs"] = self.limits.time_s
                    if reply is None:
                        break
                    now = time.monotonic()
                    reply.setdefault("rtt", now - since[w.index])
                    since[w.index] = now
                    q.popleft()
                    w.done += 1
                    if keep:
                        results.append((reader, case, reply))
                    if progress:
                        progress(reader, case, reply)
                    if reply.get("dead"):               # a fresh worker: the rest run again
                        self._requeue(w, todo, q)
        return results

    @staticmethod
    def _requeue(w, todo, q):
        """Put ``w``'s unanswered cases back at the front of ``todo``."""
        while q:
            todo.appendleft(q.pop())

    def save(self, reader, case, directory) -> str:
        """Write the input of (reader, case) into ``directory``; return its path."""
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, f"{reader}-{case}{suffix(reader)}")
        w = self.workers[0]
        try:
            w.send({"op": "save", "reader": reader, "case": case, "path": path})
            reply = w.recv(self.limits.start_s)
        except (OSError, WorkerDied):
            w.restart()
            reply = None
        return reply["saved"] if reply and "saved" in reply else path


class Summary:
    """Running per-reader counts and the failing cases (nothing else is kept: long runs)."""

    def __init__(self):
        self.stats = collections.OrderedDict((r, Stats()) for r in READERS + tuple(EXTRA))
        self.failures = []

    def add(self, reader, case, reply):
        s = self.stats[reader]
        s.cases += 1
        s.secs += reply.get("rtt", reply["secs"])
        s.max_secs = max(s.max_secs, reply.get("secs", 0.0))
        s.max_peak = max(s.max_peak, reply.get("peak", 0))
        if reply["outcome"] == "loaded":
            s.loaded += 1
        elif reply["outcome"] == "error":
            s.errors += 1
        else:
            s.other += 1
            self.failures.append((reader, case, reply))

    def result(self):
        """(reader -> Stats for readers that ran, failures sorted by reader and case)."""
        failures = sorted(self.failures, key=lambda f: (f[0], f[1]))
        return collections.OrderedDict((r, s) for r, s in self.stats.items() if s.cases), failures


def summarize(results):
    """reader -> Stats, and the failures [(reader, case, reply)] sorted."""
    summary = Summary()
    for item in results:
        summary.add(*item)
    return summary.result()


def signature(reply) -> str:
    return f"{reply['kind']} at {reply.get('where') or '?'}"


def table(stats, failures, commit="") -> str:
    """The report: per-reader counts, then each distinct failure kind with replay commands."""
    header = (f"{'reader':14s} {'cases':>7s} {'loaded':>7s} {'msjax err':>9s} {'other':>6s} "
              f"{'s/1000':>7s} {'max s':>6s} {'peak MiB':>8s}")
    lines = [header]
    for reader, s in stats.items():
        per = 1000 * s.secs / s.cases if s.cases else 0
        lines.append(f"{reader:14s} {s.cases:7d} {s.loaded:7d} {s.errors:9d} {s.other:6d} "
                     f"{per:7.1f} {s.max_secs:6.2f} {s.max_peak / 2 ** 20:8.1f}")
    if commit:
        lines.append(f"(measured at {commit}; s/1000 = worker-seconds per 1,000 cases)")
    kinds = collections.OrderedDict()
    for reader, case, reply in failures:
        kinds.setdefault((reader, signature(reply)), []).append((case, reply))
    if kinds:
        lines.append("")
        lines.append(f"{len(failures)} failing case(s), {len(kinds)} distinct kind(s):")
    for (reader, sig), cases in kinds.items():
        case, reply = cases[0]
        numbers = ", ".join(str(c) for c, _ in cases[:12]) + (" ..." if len(cases) > 12 else "")
        lines.append(f"- {reader}: {sig}  [{len(cases)} case(s): {numbers}]")
        lines.append(f"    {reply['msg'][:300]}")
        if reply.get("note"):
            lines.append(f"    input: {reply['note'][:200]}")
        lines.append(f"    replay: python -m tests.fuzz.run --reader {reader} --case {case} --show")
    return "\n".join(lines)


def save_failures(pool, failures, limit_per_kind=20):
    """Save failing inputs (a few per distinct kind) with a note for replay."""
    directory = os.path.join(pool.out_dir, "failures")
    count = collections.Counter()
    for reader, case, reply in failures:
        key = (reader, signature(reply))
        count[key] += 1
        if count[key] > limit_per_kind:
            continue
        path = pool.save(reader, case, directory)
        with open(path + ".txt", "w") as f:
            f.write(f"{reader} case {case}: {signature(reply)}\n{reply['msg']}\n"
                    f"input: {reply.get('note', '')}\n"
                    f"replay: python -m tests.fuzz.run --reader {reader} --case {case} --show\n"
                    f"    or: python -m tests.fuzz.run --reader {reader} --file {path}\n")
    return directory


def _commit():
    try:
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=False).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=False).stdout.strip()
        return head + (" (+ uncommitted changes)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return ""


def _show(pool, reader, case, source=None):
    [(_, _, reply)] = pool.run([(reader, case)], show=True, source=source)
    path = source or pool.save(reader, case, os.path.join(pool.out_dir, "failures"))
    print(f"{reader} case {case}: {reply['outcome']} {reply['kind']}")
    print(f"input:  {reply.get('note', '')}")
    print(f"file:   {path} ({os.path.getsize(path)} bytes)")
    print(f"peak:   {reply.get('peak', 0) / 2 ** 20:.1f} MiB (traced {reply.get('traced', 0) / 2 ** 20:.1f}, "
          f"rss {reply.get('rss', 0) / 2 ** 20:.1f}); {reply.get('secs', 0):.3f} s")
    if reply.get("msg"):
        print(f"message: {reply['msg']}")
    if reply.get("traceback"):
        print(reply["traceback"])
    return reply["outcome"] != "other"


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m tests.fuzz.run", description=__doc__.split("\n")[0])
    p.add_argument("--reader", default="all",
                   help=f"all, or a comma list of: {', '.join(READERS)}; opt-in (built and run once on "
                        f"zeros): {', '.join(EXTRA)}")
    p.add_argument("--cases", type=int, default=1000, help="cases per reader")
    p.add_argument("--start", type=int, default=0, help="first case number")
    p.add_argument("--case", type=int, help="run only this case")
    p.add_argument("--show", action="store_true", help="print the traceback (with --case)")
    p.add_argument("--file", help="replay this saved input with --reader (implies --show)")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--time-limit", type=float, default=10.0, help="seconds per case")
    p.add_argument("--mem-limit-mib", type=int, default=256)
    p.add_argument("--tracemalloc", action="store_true",
                   help="also count untouched allocations with tracemalloc (2-3x slower: raise "
                        "--time-limit with it)")
    p.add_argument("--recycle", type=int, help="restart each worker after this many cases "
                   "(default: 2000 with mindir_run/air_run, whose jax op caches grow; else never)")
    p.add_argument("--out", help="work directory (seeds, scratch, failures); default a temp dir")
    args = p.parse_args(argv)
    readers = list(READERS) if args.reader == "all" else args.reader.split(",")
    unknown = [r for r in readers if r not in READERS and r not in EXTRA]
    if unknown:
        p.error(f"unknown reader(s) {unknown}; known: {', '.join(READERS + tuple(EXTRA))}")
    extra = tuple(r for r in readers if r in EXTRA)
    limits = Limits(time_s=args.time_limit, mem_limit=args.mem_limit_mib * 2 ** 20,
                    tracemalloc=args.tracemalloc, extra=extra,
                    recycle=args.recycle if args.recycle is not None else 2000 if extra else 0)
    if args.file:
        if len(readers) != 1:
            p.error("--file needs one --reader")
        with Pool(args.out, 1, limits) as pool:
            return 0 if _show(pool, readers[0], args.case or 0, os.path.abspath(args.file)) else 1
    jobs = 1 if args.case is not None else args.jobs
    with Pool(args.out, jobs, limits) as pool:
        if args.case is not None and args.show:
            ok = [_show(pool, r, args.case) for r in readers]     # every reader, then the verdict
            return 0 if all(ok) else 1
        numbers = [args.case] if args.case is not None else range(args.start, args.start + args.cases)
        pairs = [(r, n) for n in numbers for r in readers]      # interleaved: readers share time
        t0 = time.monotonic()
        summary = Summary()

        def progress(reader, case, reply):
            summary.add(reader, case, reply)
            done = sum(s.cases for s in summary.stats.values())
            if done % 5000 == 0:
                print(f"  {done}/{len(pairs)} cases, {time.monotonic() - t0:.0f} s, "
                      f"{len(summary.failures)} failing", flush=True)

        interrupted = False
        try:
            pool.run(pairs, progress=progress, keep=False)
        except KeyboardInterrupt:
            interrupted = True
            print("interrupted: the cases so far")
        wall = time.monotonic() - t0
        stats, failures = summary.result()
        ran = sum(s.cases for s in stats.values())
        print(table(stats, failures, _commit()))
        print(f"wall {wall:.1f} s for {ran} cases with {jobs} job(s) "
              f"({1000 * wall / max(1, ran):.1f} s per 1,000 cases overall)")
        if failures:
            print(f"failing inputs saved under {save_failures(pool, failures)}")
        print(f"work directory: {pool.out_dir}")
    return 1 if failures else 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
