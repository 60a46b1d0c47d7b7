"""ModelCheckpoint / CheckpointConfig policies: steps, seconds, keep max, per-n-minutes, reruns, ..."""
import importlib.util
import os
import warnings

import numpy as np
import pytest

import msjax
from msjax import nn
from msjax.checkpoint import load_checkpoint
from msjax.train import CheckpointConfig, LambdaCallback, Model, ModelCheckpoint
from msjax.train.callback import _checkpoint
from oracle import requires_mindspore, run_mindspore


def _data(n):
    rng = np.random.RandomState(0)
    return [(rng.randn(4, 3).astype(np.float32), rng.randn(4, 2).astype(np.float32)) for _ in range(n)]


def _model(seed=0):
    msjax.set_seed(seed)
    net = nn.Dense(3, 2)
    return net, Model(net, nn.MSELoss(), nn.Momentum(net.trainable_params(), 0.1, 0.9))


def _ckpts(directory):
    return sorted(f for f in os.listdir(directory) if f.endswith(".ckpt"))


def _train(directory, config, steps, epochs=1, prefix="CKP", extra=(), seed=0):
    net, model = _model(seed)
    cb = ModelCheckpoint(prefix=prefix, directory=directory, config=config)
    model.train(epochs, _data(steps), callbacks=[cb, *extra])
    return net, model, cb


def test_step_policy_keeps_newest(tmp_path):
    _train(tmp_path, CheckpointConfig(save_checkpoint_steps=1, keep_checkpoint_max=2), steps=3, epochs=2)
    assert _ckpts(tmp_path) == ["CKP-2_2.ckpt", "CKP-2_3.ckpt"]


def test_last_step_is_saved_at_train_end(tmp_path):
    _train(tmp_path, CheckpointConfig(save_checkpoint_steps=3, keep_checkpoint_max=10), steps=5)
    assert _ckpts(tmp_path) == ["CKP-1_3.ckpt", "CKP-1_5.ckpt"]


def test_seconds_policy(tmp_path, clock):
    tick = LambdaCallback(on_train_step_begin=lambda rc: setattr(clock, "now", clock.now + 1.0))
    _train(tmp_path, CheckpointConfig(save_checkpoint_steps=0, save_checkpoint_seconds=2, keep_checkpoint_max=10),
           steps=7, extra=[tick])
    # saved when more than 2 s passed since the last save (t=3, t=6), and the last step at the end
    assert _ckpts(tmp_path) == ["CKP-1_3.ckpt", "CKP-1_6.ckpt", "CKP-1_7.ckpt"]


def test_keep_per_n_minutes(tmp_path, clock):
    tick = LambdaCallback(on_train_step_begin=lambda rc: setattr(clock, "now", clock.now + 20.0))
    _train(tmp_path, CheckpointConfig(save_checkpoint_steps=1, keep_checkpoint_max=0, keep_checkpoint_per_n_minutes=1),
           steps=6, extra=[tick])
    # files every 20 s; within each minute only the oldest survives the next save
    assert _ckpts(tmp_path) == ["CKP-1_1.ckpt", "CKP-1_3.ckpt", "CKP-1_5.ckpt", "CKP-1_6.ckpt"]


def test_rerun_renames_prefix(tmp_path):
    config = CheckpointConfig(save_checkpoint_steps=2, keep_checkpoint_max=5)
    for _ in range(3):
        _train(tmp_path, config, steps=2, prefix="net")
    assert _ckpts(tmp_path) == ["net-1_2.ckpt", "net_1-1_2.ckpt", "net_2-1_2.ckpt"]
    metas = sorted(f for f in os.listdir(tmp_path) if f.endswith("graph.meta"))
    if importlib.util.find_spec("msjax_exporters.graph_meta") is not None:
        assert metas == ["net-graph.meta", "net_1-graph.meta", "net_2-graph.meta"]


@requires_mindspore
@pytest.mark.mindspore
def test_rename_rule_and_config_resolution_match_mindspore(tmp_path):
    listings = {
        "empty": [],
        "same": ["net-1_2.ckpt", "net-graph.meta"],
        "numbered": ["net-1_2.ckpt", "net_1-1_2.ckpt", "net_7-2_2.safetensors"],
        "other": ["network-1_1.ckpt", "net.txt", "net-1_1_breakpoint.ckpt"],
        "breakpoint": ["net-1_1_breakpoint.ckpt"],
    }
    configs = {
        "both_save": dict(save_checkpoint_steps=5, save_checkpoint_seconds=10),
        "seconds_only": dict(save_checkpoint_steps=0, save_checkpoint_seconds=10),
        "both_keep": dict(keep_checkpoint_max=3, keep_checkpoint_per_n_minutes=2),
        "minutes_only": dict(keep_checkpoint_max=0, keep_checkpoint_per_n_minutes=2),
        "nothing_kept": dict(keep_checkpoint_max=0),
    }
    code = f"LISTINGS = {listings!r}\nCONFIGS = {configs!r}\nROOT = {str(tmp_path)!r}\n" + """
from mindspore.train.callback._checkpoint import _chg_ckpt_file_name_if_same_exist
from mindspore.train import CheckpointConfig
for case, files in LISTINGS.items():
    d = os.path.join(ROOT, case); os.makedirs(d)
    for f in files:
        open(os.path.join(d, f), "wb").close()
    outputs["rename/" + case] = np.array(_chg_ckpt_file_name_if_same_exist(d, "net"))
    outputs["rename_exc/" + case] = np.array(_chg_ckpt_file_name_if_same_exist(d, "net", True))
for case, kwargs in CONFIGS.items():
    pol = CheckpointConfig(**kwargs).get_checkpoint_policy()
    outputs["config/" + case] = np.array([-1 if pol[k] is None else pol[k] for k in
        ("save_checkpoint_steps", "save_checkpoint_seconds", "keep_checkpoint_max", "keep_checkpoint_per_n_minutes")])
"""
    expected = run_mindspore(code)
    for case, files in listings.items():
        d = tmp_path / ("msjax_" + case)
        d.mkdir()
        for f in files:
            (d / f).touch()
        assert _checkpoint._chg_ckpt_file_name_if_same_exist(str(d), "net") == str(expected["rename/" + case]), case
        assert (_checkpoint._chg_ckpt_file_name_if_same_exist(str(d), "net", True)
                == str(expected["rename_exc/" + case])), case
    for case, kwargs in configs.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pol = CheckpointConfig(**kwargs).get_checkpoint_policy()
        got = [-1 if pol[k] is None else pol[k] for k in ("save_checkpoint_steps", "save_checkpoint_seconds",
                                                          "keep_checkpoint_max", "keep_checkpoint_per_n_minutes")]
        assert got == expected["config/" + case].tolist(), case


def test_ignored_combinations_warn_once_naming_the_winner():
    with pytest.warns(UserWarning, match="save_checkpoint_steps=1 wins") as record:
        CheckpointConfig(save_checkpoint_seconds=100)
    assert len(record) == 1
    with pytest.warns(UserWarning, match="keep_checkpoint_max=5 wins"):
        CheckpointConfig(keep_checkpoint_per_n_minutes=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        CheckpointConfig(save_checkpoint_steps=0, save_checkpoint_seconds=100, keep_checkpoint_max=0,
                         keep_checkpoint_per_n_minutes=5)


@pytest.mark.parametrize("kwargs, error", [
    (dict(save_checkpoint_steps=-1), ValueError),
    (dict(save_checkpoint_steps=1.5), TypeError),
    (dict(save_checkpoint_steps=0, keep_checkpoint_max=0), ValueError),
    (dict(saved_network=object()), TypeError),
    (dict(append_info="epoch_num"), TypeError),
    (dict(append_info=["epochs"]), ValueError),
    (dict(append_info=[{"a": 1}, {"b": 2}]), TypeError),
    (dict(enc_key="key"), ValueError),      # MindSpore: Validator.check_isinstance -> ValueError
    (dict(async_save="fork"), ValueError),
    (dict(format="safetensors", crc_check=True), ValueError),
])
def test_config_rejects_bad_arguments(kwargs, error):
    with pytest.raises(error):
        CheckpointConfig(**kwargs)


def test_model_checkpoint_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="prefix"):
        ModelCheckpoint(prefix="a/b", directory=tmp_path)
    with pytest.raises(TypeError, match="config"):
        ModelCheckpoint(directory=tmp_path, config={"save_checkpoint_steps": 1})


def test_append_info(tmp_path):
    config = CheckpointConfig(save_checkpoint_steps=2, append_info=["epoch_num", "step_num", {"tag": 7, "lr": 0.5}])
    _train(tmp_path, config, steps=2, epochs=2)
    params = load_checkpoint(str(tmp_path / "CKP-2_2.ckpt"))
    assert int(params["epoch_num"].asnumpy()) == 2 and int(params["step_num"].asnumpy()) == 4
    assert int(params["tag"].asnumpy()) == 7 and float(params["lr"].asnumpy()) == pytest.approx(0.5)
    assert list(params)[:2] == ["weight", "bias"]


def test_saved_network_saves_only_that_network(tmp_path):
    msjax.set_seed(0)
    net = nn.Dense(3, 2)
    model = Model(net, nn.MSELoss(), nn.Momentum(net.trainable_params(), 0.1, 0.9))
    cb = ModelCheckpoint(directory=tmp_path, config=CheckpointConfig(save_checkpoint_steps=2, saved_network=net))
    model.train(1, _data(2), callbacks=[cb])
    params = load_checkpoint(str(tmp_path / "CKP-1_2.ckpt"))
    assert list(params) == ["weight", "bias"]
    np.testing.assert_array_equal(params["weight"].asnumpy(), net.weight.asnumpy())


def test_exception_save_writes_a_breakpoint_file(tmp_path):
    def boom(run_context):
        if run_context.original_args().cur_step_num == 3:
            raise RuntimeError("data pipeline died")

    with pytest.raises(RuntimeError, match="pipeline died"):
        _train(tmp_path, CheckpointConfig(save_checkpoint_steps=10, exception_save=True), steps=5,
               extra=[LambdaCallback(on_train_step_end=boom)])
    assert _ckpts(tmp_path) == ["CKP-1_3_breakpoint.ckpt"]
    assert "moments.weight" in load_checkpoint(str(tmp_path / "CKP-1_3_breakpoint.ckpt"))


def test_request_stop_saves_the_last_step(tmp_path):
    stop = LambdaCallback(on_train_step_end=lambda rc: rc.request_stop()
                          if rc.original_args().cur_step_num == 2 else None)
    _, model, cb = _train(tmp_path, CheckpointConfig(save_checkpoint_steps=5), steps=4, epochs=3, extra=[stop])
    assert _ckpts(tmp_path) == ["CKP-1_2.ckpt"]
    assert int(load_checkpoint(cb.latest_ckpt_file_name)["global_step"].asnumpy()[0]) == 2


def test_async_save_writes_the_same_values(tmp_path):
    (tmp_path / "sync").mkdir()
    (tmp_path / "async").mkdir()
    _train(tmp_path / "sync", CheckpointConfig(save_checkpoint_steps=1, keep_checkpoint_max=10), steps=3)
    _train(tmp_path / "async", CheckpointConfig(save_checkpoint_steps=1, keep_checkpoint_max=10, async_save=True),
           steps=3)
    assert _ckpts(tmp_path / "sync") == _ckpts(tmp_path / "async") == ["CKP-1_1.ckpt", "CKP-1_2.ckpt", "CKP-1_3.ckpt"]
    for name in _ckpts(tmp_path / "sync"):
        a, b = load_checkpoint(str(tmp_path / "sync" / name)), load_checkpoint(str(tmp_path / "async" / name))
        assert list(a) == list(b)
        for key in a:
            np.testing.assert_array_equal(a[key].asnumpy(), b[key].asnumpy())
