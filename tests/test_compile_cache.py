"""The persistent compilation cache: MindSpore's ``enable_compile_cache`` / ``compile_cache_path``
(and ``MS_COMPILER_CACHE_ENABLE`` / ``MS_COMPILER_CACHE_PATH``): msjax's cache of compiled cell
programs (``msjax/nn/_compile_cache.py``) on top of JAX's persistent cache.

Each case runs fresh Python processes that train three steps of a small network in a temporary
directory. A process reports msjax's hit and miss events (``/msjax/compile_cache/hits``,
``/misses``) and how many times it traced a step; nothing here measures time.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap

import pytest
from oracle import requires_mindspore, run_mindspore

import msjax

CHILD = textwrap.dedent("""
    import json, os, sys
    import jax
    events = []
    jax.monitoring.register_event_listener(lambda event, **kw: events.append(event))
    import numpy as np
    import msjax
    from msjax import nn
    from msjax.common.tensor import Tensor
    from msjax.nn.cell import TRACE_COUNTS
    settings = json.loads(sys.argv[1])
    if settings:
        msjax.set_context(**settings)
    sys.path.insert(0, os.getcwd())
    net = __import__(os.environ["NET_MODULE"]).Net() if "NET_MODULE" in os.environ else nn.Dense(4, 3, has_bias=os.environ.get("HAS_BIAS") != "0")
    step = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), nn.Momentum(net.trainable_params(), 0.1, 0.9))
    rows = int(os.environ.get("ROWS", "2"))
    x = Tensor(np.arange(4 * rows, dtype=np.float32).reshape(rows, 4) / 8)
    losses = [float(step(x, Tensor(np.ones((rows, 3), np.float32))).asnumpy()) for _ in range(3)]
    print(json.dumps({"jax_hits": events.count("/jax/compilation_cache/cache_hits"),
                      "hits": events.count("/msjax/compile_cache/hits"),
                      "misses": events.count("/msjax/compile_cache/misses"), "traces": sum(TRACE_COUNTS.values()),
                      "losses": losses, "dir": msjax.context.compile_cache_dir()}))
""")

#: a network in a local module of the working directory: its source is part of the cache key
LOCAL_NET = """
import jax.numpy as jnp
from msjax import nn


class Net(nn.Cell):
    def __init__(self):
        super().__init__()
        self.dense = nn.Dense(4, 3)

    def construct(self, x):
        return jnp.tanh(self.dense(x)) * {scale}
"""


def _run(tmp_path, settings=None, env=None):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MS_COMPILER_CACHE")}
    environ.update(env or {})
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(settings or {})], cwd=tmp_path, env=environ,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def _programs(cache):
    return sorted(p for p in os.listdir(cache) if p.startswith("msjax-") and p.endswith(".prog"))


CONTEXT = {"enable_compile_cache": True, "compile_cache_path": "cache.ms"}

# (case, context settings, environment, where the cache lands relative to tmp_path)
ENABLED = [
    ("context", CONTEXT, {}, "cache.ms"),
    ("environment", {}, {"MS_COMPILER_CACHE_ENABLE": "1", "MS_COMPILER_CACHE_PATH": "envcache"}, "envcache"),
]


@pytest.mark.parametrize("case, settings, env, root", ENABLED, ids=[c[0] for c in ENABLED])
def test_second_process_skips_tracing_and_compiling(tmp_path, case, settings, env, root):
    first = _run(tmp_path, settings, env)
    cache = tmp_path / root / "rank_0" / "graph_cache"
    assert first["dir"] == str(cache)
    written = _files(cache)
    assert len(_programs(cache)) == 1 and first["hits"] == 0 and first["misses"] == 1 and first["traces"] == 1
    second = _run(tmp_path, settings, env)
    assert second["hits"] == 1 and second["misses"] == 0, "the second process compiled again instead of loading"
    assert second["traces"] == 0, "a cache hit must not trace the step"
    assert _files(cache) == written           # nothing new to write: every program came from the cache
    assert second["losses"] == first["losses"]


# (case, first process's environment, second one's, whether localnet.py is edited between them): each
# second process must miss, compile again and add an entry
LOCAL = {"NET_MODULE": "localnet"}
CHANGES = [
    ("construct edited in a local module", LOCAL, LOCAL, True),
    ("layer argument", {}, {"HAS_BIAS": "0"}, False),
    ("another network", LOCAL, {}, False),
    ("input shape", LOCAL, {**LOCAL, "ROWS": "3"}, False),
    ("lowering", LOCAL, {**LOCAL, "MSJAX_LOWERING": "canonical"}, False),
    ("XLA flags", LOCAL, {**LOCAL, "XLA_FLAGS": "--xla_cpu_enable_fast_math=false"}, False),
]


@pytest.mark.parametrize("case, env1, env2, edit", CHANGES, ids=[c[0] for c in CHANGES])
def test_a_changed_program_misses(tmp_path, case, env1, env2, edit):
    (tmp_path / "localnet.py").write_text(LOCAL_NET.format(scale="2.0"))
    first = _run(tmp_path, CONTEXT, env1)
    cache = tmp_path / "cache.ms" / "rank_0" / "graph_cache"
    if edit:      # the same class, its construct edited: the module's source is in the key
        (tmp_path / "localnet.py").write_text(LOCAL_NET.format(scale="3.0"))
    second = _run(tmp_path, CONTEXT, env2)
    assert second["hits"] == 0 and second["misses"] == 1 and second["traces"] == 1
    assert len(_programs(cache)) == 2
    if edit:
        assert second["losses"][0] != first["losses"][0]
    assert _run(tmp_path, CONTEXT, env2)["hits"] == 1     # and the new entry is found by the next process


def _truncate(data):
    return data[:len(data) // 2]


def _flip_payload_byte(data):
    return data[:-10] + bytes([data[-10] ^ 0xFF]) + data[-9:]


def _junk_with_valid_checksum(data):
    from msjax.nn._compile_cache import MAGIC
    return MAGIC + hashlib.sha256(b"junk").digest() + b"junk"


def _empty(data):
    return b""


CORRUPTIONS = [_truncate, _flip_payload_byte, _junk_with_valid_checksum, _empty]


@pytest.mark.parametrize("corrupt", CORRUPTIONS, ids=[c.__name__.strip("_") for c in CORRUPTIONS])
def test_a_corrupt_entry_is_compiled_again(tmp_path, corrupt):
    first = _run(tmp_path, CONTEXT)
    cache = tmp_path / "cache.ms" / "rank_0" / "graph_cache"
    (entry,) = _programs(cache)
    good = (cache / entry).read_bytes()
    (cache / entry).write_bytes(corrupt(good))
    second = _run(tmp_path, CONTEXT)
    assert second["hits"] == 0 and second["misses"] == 1 and second["losses"] == first["losses"]
    rewritten = (cache / entry).read_bytes()     # rewritten whole (XLA's bytes differ run to run)
    assert rewritten[:8] == good[:8] and len(rewritten) > len(good) // 2
    assert _run(tmp_path, CONTEXT)["hits"] == 1


# (case, context settings, environment): the cache is off, nothing is written anywhere
DISABLED = [
    ("a path but enable_compile_cache left unset", {"compile_cache_path": "cache.ms"},
     {"MS_COMPILER_CACHE_ENABLE": "0"}),
    ("context False wins over the environment", {"enable_compile_cache": False},
     {"MS_COMPILER_CACHE_ENABLE": "1", "MS_COMPILER_CACHE_PATH": "envcache"}),
]


@pytest.mark.parametrize("case, settings, env", DISABLED, ids=[c[0] for c in DISABLED])
def test_disabled_cache_writes_nothing(tmp_path, case, settings, env):
    out = _run(tmp_path, settings, env)
    assert out["dir"] is None and out["hits"] == out["misses"] == out["jax_hits"] == 0
    assert _files(tmp_path) == []


@pytest.mark.parametrize("settings, error", [
    ({"enable_compile_cache": 1}, TypeError),
    ({"compile_cache_path": 3}, TypeError),
])
def test_bad_values_raise(settings, error):
    with pytest.raises(error):
        msjax.set_context(**settings)
    assert msjax.get_context("enable_compile_cache") is None


@requires_mindspore
def test_defaults_match_mindspore():
    out = run_mindspore("""
        outputs["enable"] = np.array(repr(ms.get_context("enable_compile_cache")))
        outputs["path"] = np.array(repr(ms.get_context("compile_cache_path")))
    """)
    assert str(out["enable"]) == repr(msjax.get_context("enable_compile_cache"))
    assert str(out["path"]) == repr(msjax.get_context("compile_cache_path"))
