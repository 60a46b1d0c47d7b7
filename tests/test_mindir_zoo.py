"""Zoo-like MindSpore networks (tests/mindir_zoo_nets.py) exported to MINDIR by MindSpore 2.10 run
in msjax's GraphCell with MindSpore's own outputs, within 1e-5.

One oracle call builds, runs and exports every network of a table; each case is one line:
``(name, constructor expression, input shapes)``. The default run holds a residual CNN, a
bidirectional LSTM (the fused CPU primitive) and a while loop around an if (control flow); the
rest run with ``-m slow``.
"""
import json
import zlib
from pathlib import Path

import jax
import numpy as np
import pytest

from msjax.common.tensor import Tensor
from msjax.graph_io import load
from oracle import requires_mindspore, run_mindspore

DEFAULT = [
    ("resnet_basic", "z.BasicBlock()", [(2, 4, 8, 8)]),
    ("bilstm", "z.LSTM(True)", [(2, 3, 4)]),
    ("while_if", "z.WhileParam()", [(2, 4)]),
]
SLOW = [
    ("resnet_bottleneck", "z.Bottleneck()", [(2, 8, 8, 8)]),
    ("mobilenet_v2", "z.InvertedResidual()", [(2, 4, 8, 8)]),
    ("mobilenet_v3", "z.MobileNetV3Block()", [(2, 4, 8, 8)]),
    ("efficientnet_mbconv", "z.MBConv()", [(2, 4, 8, 8)]),
    ("vit", "z.ViT()", [(2, 3, 8, 8)]),
    ("multihead_attention", "z.MHA()", [(3, 2, 8)]),
    ("transformer_encoder", "z.Encoder()", [(2, 3, 8)]),
    ("lstm", "z.LSTM()", [(2, 3, 4)]),
    ("gru", "z.GRU()", [(2, 3, 4)]),
    ("bigru", "z.GRU(True)", [(2, 3, 4)]),
    ("rnn", "z.RNN()", [(2, 3, 4)]),
    ("birnn", "z.RNN(True)", [(2, 3, 4)]),
    ("densenet_concat", "z.Dense()", [(2, 4, 8, 8)]),
    ("inception_pools", "z.Inception()", [(2, 4, 8, 8)]),
    ("if", "z.IfNet()", [(2, 4, 8, 8)]),
    ("if_parameters", "z.IfParam()", [(2, 4)]),
    ("while", "z.WhileNet()", [(2, 4, 8, 8)]),
    ("lists", "z.ListNet()", [(2, 4, 8, 8)]),
]

_RUN = """
import json
sys.path.insert(0, str(inputs["tests_dir"]))
import mindir_zoo_nets as z
for name, make in json.loads(str(inputs["cases"])):
    ms.set_seed(1)
    net = eval(make)
    net.set_train(False)
    args = [ms.Tensor(inputs[k]) for k in sorted(inputs) if k.startswith(name + "/in")]
    flat = []
    def walk(r):
        if isinstance(r, (tuple, list)):
            for i in r:
                walk(i)
        else:
            flat.append(np.asarray(r.asnumpy() if hasattr(r, "asnumpy") else r))
    walk(net(*args))
    for i, o in enumerate(flat):
        outputs[f"{name}/out{i}"] = o
    ms.export(net, *args, file_name=str(inputs["folder"]) + "/" + name, file_format="MINDIR")
"""


def _inputs(name, shapes):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    # positive inputs: the while loops double their input until its sum passes a bound
    return {f"{name}/in{i}": np.abs(rng.normal(size=s)).astype(np.float32) + 0.1 for i, s in enumerate(shapes)}


def _export(tmp_path_factory, table):
    folder = tmp_path_factory.mktemp("mindir_zoo")
    inputs = {"tests_dir": np.array(str(Path(__file__).parent)), "folder": np.array(str(folder)),
              "cases": np.array(json.dumps([(n, m) for n, m, _ in table]))}
    for name, _, shapes in table:
        inputs.update(_inputs(name, shapes))
    return folder, inputs, run_mindspore(_RUN, inputs)


@pytest.fixture(scope="module")
def default_zoo(tmp_path_factory):
    return _export(tmp_path_factory, DEFAULT)


@pytest.fixture(scope="module")
def slow_zoo(tmp_path_factory):
    return _export(tmp_path_factory, SLOW)


def _check(zoo, name):
    folder, inputs, expected = zoo
    args = [Tensor(inputs[k]) for k in sorted(inputs) if k.startswith(name + "/in")]
    got = load(str(folder / f"{name}.mindir"))(*args)
    got = [np.asarray(g.asnumpy()) for g in jax.tree_util.tree_leaves(
        got if isinstance(got, (tuple, list)) else [got], is_leaf=lambda t: isinstance(t, Tensor))]
    want = [expected[k] for k in sorted((k for k in expected if k.startswith(name + "/out")),
                                        key=lambda k: int(k.rsplit("out", 1)[1]))]
    assert len(got) == len(want) > 0, (len(got), len(want))
    for g, w in zip(got, want):
        assert g.shape == w.shape, (g.shape, w.shape)
        np.testing.assert_allclose(g, w.astype(g.dtype), rtol=1e-5, atol=1e-5)


@requires_mindspore
@pytest.mark.parametrize("name", [n for n, _, _ in DEFAULT])
def test_zoo_network_matches_mindspore(default_zoo, name):
    _check(default_zoo, name)


@requires_mindspore
@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n, _, _ in SLOW])
def test_zoo_network_matches_mindspore_slow(slow_zoo, name):
    _check(slow_zoo, name)
