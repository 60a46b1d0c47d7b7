"""The train step's cached graph walk: changes made between steps reach the next step exactly as
when every step walks the graph afresh (the cache emptied before each call)."""
import numpy as np

import msjax
from msjax import Parameter, Tensor, nn
from msjax.checkpoint import load_param_into_net
from msjax.nn import cell


class _Net(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc = nn.Dense(4, 3)
        self.bn = nn.BatchNorm1d(3)

    def construct(self, x):
        return self.bn(self.fc(x))


def _run(fresh_walk_each_step):
    msjax.set_seed(7)
    net = _Net()
    opt = nn.Momentum(net.trainable_params(), 0.1, 0.9)
    step = nn.TrainOneStepCell(nn.WithLossCell(net, nn.SoftmaxCrossEntropyWithLogits(True, "mean")), opt).set_train()
    rng = np.random.RandomState(0)
    data = [(rng.randn(6, 4).astype(np.float32), rng.randint(0, 3, 6).astype(np.int32)) for _ in range(6)]
    between = [
        lambda: None,
        lambda: load_param_into_net(net, {"fc.bias": Parameter(np.full(3, 0.5, np.float32), name="fc.bias")}),
        lambda: step.set_train(False),                       # BatchNorm uses its moving statistics
        lambda: step.set_train(True),
        lambda: setattr(net.bn, "moving_mean", Parameter(np.ones(3, np.float32))),   # a replaced Parameter
        lambda: net(Tensor(data[0][0])),                     # a forward call of the network in between
    ]
    losses = []
    for (x, y), change in zip(data, between):
        change()
        if fresh_walk_each_step:
            cell._flat_cache.clear()
        losses.append(step(Tensor(x), Tensor(y)).asnumpy())
    x, y = data[0]
    losses.append(step(Tensor(x[:2]), Tensor(y[:2])).asnumpy())  # a new input shape
    params = {k: p.asnumpy() for k, p in step.parameters_dict().items()}
    return losses, params, net.bn.moving_mean.asnumpy()


def test_cached_step_equals_a_fresh_walk_every_step():
    cached_losses, cached, cached_mean = _run(False)
    fresh_losses, fresh, fresh_mean = _run(True)
    np.testing.assert_array_equal(cached_losses, fresh_losses)
    assert list(cached) == list(fresh)
    for name in fresh:
        np.testing.assert_array_equal(cached[name], fresh[name], err_msg=name)
    np.testing.assert_array_equal(cached_mean, fresh_mean)
    assert np.all(cached_mean != 1)  # the replaced Parameter (ones) was updated by the step


def test_step_writes_into_the_users_parameter_objects():
    net = _Net()
    opt = nn.Momentum(net.trainable_params(), 0.1, 0.9)
    step = nn.TrainOneStepCell(nn.WithLossCell(net, nn.SoftmaxCrossEntropyWithLogits(True, "mean")), opt).set_train()
    weight, moment = net.fc.weight, opt.moments[0]
    x, y = Tensor(np.ones((2, 4), np.float32)), Tensor(np.array([0, 1], np.int32))
    before = weight.asnumpy().copy()
    for _ in range(3):
        step(x, y)
    assert net.fc.weight is weight and opt.moments[0] is moment
    assert not np.array_equal(weight.asnumpy(), before) and np.abs(moment.asnumpy()).sum() > 0
    assert int(opt.global_step.asnumpy()[0]) == 3
