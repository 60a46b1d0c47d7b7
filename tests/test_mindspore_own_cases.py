"""Behaviour that MindSpore's own save/load, callback and export unit tests rely on, stated in our
words and checked against real MindSpore 2.10 (one subprocess for the whole table).

Running MindSpore's tests (tests/ut/python/utils/test_serialize.py, test_callback.py,
tests/ut/python/train/test_run_config.py and st save/load cases) against msjax showed these gaps:
MindSpore's import paths, the ``History`` callback, ``remove_redundancy`` and the exception types
of argument checks. ``Validator.check_isinstance`` raises ValueError in MindSpore, so a wrong
type for crc_check, enc_key/enc_mode, dec_key/dec_mode or remove_redundancy is a ValueError.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

import msjax
from msjax import nn
from msjax.train import CheckpointConfig, History, LossMonitor, ModelCheckpoint, RunContext
from oracle import requires_mindspore, run_mindspore

# expression -> evaluated in both worlds with ms (msjax or mindspore), nn, T (ms.train), np, net
# (a Dense(2, 2)) and "a.ckpt" (its checkpoint); the outcome is "ok" or the exception class MindSpore
# raises (msjax's own error classes count when they subclass it)
CASES = {
    "save crc_check str": 'ms.save_checkpoint(net, "x.ckpt", crc_check="y")',
    "save enc_key str": 'ms.save_checkpoint(net, "x.ckpt", enc_key="k")',
    "save enc_mode int": 'ms.save_checkpoint(net, "x.ckpt", enc_key=b"0" * 16, enc_mode=1)',
    "save remove_redundancy str": 'ms.save_checkpoint(net, "x.ckpt", remove_redundancy="y")',
    "save remove_redundancy False": 'ms.save_checkpoint(net, "x.ckpt", remove_redundancy=False)',
    "load crc_check str": 'ms.load_checkpoint("a.ckpt", crc_check="y")',
    "load dec_key str": 'ms.load_checkpoint("a.ckpt", dec_key="k")',
    "load dec_mode int": 'ms.load_checkpoint("a.ckpt", dec_mode=1)',
    "load remove_redundancy str": 'ms.load_checkpoint("a.ckpt", remove_redundancy="y")',
    "load remove_redundancy True, no net": 'ms.load_checkpoint("a.ckpt", remove_redundancy=True)',
    "load remove_redundancy True, net": 'ms.load_checkpoint("a.ckpt", net=net, remove_redundancy=True)',
    "into net remove_redundancy int": 'ms.load_param_into_net(net, ms.load_checkpoint("a.ckpt"), '
                                      'remove_redundancy=1)',
    "into net remove_redundancy True": 'ms.load_param_into_net(net, ms.load_checkpoint("a.ckpt"), '
                                       'remove_redundancy=True)',
    "config async_save int": "T.CheckpointConfig(async_save=1)",
    "config async_save bad str": 'T.CheckpointConfig(async_save="fork")',
    "config enc_key str": 'T.CheckpointConfig(enc_key="k")',
    "config enc_mode int": "T.CheckpointConfig(enc_mode=1)",
    "config crc_check int": "T.CheckpointConfig(crc_check=1)",
    "config remove_redundancy int": "T.CheckpointConfig(remove_redundancy=1)",
    "checkpoint directory int": "T.ModelCheckpoint(directory=1)",
    "checkpoint prefix int": "T.ModelCheckpoint(prefix=1)",
    "checkpoint config str": 'T.ModelCheckpoint(config="c")',
    "loss monitor float": "T.LossMonitor(1.5)",
    "loss monitor bool": "T.LossMonitor(True)",
    "loss monitor negative": "T.LossMonitor(-1)",
    "export file_name int": 'ms.export(net, ms.Tensor(np.ones((1, 2), np.float32)), file_name=1, '
                            'file_format="MINDIR")',
    "parameter name int": "ms.Parameter(ms.Tensor(np.ones(2, np.float32)), name=1)",
    "parameter requires_grad int": 'ms.Parameter(ms.Tensor(np.ones(2, np.float32)), name="p", requires_grad=1)',
    "import paths": "__import__(ms.__name__ + '.common.parameter', fromlist=['Parameter']).Parameter, "
                    "__import__(ms.__name__ + '.ops.operations', fromlist=['Add']).Add",
}

_RUN = """
import json
def outcomes(ms, nn, T, np):
    net = nn.Dense(2, 2)
    ms.save_checkpoint(net, "a.ckpt")
    got = {}
    for key, expr in CASES.items():
        try:
            eval(expr, {"ms": ms, "nn": nn, "T": T, "np": np, "net": net})
            got[key] = ["ok"]
        except Exception as err:  # noqa: BLE001
            got[key] = [c.__name__ for c in type(err).__mro__]
    return got
"""


@pytest.fixture(scope="module")
def mindspore_outcomes():
    code = f"CASES = json.loads({json.dumps(json.dumps(CASES))})\n" + _RUN + """
import mindspore.train as T
outputs["json"] = np.array(json.dumps({k: v[0] for k, v in outcomes(ms, nn, T, np).items()}))
"""
    return json.loads(str(run_mindspore("import json\n" + code)["json"]))


@requires_mindspore
def test_argument_checks_raise_what_mindspore_raises(mindspore_outcomes, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    scope = {"CASES": CASES}
    exec(_RUN, scope)  # noqa: S102  (our own table, run the same way MindSpore ran it)
    ours = scope["outcomes"](msjax, nn, msjax.train, np)
    wrong = {key: (expected, ours[key][0]) for key, expected in mindspore_outcomes.items()
             if expected not in ours[key]}
    assert not wrong, f"MindSpore vs msjax outcome: {wrong}"


def test_remove_redundancy_is_recorded_in_safetensors_metadata(tmp_path):
    from msjax.checkpoint import safetensors_format
    net = nn.Dense(2, 2)
    for flag, expected in ((None, {"format": "ms"}), (True, {"format": "ms", "remove_redundancy": "True"}),
                           (False, {"format": "ms", "remove_redundancy": "False"})):
        path = str(tmp_path / f"n_{flag}.safetensors")
        kwargs = {} if flag is None else {"remove_redundancy": flag}
        msjax.save_checkpoint(net, path, format="safetensors", **kwargs)
        assert safetensors_format.read_metadata(path) == expected
        assert sorted(msjax.load_checkpoint(path, format="safetensors")) == ["bias", "weight"]


def test_model_checkpoint_refuses_remove_redundancy_stand_alone(tmp_path):
    cb = ModelCheckpoint(directory=str(tmp_path), config=CheckpointConfig(remove_redundancy=True))
    run = RunContext(msjax.train.callback.InternalCallbackParam(
        train_network=nn.Dense(2, 2), cur_step_num=1, cur_epoch_num=1, batch_num=1))
    with pytest.raises(TypeError, match="parallel"):
        cb.step_end(run)


def test_history_records_epochs_outputs_and_metrics():
    history = History()
    params = msjax.train.callback.InternalCallbackParam(cur_epoch_num=1, net_outputs=msjax.Tensor([1.0, 3.0]),
                                                        metrics={"acc": 0.5})
    run = RunContext(params)
    history.begin(run)
    history.epoch_end(run)
    params.cur_epoch_num, params.net_outputs, params.metrics = 2, (msjax.Tensor(4.0), 7), {"acc": 0.75}
    history.epoch_end(run)
    assert history.epoch == {"epoch": [1, 2]}
    assert history.history["net_output"] == [2.0, 4.0] and history.history["acc"] == [0.5, 0.75]


def test_loss_monitor_type_and_value_errors():
    with pytest.raises(TypeError):
        LossMonitor(2.0)
    with pytest.raises(ValueError):
        LossMonitor(-2)
