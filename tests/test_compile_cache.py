"""The persistent compilation cache: MindSpore's ``enable_compile_cache`` / ``compile_cache_path``
(and ``MS_COMPILER_CACHE_ENABLE`` / ``MS_COMPILER_CACHE_PATH``) on JAX's persistent cache.

Each case runs fresh Python processes that train one step of a small network in a temporary
directory. A process that finds its program in the cache reports JAX's cache-hit event
(``/jax/compilation_cache/cache_hits``); nothing here measures time.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from oracle import requires_mindspore, run_mindspore

import msjax

CHILD = textwrap.dedent("""
    import json, sys
    import jax
    hits = []
    jax.monitoring.register_event_listener(
        lambda event, **kw: hits.append(event) if event == "/jax/compilation_cache/cache_hits" else None)
    import numpy as np
    import msjax
    from msjax import nn
    from msjax.common.tensor import Tensor
    settings = json.loads(sys.argv[1])
    if settings:
        msjax.set_context(**settings)
    net = nn.Dense(4, 3)
    step = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), nn.Momentum(net.trainable_params(), 0.1, 0.9))
    x = Tensor(np.arange(8, dtype=np.float32).reshape(2, 4) / 8)
    loss = float(step(x, Tensor(np.ones((2, 3), np.float32))).asnumpy())
    print(json.dumps({"hits": len(hits), "loss": loss, "dir": msjax.context.compile_cache_dir()}))
""")


def _run(tmp_path, settings=None, env=None):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MS_COMPILER_CACHE")}
    environ.update(env or {})
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(settings or {})], cwd=tmp_path, env=environ,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


# (case, context settings, environment, where the cache lands relative to tmp_path)
ENABLED = [
    ("context", {"enable_compile_cache": True, "compile_cache_path": "cache.ms"}, {}, "cache.ms"),
    ("environment", {}, {"MS_COMPILER_CACHE_ENABLE": "1", "MS_COMPILER_CACHE_PATH": "envcache"}, "envcache"),
]


@pytest.mark.parametrize("case, settings, env, root", ENABLED, ids=[c[0] for c in ENABLED])
def test_second_process_loads_the_first_ones_executables(tmp_path, case, settings, env, root):
    first = _run(tmp_path, settings, env)
    cache = tmp_path / root / "rank_0" / "graph_cache"
    assert first["dir"] == str(cache)
    written = _files(cache)
    assert written and first["hits"] == 0
    second = _run(tmp_path, settings, env)
    assert second["hits"] >= 1, "the second process compiled again instead of reading the cache"
    assert _files(cache) == written           # nothing new to write: every program came from the cache
    assert second["loss"] == first["loss"]


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
    assert out["dir"] is None and out["hits"] == 0
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
