"""Fine-tuning zoo-like MindSpore networks' MINDIR in msjax, checked against MindSpore's training.

For each network of ``tests/mindir_zoo_nets.py`` (a table row: name, constructor, input shape),
one oracle call has real MindSpore 2.10 set a well-conditioned start (moderate weights,
non-trivial BatchNorm statistics), export the network's MINDIR and .ckpt, then train the
original ``STEPS`` steps with ``TrainOneStepCell`` + ``Momentum`` on one fixed batch, with an MSE
loss on the network's first output. msjax then:

* loads the MINDIR into a ``GraphCell``: ``trainable_params()`` names MindSpore's, and MindSpore's
  .ckpt loads into it with nothing left either way and the values unchanged;
* trains it the same ``STEPS`` steps with msjax's ``TrainOneStepCell`` + ``Momentum``: the losses
  and final parameters (moving statistics included) match MindSpore's;
* writes ``save_checkpoint(graph_cell)``; a second oracle call loads it into a new original
  network with nothing left unloaded either way, and that network gives the GraphCell's outputs.

The default run holds a ResNet block and a bidirectional LSTM; the rest run with ``-m slow``.
"""
from __future__ import annotations

import json
import zlib
from pathlib import Path

import jax
import numpy as np
import pytest
from oracle import requires_mindspore, run_mindspore

import msjax
from msjax import Tensor, nn

pytestmark = [pytest.mark.mindspore, requires_mindspore]

STEPS, LR, MOMENTUM = 3, 0.01, 0.9
#: (name, constructor in mindir_zoo_nets, input shape)
DEFAULT = [
    ("resnet_basic", "z.BasicBlock()", (2, 4, 8, 8)),
    ("bilstm", "z.LSTM(True)", (2, 3, 4)),
]
SLOW = [
    ("resnet_bottleneck", "z.Bottleneck()", (2, 8, 8, 8)),
    ("mobilenet_v2", "z.InvertedResidual()", (2, 4, 8, 8)),
    ("mobilenet_v3", "z.MobileNetV3Block()", (2, 4, 8, 8)),
    ("efficientnet_mbconv", "z.MBConv()", (2, 4, 8, 8)),
    ("vit", "z.ViT()", (2, 3, 8, 8)),
    ("transformer_encoder", "z.Encoder()", (2, 3, 8)),
    ("multihead_attention", "z.MHA()", (3, 2, 8)),
    ("lstm", "z.LSTM()", (2, 3, 4)),
    ("lstm_two_layers", "z.LSTM(False, 2)", (2, 3, 4)),
    ("gru", "z.GRU()", (2, 3, 4)),
    ("densenet_concat", "z.Dense()", (2, 4, 8, 8)),
]

#: MindSpore-side helpers, written next to the exported files (MindSpore compiles a Cell from its source file)
MS_HELPERS = """import numpy as np
from mindspore import nn, Tensor


class FirstOutputLoss(nn.Cell):
    def __init__(self, net):
        super().__init__(auto_prefix=False)          # as WithLossCell: the network keeps its names
        self.net = net
        self.loss = nn.MSELoss()

    def construct(self, x, y):
        out = self.net(x)
        if isinstance(out, tuple):
            out = out[0]
        return self.loss(out, y)


def well_conditioned(net, seed):
    rng = np.random.default_rng(seed)
    for p in net.get_parameters():
        shape, dtype = p.shape, p.asnumpy().dtype
        if "moving_variance" in p.name:
            value = rng.uniform(0.5, 1.5, shape)
        elif "gamma" in p.name:
            value = rng.uniform(0.8, 1.2, shape)
        else:
            value = rng.normal(0, 0.3, shape)
        p.set_data(Tensor(value.astype(dtype)))
    return net
"""

_TRAIN = f"""
import json
sys.path.insert(0, str(inputs["tests_dir"]))
sys.path.insert(0, str(inputs["folder"]))
import mindir_zoo_nets as z
from zoo_train_helpers import FirstOutputLoss, well_conditioned
for name, make in json.loads(str(inputs["cases"])):
    ms.set_seed(1)
    net = well_conditioned(eval(make), 7)
    net.set_train(False)
    x = Tensor(inputs[name + "/x"])
    base = str(inputs["folder"]) + "/" + name
    ms.export(net, x, file_name=base, file_format="MINDIR")
    ms.save_checkpoint(net, base + ".ckpt")
    outputs[name + "/trainable"] = [p.name for p in net.trainable_params()]
    out = net(x)
    out = out[0] if isinstance(out, tuple) else out
    y = np.random.default_rng(5).normal(0, 1, out.shape).astype(np.float32)
    outputs[name + "/y"] = y
    step = nn.TrainOneStepCell(FirstOutputLoss(net), nn.Momentum(net.trainable_params(), {LR}, {MOMENTUM}))
    step.set_train(True)
    outputs[name + "/losses"] = [step(x, Tensor(y)).asnumpy() for _ in range({STEPS})]
    for p in net.get_parameters():
        outputs[name + "/param/" + p.name] = p.asnumpy()
"""

_LOAD = """
import json
sys.path.insert(0, str(inputs["tests_dir"]))
import mindir_zoo_nets as z
for name, make in json.loads(str(inputs["cases"])):
    ms.set_seed(2)
    net = eval(make)                                  # other values: the .ckpt must overwrite them
    net.set_train(False)
    not_loaded, unused = ms.load_param_into_net(net, ms.load_checkpoint(str(inputs[name + "/ckpt"])))
    outputs[name + "/not_loaded"] = list(not_loaded) or ["-"]
    outputs[name + "/unused"] = list(unused) or ["-"]
    out = net(Tensor(inputs[name + "/x"]))
    out = out if isinstance(out, tuple) else (out,)
    for i, o in enumerate(out):
        outputs[f"{name}/out{i}"] = o.asnumpy()
"""


class FirstOutputLoss(nn.Cell):
    """MSE on the network's first output (the loss the MindSpore side trains with)."""

    def __init__(self, net):
        super().__init__(auto_prefix=False)          # as WithLossCell: the network keeps its names
        self.net = net
        self.loss = nn.MSELoss()

    def construct(self, x, y):
        out = self.net(x)
        if isinstance(out, (tuple, list)):
            out = out[0]
        return self.loss(out, y)


def _leaves(out):
    out = out if isinstance(out, (tuple, list)) else [out]
    return [np.asarray(t.asnumpy()) for t in jax.tree_util.tree_leaves(out, is_leaf=lambda t: isinstance(t, Tensor))]


def _train(tmp_path_factory, table):
    """MindSpore trains, msjax trains its GraphCells and saves them, MindSpore loads those."""
    folder = tmp_path_factory.mktemp("mindir_zoo_train")
    common = {"tests_dir": np.array(str(Path(__file__).parent)),
              "cases": np.array(json.dumps([(n, m) for n, m, _ in table]))}
    (folder / "zoo_train_helpers.py").write_text(MS_HELPERS)
    inputs = dict(common, folder=np.array(str(folder)))
    for name, _, shape in table:
        rng = np.random.default_rng(zlib.crc32(name.encode()))
        inputs[name + "/x"] = rng.normal(0, 1, shape).astype(np.float32)
    theirs = run_mindspore(_TRAIN, inputs)
    ours, back = {}, dict(common)
    for name, _, _ in table:
        ours[name] = _train_in_msjax(folder, name, inputs[name + "/x"], theirs[name + "/y"])
        back[name + "/ckpt"] = np.array(str(ours[name]["ckpt"]))
        back[name + "/x"] = inputs[name + "/x"]
    return theirs, ours, run_mindspore(_LOAD, back)


def _train_in_msjax(folder, name, x, y):
    cell = nn.GraphCell(msjax.load(str(folder / f"{name}.mindir")))
    record = {"trainable": [p.name for p in cell.trainable_params()], "initial": {
        k: p.asnumpy().copy() for k, p in cell.parameters_dict().items()}}
    probe = nn.GraphCell(msjax.load(str(folder / f"{name}.mindir")))          # MindSpore's .ckpt into it
    record["ckpt_left"] = msjax.load_param_into_net(probe, msjax.load_checkpoint(str(folder / f"{name}.ckpt")))
    record["ckpt_values"] = {k: p.asnumpy() for k, p in probe.parameters_dict().items()}
    cell.set_train(True)
    step = nn.TrainOneStepCell(FirstOutputLoss(cell), nn.Momentum(cell.trainable_params(), LR, MOMENTUM))
    record["losses"] = [float(step(Tensor(x), Tensor(y)).asnumpy()) for _ in range(STEPS)]
    cell.set_train(False)
    record["params"] = {k: p.asnumpy() for k, p in cell.parameters_dict().items()}
    record["out"] = _leaves(cell(Tensor(x)))
    record["ckpt"] = folder / f"{name}_msjax.ckpt"
    msjax.save_checkpoint(cell, str(record["ckpt"]))
    return record


@pytest.fixture(scope="module")
def default_zoo(tmp_path_factory):
    return _train(tmp_path_factory, DEFAULT)


@pytest.fixture(scope="module")
def slow_zoo(tmp_path_factory):
    return _train(tmp_path_factory, SLOW)


def _check(zoo, name):
    theirs, ours, loaded = zoo
    mine = ours[name]
    # trainable_params: the original network's names
    assert sorted(mine["trainable"]) == sorted(theirs[f"{name}/trainable"]), \
        (mine["trainable"], list(theirs[f"{name}/trainable"]))
    # MindSpore's .ckpt loads into the GraphCell, every value as the MINDIR holds it
    assert mine["ckpt_left"] == ([], []), mine["ckpt_left"]
    for key, value in mine["initial"].items():
        np.testing.assert_array_equal(mine["ckpt_values"][key], value, err_msg=f"{name}: {key}")
    # the same training: losses step by step, then every parameter
    np.testing.assert_allclose(mine["losses"], theirs[f"{name}/losses"], rtol=2e-5, atol=2e-6, err_msg=name)
    assert mine["losses"][-1] < mine["losses"][0], mine["losses"]                   # it did train
    prefix = f"{name}/param/"
    names = sorted(k[len(prefix):] for k in theirs if k.startswith(prefix))
    assert names == sorted(mine["params"])
    for key in names:
        np.testing.assert_allclose(mine["params"][key], theirs[prefix + key], rtol=2e-5, atol=2e-6,
                                   err_msg=f"{name}: {key}")
        # the change itself, against its own scale: a gradient off by 0.1% fails (measured <= 4.1e-5)
        ours_step, their_step = mine["params"][key] - mine["initial"][key], theirs[prefix + key] - mine["initial"][key]
        scale = np.max(np.abs(their_step))
        assert scale > 0 or key not in mine["trainable"], f"{name}: {key} did not move"
        assert np.max(np.abs(ours_step - their_step)) <= 1e-3 * scale, \
            (name, key, float(np.max(np.abs(ours_step - their_step)) / max(scale, 1e-30)))
    # the saved .ckpt loads back into the original network, which then computes our outputs
    assert list(loaded[f"{name}/not_loaded"]) == ["-"] and list(loaded[f"{name}/unused"]) == ["-"], \
        (list(loaded[f"{name}/not_loaded"]), list(loaded[f"{name}/unused"]))
    want = [loaded[k] for k in sorted((k for k in loaded if k.startswith(name + "/out")),
                                      key=lambda k: int(k.rsplit("out", 1)[1]))]
    assert len(want) == len(mine["out"]) > 0
    for got, exp in zip(mine["out"], want):
        np.testing.assert_allclose(got, exp, rtol=1e-5, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("name", [n for n, _, _ in DEFAULT])
def test_zoo_graph_cell_trains_as_mindspore(default_zoo, name):
    _check(default_zoo, name)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n, _, _ in SLOW])
def test_zoo_graph_cell_trains_as_mindspore_slow(slow_zoo, name):
    _check(slow_zoo, name)
