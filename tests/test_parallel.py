"""Data parallel on a jax Mesh: MindSpore's auto-parallel context, ``Model`` over 8 simulated CPU
devices against one device, ModelCheckpoint under sharding and resuming on another device count.

XLA_FLAGS must be set before jax starts, so each device count runs in its own Python
(``_worker`` below, started by ``_spawn``); the test process compares what they report.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from oracle import requires_mindspore, run_mindspore

ROOT = Path(__file__).resolve().parents[1]
TOL = dict(rtol=2e-5, atol=2e-6)


# --------------------------------------------------------------------------- the context API

KEYS = ["parallel_mode", "device_num", "global_rank", "gradients_mean", "gradient_fp32_sync",
        "loss_repeated_mean", "parameter_broadcast", "full_batch", "dataset_strategy",
        "enable_parallel_optimizer", "search_mode", "pipeline_stages", "strategy_ckpt_save_file",
        "all_reduce_fusion_config", "enable_alltoall"]

#: set_auto_parallel_context calls; each is checked against MindSpore: the error type or the value read back
SETS = [dict(parallel_mode="data_parallel"), dict(parallel_mode="bogus"), dict(parallel_mode="DATA_PARALLEL"),
        dict(device_num=0), dict(device_num=8), dict(device_num="8"), dict(bogus_key=1), dict(gradients_mean=1),
        dict(gradients_mean=True), dict(global_rank=-1), dict(global_rank=3)]


@pytest.fixture(scope="module")
def mindspore_context():
    code = f"""
import json
keys, sets = {KEYS!r}, {[list(s.items()) for s in SETS]!r}
found = {{"defaults": [repr(ms.get_auto_parallel_context(k)) for k in keys], "sets": []}}
for kw in sets:
    ms.reset_auto_parallel_context()
    try:
        ms.set_auto_parallel_context(**dict(kw))
        found["sets"].append(repr(ms.get_auto_parallel_context(kw[0][0])))
    except Exception as err:
        found["sets"].append(type(err).__name__)
found["modes"] = [ms.ParallelMode.STAND_ALONE, ms.ParallelMode.DATA_PARALLEL, ms.ParallelMode.HYBRID_PARALLEL,
                  ms.ParallelMode.SEMI_AUTO_PARALLEL, ms.ParallelMode.AUTO_PARALLEL]
outputs["json"] = np.frombuffer(json.dumps(found).encode(), np.uint8)
"""
    return json.loads(run_mindspore(code)["json"].tobytes())


@pytest.fixture
def context():
    from msjax.common import parallel
    parallel.reset_auto_parallel_context()
    yield parallel
    parallel.reset_auto_parallel_context()


@requires_mindspore
def test_defaults_and_mode_names_are_mindspores(context, mindspore_context):
    assert [repr(context.get_auto_parallel_context(k)) for k in KEYS] == mindspore_context["defaults"]
    mode = context.ParallelMode
    assert [mode.STAND_ALONE, mode.DATA_PARALLEL, mode.HYBRID_PARALLEL, mode.SEMI_AUTO_PARALLEL,
            mode.AUTO_PARALLEL] == mindspore_context["modes"]


@requires_mindspore
@pytest.mark.parametrize("index", range(len(SETS)), ids=[",".join(f"{k}={v!r}" for k, v in s.items()) for s in SETS])
def test_set_checks_as_mindspore(context, mindspore_context, index):
    kwargs = SETS[index]
    try:
        context.set_auto_parallel_context(**kwargs)
        found = repr(context.get_auto_parallel_context(next(iter(kwargs))))
    except (TypeError, ValueError) as err:
        found = "TypeError" if isinstance(err, TypeError) else "ValueError"
    assert found == mindspore_context["sets"][index]


@pytest.mark.parametrize("mode", ["semi_auto_parallel", "auto_parallel", "hybrid_parallel"])
def test_model_parallel_modes_raise(context, mode):
    with pytest.raises(context.ParallelModeError, match="use 'data_parallel'"):
        context.set_auto_parallel_context(parallel_mode=mode)
    assert context.get_auto_parallel_context("parallel_mode") == "stand_alone"


def test_every_problem_in_one_error_and_reset(context):
    with pytest.raises(ValueError, match="bogus.*device_num"):
        context.set_auto_parallel_context(bogus=1, device_num=0)
    with pytest.raises(ValueError, match="not recognized"):
        context.get_auto_parallel_context("bogus")
    context.set_auto_parallel_context(parallel_mode="data_parallel", device_num=1, gradients_mean=True)
    assert context.data_parallel_mesh().size == 1
    context.reset_auto_parallel_context()
    assert context.get_auto_parallel_context("gradients_mean") is False and context.data_parallel_mesh() is None


def test_options_that_change_training_warn_once(context):
    with pytest.warns(UserWarning, match="enable_parallel_optimizer=True is ignored"):
        context.set_auto_parallel_context(enable_parallel_optimizer=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        context.set_auto_parallel_context(gradients_mean=True, parameter_broadcast=True)


def test_too_many_devices_says_how_to_get_them(context):
    context.set_auto_parallel_context(parallel_mode="data_parallel", device_num=4096)
    with pytest.raises(context.ParallelModeError, match="xla_force_host_platform_device_count=4096"):
        context.data_parallel_mesh()


def test_remove_redundancy_saves_under_data_parallel(context, tmp_path):
    import msjax
    from msjax.train import CheckpointConfig, ModelCheckpoint
    config = CheckpointConfig(remove_redundancy=True)
    model = _model(_nets()["lenet"]())
    with pytest.raises(TypeError, match="'stand_alone'"):
        model.train(1, _batches(1, rows=2), callbacks=[ModelCheckpoint(directory=tmp_path / "alone", config=config)])
    context.set_auto_parallel_context(parallel_mode="data_parallel", device_num=1)
    saver = ModelCheckpoint(directory=tmp_path / "dp", config=config)
    model.train(1, _batches(1, rows=2), callbacks=[saver])
    loaded = msjax.load_checkpoint(saver.latest_ckpt_file_name)
    assert list(loaded) == [p.name for p in model.train_network.get_parameters()]


# --------------------------------------------------------------------------- the worker (one per device count)

def _batches(count, rows=16, seed=1):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((rows, 1, 32, 32)).astype(np.float32),
             rng.integers(0, 10, rows).astype(np.int32)) for _ in range(count)]


def _nets():
    """name -> a function building the net with fixed, seeded initial values."""
    import msjax
    from msjax import nn
    from msjax.models.lenet import LeNet5

    class BNNet(nn.Cell):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3, stride=2)
            self.bn = nn.BatchNorm2d(4)
            self.relu = nn.ReLU()
            self.flatten = nn.Flatten()
            self.fc = nn.Dense(4 * 16 * 16, 10)

        def construct(self, x):
            return self.fc(self.flatten(self.relu(self.bn(self.conv(x)))))

    def seeded(cls):
        def build():
            net, rng = cls(), np.random.default_rng(0)
            for p in net.trainable_params():
                p.set_data(msjax.Tensor((rng.standard_normal(p.shape) * 0.1).astype(np.float32)))
            return net
        return build
    return {"lenet": seeded(LeNet5), "bn": seeded(BNNet)}


def _model(net, sens=None):
    from msjax import nn
    from msjax.train import Model
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    opt = nn.Momentum(net.trainable_params(), 0.01, 0.9)
    if sens is None:
        return Model(net, loss, opt, metrics={"loss", "accuracy"})
    return Model(nn.TrainOneStepCell(nn.WithLossCell(net, loss), opt, sens=sens))


def _train(model, batches, callbacks=()):
    """Losses of one epoch over ``batches`` and the shardings the step saw."""
    import jax
    from msjax.common.tensor import unwrap
    from msjax.train import Callback
    seen = {"losses": [], "batch_spec": None, "batch_shards": None}

    class Record(Callback):
        def on_train_step_end(self, run_context):
            cb = run_context.original_args()
            seen["losses"].append(float(np.asarray(cb.net_outputs)))
            value = unwrap(cb.train_dataset_element[0])
            if isinstance(value, jax.Array) and hasattr(value.sharding, "spec"):
                seen["batch_spec"] = list(value.sharding.spec)
                seen["batch_shards"] = sorted({tuple(s.data.shape) for s in value.addressable_shards})
            seen["device_number"] = cb.device_number
    model.train(1, batches, callbacks=[Record(), *callbacks])
    return seen


def _params(network):
    return {p.name: np.asarray(p.get_value()).tolist() for p in network.get_parameters()}


def _worker_compare(out):
    """8 devices (and 1, in the same process, as stand_alone): losses, parameters, shardings."""
    import jax
    from msjax.common import parallel
    batches, nets = _batches(3), _nets()
    for name in ("lenet", "bn"):
        parallel.reset_auto_parallel_context()
        one_model = _model(nets[name]())
        one = _train(one_model, batches)
        one["params"] = _params(one_model.train_network)
        parallel.set_auto_parallel_context(parallel_mode="data_parallel", gradients_mean=True)
        dp_model = _model(nets[name]())
        dp = _train(dp_model, batches)
        dp["params"] = _params(dp_model.train_network)
        shardings = [p.get_value().sharding for p in dp_model.train_network.get_parameters()]
        dp["replicated"] = all(s.is_fully_replicated and len(s.device_set) == 8 for s in shardings)
        dp["eval"] = dp_model.eval(batches[:2])
        dp["predict"] = np.asarray(dp_model.predict(batches[0][0])).tolist()
        parallel.reset_auto_parallel_context()
        one["eval"] = one_model.eval(batches[:2])
        one["predict"] = np.asarray(one_model.predict(batches[0][0])).tolist()
        out[name] = {"one": one, "dp": dp}
    # gradients_mean=False: MindSpore sums the 8 devices' gradients = one device with sens=8
    parallel.set_auto_parallel_context(parallel_mode="data_parallel", device_num=8)
    summed = _train(_model(nets["lenet"]()), batches)
    parallel.reset_auto_parallel_context()
    out["sum"] = {"dp": summed, "one": _train(_model(nets["lenet"](), sens=8.0), batches)}
    # device_num picks the first devices; a batch that does not split is refused
    parallel.set_auto_parallel_context(parallel_mode="data_parallel", device_num=4, gradients_mean=True)
    out["four"] = _train(_model(nets["lenet"]()), batches[:1])
    parallel.set_auto_parallel_context(device_num=8)
    try:
        _model(nets["lenet"]()).train(1, _batches(1, rows=12))
    except parallel.ParallelModeError as err:
        out["indivisible"] = str(err)
    out["devices"] = len(jax.devices())


def _worker_save(out, directory, devices, resume):
    """Train 3 steps on ``devices`` (data parallel when > 1), optionally after loading ``resume``;
    save a .ckpt and an orbax checkpoint; report the 4th step's loss and the saved values."""
    import msjax
    from msjax.common import parallel
    from msjax.train import CheckpointConfig, ModelCheckpoint
    batches = _batches(4, seed=2)
    parallel.reset_auto_parallel_context()
    if devices > 1:
        parallel.set_auto_parallel_context(parallel_mode="data_parallel", gradients_mean=True)
    out["resumed"] = {}
    for kind, path in (resume or {}).items():
        model = _model(_nets()["lenet"]())
        msjax.load_param_into_net(model.train_network, _load(path), strict_load=True)
        out["resumed"][kind] = _train(model, batches[3:])["losses"][0]
    model = _model(_nets()["lenet"]())
    saves = [ModelCheckpoint(prefix=f"d{devices}", directory=directory,
                             config=CheckpointConfig(save_checkpoint_steps=3, integrated_save=True)),
             ModelCheckpoint(prefix=f"d{devices}", directory=directory,
                             config=CheckpointConfig(save_checkpoint_steps=3, format="orbax"))]
    _train(model, batches[:3], callbacks=saves)
    out["files"] = {"ckpt": saves[0].latest_ckpt_file_name, "orbax": saves[1].latest_ckpt_file_name}
    out["saved"] = _params(model.train_network)
    out["next_loss"] = _train(model, batches[3:])["losses"][0]


def _load(path):
    """name -> Parameter of a .ckpt file or an orbax checkpoint directory."""
    import msjax
    from msjax.checkpoint.orbax_format import load_orbax
    return load_orbax(path) if path.endswith(".orbax") else msjax.load_checkpoint(path)


def _spawn(devices, task, *args, timeout=600):
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", JAX_PLATFORMS="cpu",
               PYTHONWARNINGS="ignore")
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); import test_parallel as t; out = {}; "
            "getattr(t, sys.argv[2])(out, *json.loads(sys.argv[3])); print('@@' + json.dumps(out, default=float))")
    proc = subprocess.run([sys.executable, "-c", code, str(ROOT / "tests"), task, json.dumps(args)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-6000:]
    return json.loads(proc.stdout.rsplit("@@", 1)[1])


# --------------------------------------------------------------------------- 8 devices against one

def _worker_eight(out, directory):
    """Both 8-device tasks in one Python (one start-up fewer)."""
    _worker_compare(out)
    out["save"] = {}
    _worker_save(out["save"], directory, 8, None)


@pytest.fixture(scope="module")
def eight(tmp_path_factory):
    return _spawn(8, "_worker_eight", str(tmp_path_factory.mktemp("dp8")))


@pytest.fixture(scope="module")
def compared(eight):
    return eight


@pytest.mark.parametrize("name", ["lenet", "bn"])
def test_eight_devices_train_as_one(compared, name):
    one, dp = compared[name]["one"], compared[name]["dp"]
    assert compared["devices"] == 8 and dp["device_number"] == 8
    np.testing.assert_allclose(dp["losses"], one["losses"], **TOL)
    for key in one["params"]:            # weights, BatchNorm statistics, momentum state
        np.testing.assert_allclose(dp["params"][key], one["params"][key], **TOL, err_msg=key)
    assert dp["replicated"]
    assert dp["batch_spec"] == ["data"] and dp["batch_shards"] == [[2, 1, 32, 32]]
    assert one["batch_spec"] is None
    np.testing.assert_allclose(dp["eval"]["loss"], one["eval"]["loss"], **TOL)
    assert dp["eval"]["accuracy"] == one["eval"]["accuracy"]
    np.testing.assert_allclose(dp["predict"], one["predict"], **TOL)


def test_gradients_mean_false_sums_as_mindspore(compared):
    np.testing.assert_allclose(compared["sum"]["dp"]["losses"], compared["sum"]["one"]["losses"], **TOL)
    assert compared["sum"]["dp"]["losses"] != compared["lenet"]["dp"]["losses"]


def test_device_num_and_indivisible_batch(compared):
    assert compared["four"]["device_number"] == 4 and compared["four"]["batch_shards"] == [[4, 1, 32, 32]]
    np.testing.assert_allclose(compared["four"]["losses"][0], compared["lenet"]["one"]["losses"][0], **TOL)
    assert "8 devices" in compared["indivisible"] and "12 rows" in compared["indivisible"]


# --------------------------------------------------------------------------- checkpoints across device counts

@pytest.fixture(scope="module")
def saved_on_eight(eight):
    return eight["save"]


@requires_mindspore
def test_integrated_ckpt_is_one_file_mindspore_loads(saved_on_eight):
    path = saved_on_eight["files"]["ckpt"]
    assert path.endswith("d8-1_3.ckpt") and os.path.isfile(path)
    assert os.path.isdir(saved_on_eight["files"]["orbax"])
    code = f"""
params = ms.load_checkpoint({path!r})
for name, p in params.items():
    outputs[name] = p.asnumpy()
"""
    loaded = run_mindspore(code)
    assert set(loaded) == set(saved_on_eight["saved"])
    for name, value in saved_on_eight["saved"].items():
        np.testing.assert_array_equal(loaded[name], np.asarray(value, loaded[name].dtype), err_msg=name)


@pytest.mark.slow
def test_resume_eight_to_one_to_four(saved_on_eight, tmp_path):
    one = _spawn(1, "_worker_save", str(tmp_path / "one"), 1, saved_on_eight["files"])
    for kind in ("ckpt", "orbax"):
        np.testing.assert_allclose(one["resumed"][kind], saved_on_eight["next_loss"], **TOL, err_msg=kind)
    four = _spawn(4, "_worker_save", str(tmp_path / "four"), 4, one["files"])
    for kind in ("ckpt", "orbax"):
        np.testing.assert_allclose(four["resumed"][kind], one["next_loss"], **TOL, err_msg=kind)
