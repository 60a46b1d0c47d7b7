"""Callbacks: MindSpore's hook protocol, cb_params, RunContext, monitors and the progress bar."""
import numpy as np
import pytest

import msjax
from msjax import nn
from msjax.train import (Callback, LambdaCallback, LossMonitor, Model, ProgressBar, RunContext,
                         TimeMonitor)


def _model():
    msjax.set_seed(0)
    net = nn.Dense(3, 2)
    opt = nn.Momentum(net.trainable_params(), 0.1, 0.9)
    return net, opt, Model(net, nn.MSELoss(), opt)


def _data(n=3):
    rng = np.random.RandomState(0)
    return [(rng.randn(4, 3).astype(np.float32), rng.randn(4, 2).astype(np.float32)) for _ in range(n)]


class _Recorder(Callback):
    """New-style hooks for begin/end, legacy ones for epochs and steps (both styles must fire)."""

    def __init__(self):
        self.events, self.entered, self.exited = [], False, False

    def __enter__(self):
        self.entered = True
        return self

    def __exit__(self, *err):
        self.exited = True

    def on_train_begin(self, run_context):
        self.events.append(("begin", run_context.original_args().epoch_num))

    def epoch_begin(self, run_context):
        self.events.append(("epoch_begin", run_context.original_args().cur_epoch_num))

    def step_end(self, run_context):
        p = run_context.original_args()
        self.events.append(("step_end", p.cur_epoch_num, p.cur_step_num, p.batch_num))

    def epoch_end(self, run_context):
        self.events.append(("epoch_end", run_context.original_args().cur_epoch_num))

    def on_train_end(self, run_context):
        self.events.append(("end",))


def test_hooks_fire_in_mindspores_order():
    _, _, model = _model()
    rec = _Recorder()
    model.train(2, _data(2), callbacks=rec)
    assert rec.entered and rec.exited
    assert rec.events == [("begin", 2), ("epoch_begin", 1), ("step_end", 1, 1, 2), ("step_end", 1, 2, 2),
                          ("epoch_end", 1), ("epoch_begin", 2), ("step_end", 2, 3, 2), ("step_end", 2, 4, 2),
                          ("epoch_end", 2), ("end",)]


def test_cb_params_and_run_context():
    net, opt, model = _model()
    seen = {}

    def step_end(run_context):
        p = run_context.original_args()
        seen.update(p)
        if p.cur_step_num == 2:
            run_context.request_stop()

    model.train(3, _data(), callbacks=[LambdaCallback(on_train_step_end=step_end)])
    assert seen["cur_step_num"] == 2 and seen["cur_epoch_num"] == 1 and seen["epoch_num"] == 3
    assert seen["train_network"] is model.train_network and seen["optimizer"] is opt and seen["network"] is net
    assert seen["mode"] == "train" and seen["dataset_sink_mode"] is False
    assert float(seen["net_outputs"]) > 0 and len(seen["train_dataset_element"]) == 2
    with pytest.raises(TypeError):
        RunContext([1])
    with pytest.raises(TypeError, match="Callback"):
        model.train(1, _data(), callbacks=[print])


def test_initial_epoch_counts_steps_from_there():
    _, _, model = _model()
    steps = []
    model.train(3, _data(2), callbacks=[LambdaCallback(
        on_train_step_end=lambda rc: steps.append((rc.original_args().cur_epoch_num, rc.original_args().cur_step_num)))],
        initial_epoch=2)
    assert steps == [(3, 5), (3, 6)]


def test_loss_and_time_monitors_print(capsys):
    _, _, model = _model()
    model.train(1, _data(4), callbacks=[LossMonitor(2), TimeMonitor()])
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(", loss is")[0] for line in lines[:2]] == ["epoch: 1 step: 2", "epoch: 1 step: 4"]
    assert lines[2].startswith("Train epoch time:") and "per step time:" in lines[2]
    with pytest.raises(ValueError):
        LossMonitor(-1)


def test_loss_monitor_stops_on_nan():
    net, _, model = _model()
    bad = [(np.full((4, 3), np.nan, np.float32), np.zeros((4, 2), np.float32))]
    with pytest.raises(ValueError, match="NAN or INF"):
        model.train(1, bad, callbacks=[LossMonitor()])


def test_progress_bar_counts_steps(capsys):
    _, _, model = _model()
    bar = ProgressBar()
    model.train(2, _data(3), callbacks=[bar])
    err = capsys.readouterr().err
    assert "6/6" in err and "loss=" in err


def test_eval_hooks():
    net = nn.Dense(3, 2)
    model = Model(net, nn.MSELoss(), metrics={"loss"})
    events = []
    model.eval(_data(2), callbacks=[LambdaCallback(on_eval_begin=lambda rc: events.append("begin"),
                                                   on_eval_step_end=lambda rc: events.append("step"),
                                                   on_eval_end=lambda rc: events.append(
                                                       sorted(rc.original_args().metrics)))])
    assert events == ["begin", "step", "step", ["loss"]]
