"""Resume is exact: N+M steps in one run == N steps, save (sync/async), load into fresh cells, M steps."""
import numpy as np
import pytest

import msjax
from msjax import nn
from msjax.checkpoint import load_checkpoint, load_param_into_net
from msjax.train import CheckpointConfig, Model, ModelCheckpoint


class _Net(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Dense(6, 8)
        self.bn = nn.BatchNorm1d(8)
        self.fc2 = nn.Dense(8, 3)

    def construct(self, x):
        return self.fc2(self.bn(self.fc1(x)))


def _data():
    rng = np.random.RandomState(7)
    return [(rng.randn(5, 6).astype(np.float32), rng.randint(0, 3, 5).astype(np.int32)) for _ in range(3)]


def _model(seed):
    msjax.set_seed(seed)
    net = _Net()
    opt = nn.Momentum(net.trainable_params(), learning_rate=[0.1, 0.09, 0.08, 0.07, 0.06, 0.05], momentum=0.9,
                      weight_decay=1e-3)
    return net, opt, Model(net, nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean"), opt)


def _state(model):
    return {p.name: p.asnumpy().copy() for p in model.train_network.get_parameters()}


@pytest.fixture(scope="module")
def straight_run():
    _, _, model = _model(seed=0)
    model.train(2, _data())
    return _state(model)


@pytest.mark.parametrize("async_save", [False, True])
def test_resume_is_exact(tmp_path, straight_run, async_save):
    _, _, first = _model(seed=0)
    config = CheckpointConfig(save_checkpoint_steps=3, async_save=async_save)
    first.train(1, _data(), callbacks=[ModelCheckpoint(prefix="run", directory=tmp_path, config=config)])

    net, opt, second = _model(seed=123)  # fresh cells with other initial values
    param_dict = load_checkpoint(str(tmp_path / "run-1_3.ckpt"))
    assert int(param_dict["global_step"].asnumpy()[0]) == 3
    load_param_into_net(net, param_dict)
    load_param_into_net(opt, param_dict)
    resumed = ModelCheckpoint(prefix="run", directory=tmp_path, config=CheckpointConfig(save_checkpoint_steps=3))
    second.train(2, _data(), callbacks=[resumed], initial_epoch=1)

    got = _state(second)
    assert list(got) == list(straight_run)
    for name, value in straight_run.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-6, atol=1e-6, err_msg=name)
    # the resumed run continues the numbering: epoch 2, step 3 of the epoch, under the renamed prefix
    assert resumed.latest_ckpt_file_name.endswith("run_1-2_3.ckpt")
