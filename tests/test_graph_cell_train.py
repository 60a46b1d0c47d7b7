"""Fine-tuning a MindSpore MINDIR in msjax: ``GraphCell`` trained as MindSpore trains the original network.

Real MindSpore 2.10 builds two networks (``MS_NETS``): a small ResNet (conv + BatchNorm blocks
with residual adds) and a net with an int32 index buffer and a bool mask buffer (Gather, Select).
It exports each as MINDIR and trains the original with ``TrainOneStepCell`` + ``Momentum`` in
train mode for ``STEPS`` steps on fixed batches. msjax loads the MINDIR files and:

* ``trainable_params()`` names what the original network trains (derived from use: no
  moving statistics, no index or mask buffers);
* the same training in msjax (``set_train(True)``: BatchNorm on batch statistics, moving
  statistics updated by MindSpore's rule) gives MindSpore's losses and final parameters,
  moving statistics included;
* ``save_checkpoint(graph_cell)`` writes a .ckpt that MindSpore loads into the original network
  with nothing left unloaded either way, and the network then computes the GraphCell's outputs.
"""
from __future__ import annotations

import numpy as np
import pytest
from oracle import requires_mindspore, run_mindspore

import msjax
from msjax import Tensor, nn
from msjax_exporters.from_mindir import MindIRGraph, Op
from msjax_exporters.mindir_usage import trainable

pytestmark = [pytest.mark.mindspore, requires_mindspore]

STEPS, LR, MOMENTUM, BATCH = 4, 0.05, 0.9, 4

MS_NETS = r'''
import numpy as np
from mindspore import nn, ops, Tensor, Parameter


def conv_bn(cin, cout):
    return nn.SequentialCell([nn.Conv2d(cin, cout, 3, pad_mode="same", has_bias=False), nn.BatchNorm2d(cout)])


class Block(nn.Cell):
    def __init__(self, channels):
        super().__init__()
        self.first = conv_bn(channels, channels)
        self.second = conv_bn(channels, channels)
        self.relu = nn.ReLU()

    def construct(self, x):
        return self.relu(self.second(self.relu(self.first(x))) + x)


class ResNetLike(nn.Cell):
    def __init__(self):
        super().__init__()
        self.stem = conv_bn(3, 4)
        self.relu = nn.ReLU()
        self.layer1 = Block(4)
        self.layer2 = Block(4)
        self.head = nn.Dense(4, 3)

    def construct(self, x):
        return self.head(self.layer2(self.layer1(self.relu(self.stem(x)))).mean((2, 3)))


class IndexNet(nn.Cell):
    """A float table read through an int32 index buffer, and a bool mask buffer (Select)."""

    def __init__(self):
        super().__init__()
        self.table = Parameter(Tensor(np.linspace(-1, 1, 24, dtype=np.float32).reshape(6, 4)), name="table")
        self.index = Parameter(Tensor(np.array([0, 2, 5], np.int32)), name="index", requires_grad=False)
        self.mask = Parameter(Tensor(np.array([True, False, True, True])), name="mask", requires_grad=False)
        self.fc = nn.Dense(4, 3)

    def construct(self, x):
        rows = ops.gather(self.table, self.index, 0)                  # (3, 4)
        return self.fc(ops.select(self.mask, x, x * 0.5)) + ops.ReduceSum()(rows, 1)


NETS = {"resnet": (ResNetLike, (3, 6, 6)), "index": (IndexNet, (4,))}


def well_conditioned(net, seed):
    """Moderate weights and non-trivial BatchNorm statistics, the same in every run."""
    rng = np.random.default_rng(seed)
    for p in net.get_parameters():
        shape, dtype = p.shape, p.asnumpy().dtype
        if dtype.kind != "f" or p.name == "table":
            continue
        if "moving_variance" in p.name:
            value = rng.uniform(0.5, 1.5, shape)
        elif "gamma" in p.name:
            value = rng.uniform(0.8, 1.2, shape)
        else:
            value = rng.normal(0, 0.3, shape)
        p.set_data(Tensor(value.astype(dtype)))
    return net
'''


def _train_in_mindspore(tmp, batches, labels):
    """MindSpore: export each network's MINDIR, then train it; returns its records."""
    (tmp / "gct_nets.py").write_text(MS_NETS)
    code = f'''
sys.path.insert(0, str(inputs["tmp"]))
import gct_nets
for key, (cls, shape) in gct_nets.NETS.items():
    net = gct_nets.well_conditioned(cls(), 7)
    net.set_train(False)
    ms.export(net, Tensor(inputs[key + ".x"][0]), file_name=str(inputs["tmp"]) + "/" + key, file_format="MINDIR")
    outputs[key + ".trainable"] = [p.name for p in net.trainable_params()]
    step = nn.TrainOneStepCell(nn.WithLossCell(net, nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")),
                               nn.Momentum(net.trainable_params(), {LR}, {MOMENTUM}))
    step.set_train(True)
    outputs[key + ".losses"] = [step(Tensor(x), Tensor(y)).asnumpy() for x, y in zip(inputs[key + ".x"],
                                                                                    inputs[key + ".y"])]
    for p in net.get_parameters():
        outputs[key + ".param." + p.name] = p.asnumpy()
'''
    inputs = {"tmp": np.array(str(tmp))}
    for key in batches:
        inputs[key + ".x"], inputs[key + ".y"] = batches[key], labels[key]
    return run_mindspore(code, inputs)


def _load_in_mindspore(tmp, checkpoints, probes):
    """MindSpore: load each msjax .ckpt into a new original network; what was left, and its output."""
    code = '''
sys.path.insert(0, str(inputs["tmp"]))
import gct_nets
for key, (cls, shape) in gct_nets.NETS.items():
    net = gct_nets.well_conditioned(cls(), 11)          # other values: the .ckpt must overwrite them
    net.set_train(False)
    not_loaded, unused = ms.load_param_into_net(net, ms.load_checkpoint(str(inputs[key + ".ckpt"])))
    outputs[key + ".not_loaded"] = list(not_loaded) or ["-"]
    outputs[key + ".unused"] = list(unused) or ["-"]
    outputs[key + ".out"] = net(Tensor(inputs[key + ".probe"])).asnumpy()
    for p in net.get_parameters():
        outputs[key + ".loaded." + p.name] = p.asnumpy()
'''
    inputs = {"tmp": np.array(str(tmp))}
    for key in checkpoints:
        inputs[key + ".ckpt"], inputs[key + ".probe"] = np.array(str(checkpoints[key])), probes[key]
    return run_mindspore(code, inputs)


def _data():
    """One fixed batch per network, fed ``STEPS`` times (so the loss must fall)."""
    rng = np.random.default_rng(0)
    one = {"resnet": rng.normal(0, 1, (BATCH, 3, 6, 6)), "index": rng.normal(0, 1, (BATCH, 4))}
    batches = {key: np.repeat(x[None].astype(np.float32), STEPS, 0) for key, x in one.items()}
    labels = {key: np.repeat(rng.integers(0, 3, (1, BATCH)).astype(np.int32), STEPS, 0) for key in one}
    return batches, labels


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """MindSpore's records, msjax's trained GraphCells and losses, and MindSpore's load records."""
    tmp = tmp_path_factory.mktemp("graph_cell_train")
    batches, labels = _data()
    theirs = _train_in_mindspore(tmp, batches, labels)
    cells, losses, checkpoints, probes = {}, {}, {}, {}
    for key in batches:
        cell = nn.GraphCell(msjax.load(str(tmp / f"{key}.mindir")))
        cell.set_train(True)
        step = nn.TrainOneStepCell(
            nn.WithLossCell(cell, nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")),
            nn.Momentum(cell.trainable_params(), LR, MOMENTUM))
        losses[key] = [step(Tensor(x), Tensor(y)).asnumpy() for x, y in zip(batches[key], labels[key])]
        cell.set_train(False)
        cells[key] = cell
        checkpoints[key] = tmp / f"{key}_msjax.ckpt"
        msjax.save_checkpoint(cell, str(checkpoints[key]))
        probes[key] = batches[key][0]
    loaded = _load_in_mindspore(tmp, checkpoints, probes)
    return theirs, cells, losses, loaded, probes


@pytest.mark.parametrize("key", ["resnet", "index"])
def test_trainable_params_are_the_original_networks(trained, key):
    theirs, cells, *_ = trained
    ours = [p.name for p in cells[key].trainable_params()]
    assert sorted(ours) == sorted(theirs[f"{key}.trainable"]), (ours, list(theirs[f"{key}.trainable"]))
    untrained = {p.name for p in cells[key].untrainable_params()}
    assert untrained == set(cells[key].parameters_dict()) - set(ours) and untrained
    if key == "resnet":
        assert all("moving_" in name for name in untrained) and len(untrained) == 10
    else:
        assert untrained == {"index", "mask"}


@pytest.mark.parametrize("key", ["resnet", "index"])
def test_training_matches_mindspore(trained, key):
    """Same losses, step by step, and the same final parameters, BatchNorm statistics included."""
    theirs, cells, losses, *_ = trained
    np.testing.assert_allclose(np.array(losses[key]), theirs[f"{key}.losses"], rtol=2e-5, atol=2e-6)
    assert losses[key][0] > losses[key][-1]                       # it did train
    params = cells[key].parameters_dict()
    prefix = f"{key}.param."
    names = [k[len(prefix):] for k in theirs if k.startswith(prefix)]
    assert sorted(names) == sorted(params)
    for name in names:
        np.testing.assert_allclose(params[name].asnumpy(), theirs[prefix + name], rtol=1e-5, atol=2e-6,
                                   err_msg=f"{key}: {name}")
    moving = [n for n in names if "moving_" in n]
    assert len(moving) == (10 if key == "resnet" else 0)
    for name in moving:                                           # the statistics did move
        assert not np.allclose(params[name].asnumpy(), cells[key]._graph.parameters[name]), name


@pytest.mark.parametrize("key", ["resnet", "index"])
def test_saved_checkpoint_loads_into_the_original_network(trained, key):
    _, cells, _, loaded, probes = trained
    assert list(loaded[f"{key}.not_loaded"]) == ["-"] and list(loaded[f"{key}.unused"]) == ["-"]
    for name, param in cells[key].parameters_dict().items():
        np.testing.assert_array_equal(loaded[f"{key}.loaded.{name}"], param.asnumpy(), err_msg=name)
    ours = cells[key](Tensor(probes[key])).asnumpy()
    np.testing.assert_allclose(ours, loaded[f"{key}.out"], rtol=1e-5, atol=1e-6)


def test_requires_grad_overrides_and_load_builds_once(trained, tmp_path):
    """``p.requires_grad = True`` puts a derived-frozen tensor back in ``trainable_params``;
    ``nn.GraphCell(msjax.load(f))`` reuses the decoded graph (and keeps the flags it was given)."""
    _, cells, *_ = trained
    cell = cells["resnet"]
    wrapped = nn.GraphCell(cell)
    assert wrapped._graph is cell._graph and wrapped._train_graph is cell._train_graph
    assert [p.name for p in wrapped.trainable_params()] == [p.name for p in cell.trainable_params()]
    moving = wrapped.parameters_dict()["stem.1.moving_mean"]
    assert "stem.1.moving_mean" not in [p.name for p in wrapped.trainable_params()]
    moving.requires_grad = True
    assert "stem.1.moving_mean" in [p.name for p in wrapped.trainable_params()]
    weight = wrapped.parameters_dict()["head.weight"]
    weight.requires_grad = False
    assert "head.weight" not in [p.name for p in wrapped.trainable_params()]
    assert cell.parameters_dict()["head.weight"].requires_grad            # the source keeps its own


def _graph(params, ops):
    """A MindIRGraph of ``params`` (name -> array) and ``ops`` ((prim, inputs, output)), for the rules."""
    return MindIRGraph("t.mindir", "g", dict(params), {n: n for n in params}, [], [],
                       {"u": None, "i": 0}, [Op(p, tuple(i), o, {}, "") for p, i, o in ops])


F, I32 = np.zeros(3, np.float32), np.zeros(3, np.int32)
#: (case, params, ops, the names trained)
USAGE = [
    ("data use", {"w": F}, [("Mul", ["x", "w"], "y")], {"w"}),
    ("never read", {"w": F}, [], {"w"}),
    ("int tensor", {"n": I32}, [("Add", ["x", "n"], "y")], set()),
    ("bool tensor", {"m": np.zeros(3, bool)}, [], set()),
    ("BN statistics", {"g": F, "b": F, "m": F, "v": F},
     [("BatchNorm", ["x", "g", "b", "m", "v"], "y")], {"g", "b"}),
    ("through Load", {"m": F, "v": F, "g": F},
     [("Load", ["m", "u"], "lm"), ("Load", ["v", "u"], "lv"), ("BatchNorm", ["x", "g", "g", "lm", "lv"], "y"),
      ("MakeTuple", ["lm", "lv"], "t"), ("UpdateState", ["u", "t"], "s")], {"g"}),
    ("float index via Cast", {"k": F, "t": F},
     [("Cast", ["k", "i"], "ki"), ("Reshape", ["ki", "i"], "kr"), ("Gather", ["t", "kr", "i"], "y")], {"t"}),
    ("mask", {"m": F, "a": F}, [("Select", ["m", "a", "x"], "y")], {"a"}),
    ("mask and data", {"m": F}, [("Select", ["m", "x", "x"], "y"), ("Mul", ["m", "x"], "z")], {"m"}),
    ("no-gradient reads", {"s": F}, [("Shape", ["s"], "y"), ("StopGradient", ["s"], "z"),
                                     ("Less", ["s", "x"], "c")], set()),
    ("MakeTuple as data", {"w": F}, [("MakeTuple", ["w", "x"], "t"), ("Concat", ["t", "i"], "y")], {"w"}),
    ("Assign target, Depend order", {"c": F, "w": F},
     [("Assign", ["c", "x"], "a"), ("Depend", ["x", "w"], "d"), ("Gather", ["x", "w", "i"], "g")], {"c"}),
]


@pytest.mark.parametrize("case, params, ops, want", USAGE, ids=[row[0] for row in USAGE])
def test_trainable_flags_follow_use(case, params, ops, want):
    flags = trainable(_graph(params, ops))
    assert {name for name, on in flags.items() if on} == want, (case, flags)
