"""A compiled Cell call's cached graph walk: state changes between and during calls (BatchNorm
statistics, dropout RNG counters, loaded or replaced Parameters, train/eval switches) give exactly
what a fresh walk on every call gives (the cache emptied before each call)."""
import numpy as np
from flax import nnx

import msjax
from msjax import Parameter, Tensor, nn
from msjax.checkpoint import load_param_into_net
from msjax.nn import cell


class _Net(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc = nn.Dense(4, 3)
        self.bn = nn.BatchNorm1d(3)
        self.drop = nn.Dropout(p=0.5)

    def construct(self, x):
        return self.drop(self.bn(self.fc(x)))


def _run(fresh_walk_each_call):
    msjax.set_seed(3)
    net = _Net().set_train()
    rng = np.random.RandomState(0)
    xs = [rng.randn(5, 4).astype(np.float32) for _ in range(6)]
    between = [
        lambda: None,
        lambda: None,                                                        # RNG counter advances
        lambda: load_param_into_net(net, {"fc.bias": Parameter(np.full(3, 0.5, np.float32), name="fc.bias")}),
        lambda: net.fc.weight.set_data(Tensor(np.ones((3, 4), np.float32))),
        lambda: setattr(net.bn, "moving_mean", Parameter(np.ones(3, np.float32))),   # a replaced Parameter
        lambda: net.set_train(False),
    ]
    outs = []
    for x, change in zip(xs, between):
        change()
        if fresh_walk_each_call:
            cell._flat_cache.clear()
        outs.append(net(Tensor(x)).asnumpy())
    outs.append(net(Tensor(xs[0][:2])).asnumpy())  # a new input shape
    return outs, {k: p.asnumpy() for k, p in net.parameters_dict().items()}, net.bn.moving_mean


def test_cached_forward_equals_a_fresh_walk_every_call():
    cached_outs, cached, cached_mean = _run(False)
    fresh_outs, fresh, _ = _run(True)
    for a, b in zip(cached_outs, fresh_outs):
        np.testing.assert_array_equal(a, b)
    assert list(cached) == list(fresh)
    for name in fresh:
        np.testing.assert_array_equal(cached[name], fresh[name], err_msg=name)
    assert np.all(cached_mean.asnumpy() != 1)  # the replaced Parameter object got the new statistics


def test_dropout_masks_differ_between_calls_and_stats_move():
    msjax.set_seed(1)
    net = _Net().set_train()
    x = Tensor(np.ones((8, 4), np.float32))
    mean = net.bn.moving_mean
    a, b = net(x).asnumpy(), net(x).asnumpy()
    assert not np.array_equal(a == 0, b == 0)       # the RNG counter was written back
    assert net.bn.moving_mean is mean and np.abs(mean.asnumpy()).sum() > 0


class _Grows(nn.Cell):
    """Adds a Parameter on its first call: the structure changes inside construct."""

    def __init__(self):
        super().__init__()
        self.w = Parameter(np.full(2, 2.0, np.float32))

    def construct(self, x):
        if not hasattr(self, "calls"):
            self.calls = Parameter(np.zeros(1, np.float32))
        self.calls.set_value(self.calls.get_value() + 1)
        return x * self.w


def test_structure_change_inside_construct_falls_back_to_the_whole_state():
    net = _Grows()
    x = Tensor(np.ones(2, np.float32))
    np.testing.assert_array_equal(net(x).asnumpy(), [2.0, 2.0])
    assert isinstance(net.calls, nnx.Variable) and float(net.calls.asnumpy()[0]) == 1
    np.testing.assert_array_equal(net(x).asnumpy(), [2.0, 2.0])
    assert float(net.calls.asnumpy()[0]) == 2


def test_one_trace_per_input_signature_through_the_cache():
    class CacheProbe(nn.Cell):
        def __init__(self):
            super().__init__()
            self.fc = nn.Dense(2, 2)

        def construct(self, x):
            return self.fc(x)

    cell.TRACE_COUNTS.pop("CacheProbe", None)
    net = CacheProbe()
    for _ in range(3):
        net(Tensor(np.ones((1, 2), np.float32)))
    net.fc.weight.set_data(Tensor(np.zeros((2, 2), np.float32)))
    out = net(Tensor(np.ones((1, 2), np.float32))).asnumpy()
    np.testing.assert_array_equal(out, net.fc.bias.asnumpy()[None])
    assert cell.TRACE_COUNTS["CacheProbe"] == 1


class _PlainArray(nn.Cell):
    """A plain-array attribute (not a Variable) that construct replaces: written back by path."""

    def __init__(self):
        super().__init__()
        self.count = nnx.data(np.zeros(2, np.float32))

    def construct(self, x):
        self.count = self.count + 1
        return x * self.count


def test_plain_array_attributes_are_written_back():
    net = _PlainArray()
    x = Tensor(np.ones(2, np.float32))
    for k in (1, 2, 3):
        np.testing.assert_array_equal(net(x).asnumpy(), [k, k])
    np.testing.assert_array_equal(np.asarray(net.count), [3, 3])
