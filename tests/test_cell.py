"""Cell behaviour: jit cache, modes, context fallback, MindSpore parameter naming and containers."""
import warnings
from collections import OrderedDict

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import msjax
from msjax import nn, ops
from msjax.common.tensor import Tensor, unwrap
from msjax.nn.cell import TRACE_COUNTS


@pytest.fixture
def restore_context():
    before = {k: msjax.get_context(k) for k in ("mode", "device_target")}
    yield
    msjax.set_context(mode=before["mode"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        msjax.set_context(device_target=before["device_target"])


class TwoLayer(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Dense(4, 8)
        self.bn = nn.BatchNorm1d(8)
        self.drop = nn.Dropout(p=0.5)
        self.fc2 = nn.Dense(8, 3)
        self.act = ops.ReLU()

    def construct(self, x):
        return self.fc2(self.drop(self.act(self.bn(self.fc1(x)))))


def _x(n=2, seed=0):
    return msjax.Tensor(np.random.default_rng(seed).normal(size=(n, 4)).astype(np.float32))


def test_one_trace_per_input_signature():
    class TraceProbe(nn.Cell):
        def __init__(self):
            super().__init__()
            self.fc = nn.Dense(4, 3)

        def construct(self, x):
            return self.fc(x)

    net = TraceProbe()
    TRACE_COUNTS.pop("TraceProbe", None)
    for seed in range(3):
        net(_x(2, seed))
    assert TRACE_COUNTS["TraceProbe"] == 1
    net(_x(5))
    net(_x(5, 1))
    assert TRACE_COUNTS["TraceProbe"] == 2  # a new shape retraces exactly once
    net(_x(2, 9))
    assert TRACE_COUNTS["TraceProbe"] == 2


def test_graph_and_pynative_modes_agree(restore_context):
    net = TwoLayer()
    x = _x(6)
    for train in (False, True):
        net.set_train(train)
        net.drop.set_train(False)  # dropout randomness aside, both modes compute the same thing
        graphdef, state = nnx.split(net)
        msjax.set_context(mode=msjax.GRAPH_MODE)
        graph_out = nnx.merge(graphdef, state)(x)
        msjax.set_context(mode=msjax.PYNATIVE_MODE)
        eager_out = nnx.merge(graphdef, state)(x)
        assert isinstance(graph_out, msjax.Tensor) and isinstance(eager_out, msjax.Tensor)
        np.testing.assert_allclose(graph_out.asnumpy(), eager_out.asnumpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("target", ["GPU", "Ascend"])
def test_device_target_falls_back_to_cpu_with_one_warning(restore_context, target):
    if jax.devices()[0].platform != "cpu":
        pytest.skip("this check is for a CPU-only machine")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        msjax.set_context(device_target=target)
    runtime = [w for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(runtime) == 1 and target in str(runtime[0].message)
    assert msjax.get_context("device_target") == "CPU"
    out = nn.Dense(4, 2)(_x())
    assert out.shape == (2, 2)


def test_parameter_names_follow_container_indices():
    class Block(nn.Cell):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(2, 2, 1)
            self.bn1 = nn.BatchNorm2d(2)

    class Net(nn.Cell):
        def __init__(self):
            super().__init__()
            self.layer1 = nn.SequentialCell([Block(), Block()])
            self.heads = nn.CellList([nn.Dense(2, 2), nn.Dense(2, 1, has_bias=False)])
            self.named = nn.SequentialCell(OrderedDict([("proj", nn.Dense(2, 2)), ("act", nn.ReLU())]))

    net = Net()
    names = [name for name, _ in net.parameters_and_names()]
    assert names[:5] == ["layer1.0.conv1.weight", "layer1.0.bn1.moving_mean", "layer1.0.bn1.moving_variance",
                         "layer1.0.bn1.gamma", "layer1.0.bn1.beta"]
    assert "layer1.1.conv1.weight" in names
    assert names[-5:] == ["heads.0.weight", "heads.0.bias", "heads.1.weight", "named.proj.weight", "named.proj.bias"]
    assert [p.name for p in net.get_parameters()] == names
    assert list(net.parameters_dict()) == names
    # definition order survives nnx.split/merge (nnx itself sorts attributes by name)
    graphdef, state = nnx.split(net)
    assert [name for name, _ in nnx.merge(graphdef, state).parameters_and_names()] == names


def test_sequential_and_cell_list_behave_like_lists():
    seq = nn.SequentialCell(nn.Dense(3, 4), nn.ReLU())
    assert len(seq) == 2 and isinstance(seq[1], nn.ReLU) and isinstance(seq[-2], nn.Dense)
    seq.append(nn.Dense(4, 2))
    assert len(seq) == 3 and [n for n, _ in seq.parameters_and_names()][-2:] == ["2.weight", "2.bias"]
    assert seq(msjax.Tensor(np.ones((5, 3), np.float32))).shape == (5, 2)
    assert len(seq[:2]) == 2

    class Holder(nn.Cell):
        def __init__(self):
            super().__init__()
            self.blocks = nn.CellList([nn.Dense(2, 2)])

    holder = Holder()
    holder.blocks.append(nn.Dense(2, 3))  # the new child gets the holder's prefix, as in MindSpore
    holder.blocks.insert(0, nn.Dense(2, 5))
    assert [p.name for p in holder.get_parameters()] == [
        "blocks.0.weight", "blocks.0.bias", "blocks.1.weight", "blocks.1.bias", "blocks.2.weight", "blocks.2.bias"]
    assert holder.blocks[0].weight.shape == (5, 2) and holder.blocks[2].weight.shape == (3, 2)
    del holder.blocks[0]
    assert [p.shape for p in holder.get_parameters()] == [(2, 2), (2,), (3, 2), (3,)]
    with pytest.raises(TypeError):
        nn.SequentialCell([nn.ReLU(), "relu"])


def test_set_train_propagates_and_switches_batchnorm():
    net = TwoLayer()
    assert not any(cell.training for _, cell in net.cells_and_names())
    net.set_train()
    assert all(cell.training for _, cell in net.cells_and_names())
    before = net.bn.moving_mean.asnumpy().copy()
    net(_x(4))
    assert not np.allclose(net.bn.moving_mean.asnumpy(), before)  # statistics written back from jit
    net.set_train(False)
    assert not net.bn.training and not net.drop.training
    frozen = net.bn.moving_mean.asnumpy().copy()
    net(_x(4))
    np.testing.assert_array_equal(net.bn.moving_mean.asnumpy(), frozen)


def test_trainable_and_untrainable_split():
    net = TwoLayer()
    trainable = [p.name for p in net.trainable_params()]
    frozen = [p.name for p in net.untrainable_params()]
    assert trainable == ["fc1.weight", "fc1.bias", "bn.gamma", "bn.beta", "fc2.weight", "fc2.bias"]
    assert frozen == ["bn.moving_mean", "bn.moving_variance"]
    assert [p.name for p in nn.BatchNorm2d(2, affine=False).trainable_params()] == []


def test_update_parameters_name_insert_param_and_placeholders():
    net = TwoLayer()
    net.update_parameters_name("backbone.")
    assert list(net.parameters_dict())[:2] == ["backbone.fc1.weight", "backbone.fc1.bias"]
    net.insert_param_to_cell("scale", msjax.Parameter(np.ones(3, np.float32)))
    assert net.scale.name == "scale" and "scale" in net.parameters_dict()
    with pytest.raises(KeyError):
        net.insert_param_to_cell("a.b", msjax.Parameter(np.ones(1, np.float32)))

    class Lazy(nn.Cell):
        def __init__(self):
            super().__init__()
            self.head = None  # MindSpore code often sets a placeholder first
            self.head = nn.Dense(2, 2)

    assert [n for n, _ in Lazy().parameters_and_names()] == ["head.weight", "head.bias"]


def test_dropout_randomness_advances_under_jit_and_eval_is_identity():
    drop = nn.Dropout(p=0.5)
    x = msjax.Tensor(np.ones((64,), np.float32))
    np.testing.assert_array_equal(drop(x).asnumpy(), np.ones(64))
    drop.set_train(True)
    a, b = drop(x).asnumpy(), drop(x).asnumpy()
    assert set(np.unique(a)) <= {0.0, 2.0} and 10 < (a == 0).sum() < 54
    assert not np.array_equal(a, b)
    assert nn.Dropout(keep_prob=0.8).keep_prob == 0.8 and nn.Dropout(keep_prob=0.8, p=0.5).keep_prob == 0.5
    with pytest.raises(ValueError):
        nn.Dropout(p=1.0)


def test_jax_grad_through_a_graph_mode_cell():
    net = nn.Dense(4, 2)
    graphdef, state = nnx.split(net)

    def loss(state, x):
        return jnp.sum(unwrap(nnx.merge(graphdef, state)(x)) ** 2)

    grads = jax.grad(loss)(state, jnp.ones((3, 4)))
    assert nnx.merge(graphdef, grads).weight.shape == (2, 4)


def test_ops_primitives_and_functional():
    assert ops.ReduceMean(keep_dims=True) == ops.ReduceMean(keep_dims=True)
    assert hash(ops.MatMul(transpose_b=True)) == hash(ops.MatMul(transpose_b=True))
    assert ops.ReduceMean() != ops.ReduceMean(keep_dims=True)
    x = msjax.Tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    assert ops.ReduceMean(keep_dims=True)(x, 1).shape == (2, 1)
    np.testing.assert_allclose(ops.matmul(x, x.asnumpy().T).asnumpy(), x.asnumpy() @ x.asnumpy().T)
    assert ops.reshape(x, (3, 2)).shape == (3, 2)
    assert ops.flatten(msjax.Tensor(np.ones((2, 3, 4), np.float32))).shape == (2, 12)
    np.testing.assert_allclose(ops.MatMul(transpose_b=True)(x, x).asnumpy(), x.asnumpy() @ x.asnumpy().T)
    assert isinstance(ops.relu(x), msjax.Tensor)


def test_cell_flags_are_readable_back_as_in_mindspore(restore_context):
    """MindSpore's ``Cell(flags=)``/``add_flags``: attributes plus ``get_flags()``; a compiled call
    made before ``add_flags`` is not reused with the old value."""
    class Net(nn.Cell):
        def __init__(self):
            super().__init__(flags={"scale": 2})
            self.dense = nn.Dense(2, 2)

        def construct(self, x):
            return self.dense(x) * self.scale

    net = Net()
    assert net.get_flags() == {"scale": 2} and net.scale == 2 and nn.Cell().get_flags() == {}
    x = msjax.Tensor(np.ones((1, 2), np.float32))
    msjax.set_context(mode=msjax.GRAPH_MODE)
    twice = net(x).asnumpy()
    assert net.add_flags_recursive(scale=1) is net
    np.testing.assert_allclose(net(x).asnumpy(), twice / 2)
    assert net.dense.get_flags() == {"scale": 1} and net.get_flags() == {"scale": 1}
    assert net.add_flags(sink_mode=True).sink_mode is True and net.get_flags()["sink_mode"] is True


def test_host_parameters_go_to_the_device_once(monkeypatch):
    """Freshly built parameters are numpy arrays: the first compiled call puts them on the device in
    the Parameters themselves, so later calls pass device arrays (jit would re-send host arrays on
    every call) and the values stay the same."""
    net = nn.Dense(4, 3)
    net.set_train(False)
    before = {name: p.asnumpy().copy() for name, p in net.parameters_and_names()}
    assert all(type(p.get_raw_value()) is np.ndarray for _, p in net.parameters_and_names())
    x = Tensor(np.ones((2, 4), np.float32))
    first = net(x).asnumpy()
    assert all(isinstance(p.get_raw_value(), jax.Array) for _, p in net.parameters_and_names())
    puts = []
    original = jax.device_put
    monkeypatch.setattr(jax, "device_put", lambda *a, **k: puts.append(a) or original(*a, **k))
    np.testing.assert_array_equal(net(x).asnumpy(), first)
    assert puts == []
    for name, p in net.parameters_and_names():
        np.testing.assert_array_equal(p.asnumpy(), before[name])
