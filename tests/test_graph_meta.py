"""<prefix>-graph.meta: MindSpore's anf_ir ModelProto of the train network, from the capture layer."""
import re

import numpy as np
import pytest
from google.protobuf import descriptor_pb2
from oracle import requires_mindspore, run_mindspore

from msjax_exporters.graph_meta import read_graph_meta, to_graph_proto, write_graph_meta
from msjax._proto import anf_ir_pb2
from msjax.common.tensor import Tensor
from msjax.errors import ExportError

FORWARD_TYPES = {"Conv2D", "MatMul", "BiasAdd", "ReLU", "MaxPool"}
LENET_PARAMS = ["conv1.weight", "conv2.weight", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias",
                "fc3.weight", "fc3.bias"]


def _train_step():
    from msjax.models import LeNet5
    from msjax.nn.loss import SoftmaxCrossEntropyWithLogits
    from msjax.nn.optim import Momentum
    from msjax.nn.wrap import TrainOneStepCell, WithLossCell
    net = LeNet5()
    loss = SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    return net, TrainOneStepCell(WithLossCell(net, loss), Momentum(net.trainable_params(), 0.01, 0.9))


def _batch():
    return (Tensor(np.zeros((16, 1, 32, 32), np.float32)), Tensor(np.zeros(16, np.int32)))


def test_reader_parses_mindspores_file(fixtures_dir):
    model = read_graph_meta(fixtures_dir / "train" / "lenet-graph.meta")
    g = model.graph
    assert model.ir_version == 1 and g.name.endswith(re.search(r"TrainOneStepCell_construct_\d+$", g.name)[0])
    names = [p.name for p in g.parameters]
    assert names[:2] == ["inputs0", "inputs1"] and names[2:10] == LENET_PARAMS
    assert {n.op_type for n in g.node} >= FORWARD_TYPES | {"ApplyMomentum"}
    assert [n.name for n in g.node] == [str(i) for i in range(1, len(g.node) + 1)]
    assert g.outputs[0].name == g.node[-1].name


def test_train_step_graph_has_mindspores_structure(tmp_path):
    net, step = _train_step()
    before = {k: np.asarray(p.get_value()).copy() for k, p in net.parameters_dict().items()}
    write_graph_meta(step, _batch(), tmp_path / "lenet-graph.meta")
    g = read_graph_meta(tmp_path / "lenet-graph.meta").graph
    assert re.fullmatch(r"\d+_msjax_nn_wrap_TrainOneStepCell_construct_\d+", g.name)
    names = [p.name for p in g.parameters]
    assert names[:10] == ["inputs0", "inputs1", *LENET_PARAMS]
    assert set(names[10:]) == {"global_step", "learning_rate", "momentum", *(f"moments.{p}" for p in LENET_PARAMS)}
    types = {n.op_type for n in g.node}
    assert types >= FORWARD_TYPES | {"MaxPoolGrad", "Conv2DBackpropFilter"}   # forward, backward
    assert [n.name for n in g.node] == [str(i) for i in range(1, len(g.node) + 1)]
    known = {p.name for p in g.parameters} | {c.key for c in g.const_vals} | {n.name for n in g.node}
    assert all(i.name in known for n in g.node for i in n.input)
    conv = next(n for n in g.node if n.op_type == "Conv2D")
    assert conv.input[1].name == "conv1.weight" and conv.full_name.startswith(conv.scope + "/Conv2D-op")
    assert list(d.size for d in conv.output_type.tensor_type.shape.dim) == [16, 6, 28, 28]
    assert g.outputs[0].type.tensor_type.elem_type == anf_ir_pb2.DT_FLOAT32
    # writing the meta file leaves the network untouched
    for k, p in net.parameters_dict().items():
        np.testing.assert_array_equal(np.asarray(p.get_value()), before[k])


def test_forward_and_loss_network_gets_cell_scopes():
    from msjax.models import LeNet5
    from msjax.nn.loss import SoftmaxCrossEntropyWithLogits
    from msjax.nn.wrap import WithLossCell
    g = to_graph_proto(WithLossCell(LeNet5(), SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")),
                       _batch()).graph
    assert [p.name for p in g.parameters][:2] == ["data", "label"]
    first = {}
    for n in g.node:
        first.setdefault(n.op_type, n)
    assert first["Conv2D"].scope == "Default/_backbone-LeNet5/conv1-Conv2d"
    assert first["BiasAdd"].scope == "Default/_backbone-LeNet5/fc1-Dense"
    assert first["ReLU"].full_name == "Default/_backbone-LeNet5/relu-ReLU/ReLU-op0"


def test_bad_meta_file_is_an_export_error(tmp_path):
    bad = tmp_path / "x-graph.meta"
    bad.write_bytes(b"\x22\xff")
    with pytest.raises(ExportError, match="x-graph.meta"):
        read_graph_meta(bad)


def _fields(file_descriptor):
    out = set()

    def walk(msg, prefix):
        for f in msg.field:
            out.add((prefix + msg.name, f.name, f.number, f.type, f.label, f.type_name.split(".")[-1]))
        for nested in msg.nested_type:
            walk(nested, prefix + msg.name + ".")
    for m in file_descriptor.message_type:
        walk(m, "")
    for e in file_descriptor.enum_type:
        out |= {(e.name, v.name, v.number) for v in e.value}
    return out


@requires_mindspore
def test_mindspore_parses_our_meta_like_its_own(fixtures_dir, tmp_path):
    _, step = _train_step()
    write_graph_meta(step, _batch(), tmp_path / "ours-graph.meta")
    ours = np.frombuffer((tmp_path / "ours-graph.meta").read_bytes(), np.uint8)
    out = run_mindspore("""
        from mindspore.train import anf_ir_pb2
        from google.protobuf import descriptor_pb2
        def keys(data, tag):
            m = anf_ir_pb2.ModelProto()
            m.ParseFromString(bytes(data))
            g = m.graph
            outputs[tag + "_name"] = np.array(g.name)
            outputs[tag + "_params"] = np.array([p.name for p in g.parameters])
            outputs[tag + "_types"] = np.array(sorted({n.op_type for n in g.node}))
            outputs[tag + "_version"] = np.array(m.ir_version)
        keys(inputs["ours"], "ours")
        keys(open(FIXTURES + "/train/lenet-graph.meta", "rb").read(), "fixture")
        fd = descriptor_pb2.FileDescriptorProto()
        anf_ir_pb2.DESCRIPTOR.CopyToProto(fd)
        outputs["descriptor"] = np.frombuffer(fd.SerializeToString(), np.uint8)
    """, {"ours": ours})
    assert out["ours_version"] == out["fixture_version"] == 1
    for tag in ("ours", "fixture"):
        assert re.search(r"_TrainOneStepCell_construct_\d+$", str(out[f"{tag}_name"]))
    assert list(out["ours_params"])[:10] == list(out["fixture_params"])[:10]
    assert set(out["ours_params"]) == set(out["fixture_params"])
    assert FORWARD_TYPES <= set(out["ours_types"]) & set(out["fixture_types"])
    # our anf_ir.proto states the same messages, fields, numbers and types as MindSpore's
    theirs = descriptor_pb2.FileDescriptorProto.FromString(out["descriptor"].tobytes())
    mine = descriptor_pb2.FileDescriptorProto()
    anf_ir_pb2.DESCRIPTOR.CopyToProto(mine)
    assert (mine.package, mine.syntax or "proto2") == (theirs.package, theirs.syntax or "proto2")
    assert _fields(mine) == _fields(theirs)
