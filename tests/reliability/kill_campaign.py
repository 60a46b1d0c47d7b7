"""Kill campaign: SIGKILL savers at random moments; no checkpoint may be lost.

    python tests/reliability/kill_campaign.py --kills 200            # the long run, every mode
    python tests/reliability/kill_campaign.py --modes sync,mc_keep1 --kills 20 --seed 7

A child process (its own process group, so "process" saves' writers die with it) saves again and
again into one directory, printing ``committed <version>`` after each save has returned (async:
after ``.result()``). The parent kills the whole group at a random moment after the first commit,
then checks: every file under a final name loads (no partial file), the newest committed version
(ModelCheckpoint: the newest saved step) is still there, and the next save
(a fresh ModelCheckpoint or save_checkpoint) removes every dead temporary file.
``tests/test_kill_campaign.py`` runs a short form of this in the default suite.
"""
from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import threading
import time

import numpy as np

KEY = b"0123456789abcdef"
SIZE = 1 << 20                       # float32 elements per save: 4 MiB, so kills land mid-write
SAVE_MODES = {
    "sync": {},
    "thread": {"async_save": "thread"},
    "process": {"async_save": "process"},
    "crc": {"crc_check": True},
    "aes_gcm": {"enc_key": KEY},
    "safetensors": {"format": "safetensors"},
}
MC_MODES = {"mc_keep1": 1, "mc_keep2": 2}
STEPS_PER_EPOCH = 2
MODES = [*SAVE_MODES, *MC_MODES]


def _suffix(mode):
    return "safetensors" if mode == "safetensors" else "ckpt"


def _load_kwargs(mode):
    kw = dict(SAVE_MODES.get(mode, {}))
    out = {}
    if "enc_key" in kw:
        out.update(dec_key=kw["enc_key"])
    if kw.get("format") == "safetensors":
        out["format"] = "safetensors"
    if kw.get("crc_check"):
        out["crc_check"] = True
    return out


# --------------------------------------------------------------------------- child

def _child_saves(mode, directory):
    import msjax
    path = os.path.join(directory, f"ck.{_suffix(mode)}")
    for version in range(1, 1 << 30):
        handle = msjax.save_checkpoint({"w": np.full(SIZE, version, np.float32)}, path,
                                       **SAVE_MODES[mode])
        if handle is not None:
            handle.result()
        print(f"committed {version}", flush=True)


def _child_model_checkpoint(mode, directory):
    import msjax
    from msjax import nn
    from msjax.dataset import NumpySlicesDataset
    from msjax.train import CheckpointConfig, Model, ModelCheckpoint
    from msjax.train.callback import Callback

    class Report(Callback):
        def step_end(self, run_context):
            print(f"committed {run_context.original_args().cur_step_num}", flush=True)

    net = nn.Dense(1024, 1024)
    data = {"x": np.ones((8, 1024), np.float32), "y": np.zeros((8, 1024), np.float32)}
    ds = NumpySlicesDataset(data, shuffle=False).batch(8 // STEPS_PER_EPOCH)
    config = CheckpointConfig(save_checkpoint_steps=1, keep_checkpoint_max=MC_MODES[mode])
    model = Model(net, loss_fn=nn.MSELoss(), optimizer=nn.Momentum(net.trainable_params(), 0.01, 0.9))
    callbacks = [ModelCheckpoint("net", directory, config), Report()]
    model.train(1 << 20, ds, callbacks=callbacks, dataset_sink_mode=False)
    del msjax


def child(mode, directory):
    if mode in MC_MODES:
        _child_model_checkpoint(mode, directory)
    else:
        _child_saves(mode, directory)


# --------------------------------------------------------------------------- parent

def _final_files(directory):
    from msjax.common.atomic import is_temp_name
    return sorted(n for n in os.listdir(directory)
                  if not is_temp_name(n) and n.endswith((".ckpt", ".safetensors")))


def _temp_files(directory):
    from msjax.common.atomic import is_temp_name
    return sorted(n for n in os.listdir(directory) if is_temp_name(n))


def _version(path, mode):
    """The save's version: the value it was filled with, or ModelCheckpoint's global step."""
    import msjax
    loaded = msjax.load_checkpoint(path, **_load_kwargs(mode))
    if mode in MC_MODES:        # net-<epoch>_<step>.ckpt, 2 steps per epoch
        epoch, step = os.path.basename(path)[len("net-"):-len(".ckpt")].split("_")
        assert "weight" in loaded and "moments.weight" in loaded, list(loaded)
        return (int(epoch) - 1) * STEPS_PER_EPOCH + int(step)
    return int(loaded["w"].asnumpy().reshape(-1)[0])


def kill_once(mode, directory, rng, *, window=1.5, timeout=120):
    """Start a saver, kill it at a random moment after its first commit; return a report dict."""
    script = f"import sys; sys.path.insert(0, {os.path.dirname(__file__)!r}); " \
             f"import kill_campaign as k; k.child({mode!r}, {directory!r})"
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    commits = []

    def read():
        for line in proc.stdout:
            if line.startswith("committed"):
                commits.append(int(line.split()[1]))
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + timeout
        while not commits and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        if not commits:
            raise RuntimeError(f"{mode}: the saver never committed: {proc.stderr.read()[-2000:]}")
        time.sleep(rng.uniform(0, window))
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        reader.join()
    committed = max(commits, default=0)
    return check(mode, directory, committed)


def check(mode, directory, committed):
    """Everything under a final name loads; the newest committed checkpoint survived."""
    report = {"mode": mode, "committed": committed, "lost": 0, "partial": [], "orphans_left": []}
    finals = _final_files(directory)
    versions = {}
    for name in finals:
        try:
            versions[name] = _version(os.path.join(directory, name), mode)
        except Exception as err:  # noqa: BLE001 - a partial file under a final name
            report["partial"].append(f"{name}: {type(err).__name__}: {err}")
    report["lost"] = int(max(versions.values(), default=0) < committed)
    report["orphans_before"] = len(_temp_files(directory))
    _next_save(mode, directory)
    report["orphans_left"] = _temp_files(directory)
    return report


def _next_save(mode, directory):
    """What the restarted job does first: a new ModelCheckpoint, or the next save."""
    import msjax
    if mode in MC_MODES:
        from msjax.train import CheckpointConfig, ModelCheckpoint
        ModelCheckpoint("net", directory, CheckpointConfig(keep_checkpoint_max=MC_MODES[mode]))
        return
    path = os.path.join(directory, f"probe.{_suffix(mode)}")
    handle = msjax.save_checkpoint({"w": np.zeros(4, np.float32)}, path, **SAVE_MODES[mode])
    if handle is not None:
        handle.result()
    os.unlink(path)


def campaign(modes, kills, root, seed=0, window=1.5):
    """Run ``kills`` kills per mode in fresh directories under ``root``; return the reports."""
    reports = []
    for mode in modes:
        rng = random.Random(f"{seed}:{mode}")
        for i in range(kills):
            # save modes share one directory (dead temporaries pile up unless cleaned); a
            # ModelCheckpoint rerun in the same directory saves under a new prefix (net_1, ...)
            directory = os.path.join(root, mode, str(i) if mode in MC_MODES else "")
            os.makedirs(directory, exist_ok=True)
            reports.append(kill_once(mode, directory, rng, window=window))
    return reports


def summarize(reports):
    rows = {}
    for r in reports:
        row = rows.setdefault(r["mode"], {"kills": 0, "lost": 0, "partial": 0, "orphans_seen": 0,
                                          "orphans_left": 0})
        row["kills"] += 1
        row["lost"] += r["lost"]
        row["partial"] += len(r["partial"])
        row["orphans_seen"] += r["orphans_before"]
        row["orphans_left"] += len(r["orphans_left"])
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="all", help=f"comma list of {', '.join(MODES)} or all")
    parser.add_argument("--kills", type=int, default=200, help="kills per mode")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", default=None, help="work directory (default: a new temp dir)")
    args = parser.parse_args(argv)
    import tempfile
    modes = MODES if args.modes == "all" else args.modes.split(",")
    root = args.dir or tempfile.mkdtemp(prefix="msjax_kill_")
    start = time.time()
    rows = summarize(campaign(modes, args.kills, root, args.seed))
    print("| mode | kills | checkpoints lost | partial files | dead temporaries seen | left after next save |")
    print("| --- | --- | --- | --- | --- | --- |")
    for mode, row in rows.items():
        print(f"| {mode} | {row['kills']} | {row['lost']} | {row['partial']} | {row['orphans_seen']} | "
              f"{row['orphans_left']} |")
    print(f"({time.time() - start:.0f} s, work directory {root})")
    bad = sum(r["lost"] + r["partial"] + r["orphans_left"] for r in rows.values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
