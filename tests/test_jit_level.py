"""``set_context(jit_config={"jit_level": ...})``: which XLA options a cell program compiles with
(``msjax/nn/_jit_level.py``). Nothing here measures time: the cases check which options each
level picks, that picking costs no second trace, and that the options leave the numbers alone."""
from __future__ import annotations

import numpy as np
import pytest

import msjax
from msjax import nn
from msjax.common.tensor import Tensor
from msjax.models import LeNet5
from msjax.nn import _jit_level
from msjax.nn import cell as cell_module
from msjax.nn.cell import TRACE_COUNTS


@pytest.fixture
def set_level():
    before = msjax.get_context("jit_config")
    yield lambda level: msjax.set_context(jit_config={"jit_level": level})
    msjax.set_context(jit_config=before)


@pytest.fixture
def picks(monkeypatch):
    """Per cell call: True when it ran with FAST_COMPILE, False with XLA's defaults."""
    seen = []
    original = _jit_level.LeveledJit._pick

    def spy(self, args):
        fn = original(self, args)
        seen.append(fn is self._fast)
        return fn

    monkeypatch.setattr(_jit_level.LeveledJit, "_pick", spy)
    return seen


def _train(steps=3):
    msjax.set_seed(3)
    net = LeNet5()
    step = nn.TrainOneStepCell(nn.WithLossCell(net, nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")),
                               nn.Momentum(net.trainable_params(), 0.01, 0.9))
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((4, 1, 32, 32)).astype(np.float32))
    y = Tensor(rng.integers(0, 10, size=4).astype(np.int32))
    return [float(step(x, y).asnumpy()) for _ in range(steps)], net


def test_default_level_is_the_frameworks_choice():
    assert msjax.get_context("jit_config") == {"jit_level": ""}


@pytest.mark.parametrize("bad, error", [({"jit_level": "O3"}, ValueError), ({"jit_level": "o0"}, ValueError),
                                        ("O0", TypeError)])
def test_bad_jit_config_is_refused(set_level, bad, error):
    with pytest.raises(error, match="jit_config"):
        msjax.set_context(jit_config=bad)
    assert msjax.get_context("jit_config") == {"jit_level": ""}


@pytest.mark.parametrize("level, fast", [("", True), ("O0", True), ("O1", False), ("O2", False)])
def test_lenet_step_options_by_level(set_level, picks, level, fast):
    set_level(level)
    _train()
    assert picks and all(p is fast for p in picks)


def test_a_program_above_the_threshold_keeps_xla_defaults(set_level, picks, monkeypatch):
    # the choice is kept per jitted graph: start each threshold from no compiled graphs
    monkeypatch.setattr(_jit_level, "SMALL_PROGRAM_EQNS", 20)   # LeNet5's step has ~190 equations
    monkeypatch.setattr(cell_module, "_jitted", {})
    _train()
    assert picks and not any(picks)
    monkeypatch.setattr(_jit_level, "SMALL_PROGRAM_EQNS", 10_000)
    monkeypatch.setattr(cell_module, "_jitted", {})
    _train()
    assert picks[-1] is True


def test_choosing_traces_the_step_once(set_level, monkeypatch):
    monkeypatch.setattr(cell_module, "_jitted", {})
    before = TRACE_COUNTS["TrainOneStepCell"]
    _train(steps=4)
    assert TRACE_COUNTS["TrainOneStepCell"] - before == 1


def test_levels_train_to_the_same_numbers(set_level):
    set_level("O0")
    fast_losses, fast_net = _train()
    set_level("O1")
    default_losses, default_net = _train()
    np.testing.assert_allclose(fast_losses, default_losses, rtol=1e-5, atol=1e-6)
    for (name, a), (_, b) in zip(fast_net.parameters_and_names(), default_net.parameters_and_names()):
        np.testing.assert_allclose(a.asnumpy(), b.asnumpy(), rtol=1e-5, atol=1e-6, err_msg=name)
