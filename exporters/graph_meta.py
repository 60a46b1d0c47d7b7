"""``<prefix>-graph.meta``: the train network's graph in MindSpore's ``anf_ir`` encoding.

MindSpore's ``ModelCheckpoint`` writes this file once at train begin: one serialized anf_ir
``ModelProto`` (``ir_version`` 1) whose ``graph`` is the compiled train network. Its
``parameters`` are the graph inputs (``inputs0``, ``inputs1`` for ``TrainOneStepCell``) and then
every network and optimizer parameter by dotted name; its ``node`` list numbers nodes "1", "2", ...
with MindSpore primitive names in ``op_type``, the cell path in ``scope``
("Default/network-WithLossCell/_backbone-LeNet5/conv1-Conv2d"), a ``full_name``, and inputs that
name nodes, parameters or constants ("cst1", kept in ``const_vals``); ``outputs`` names the node
that yields the loss.

msjax builds it from the capture layer. For a ``TrainOneStepCell`` the whole step is captured
(forward, loss, backward and the optimizer update); a network whose construct cannot be traced
falls back to its ``.network`` (forward + loss).

>>> write_graph_meta(train_net, (data, label), "ckpt/lenet-graph.meta")   # doctest: +SKIP
>>> read_graph_meta("ckpt/lenet-graph.meta").graph.name                    # doctest: +SKIP
"""
from __future__ import annotations

import os
import re
from collections import Counter

import jax
import numpy as np

from .capture import capture, input_names
from .op_table import column
from .protofile import read_message, write_bytes
from msjax._proto import anf_ir_pb2
from msjax.common import dtype
from msjax.common.untrusted import reading
from msjax.errors import ExportError
from msjax.nn.cell import Cell

__all__ = ["write_graph_meta", "read_graph_meta", "to_graph_proto", "OP_TYPES"]

_DT = anf_ir_pb2
#: msjax dtype -> anf_ir DataType
ANF_DTYPE = {
    dtype.bool_: _DT.DT_BOOL, dtype.int8: _DT.DT_INT8, dtype.int16: _DT.DT_INT16, dtype.int32: _DT.DT_INT32,
    dtype.int64: _DT.DT_INT64, dtype.uint8: _DT.DT_UINT8, dtype.uint16: _DT.DT_UINT16,
    dtype.uint32: _DT.DT_UINT32, dtype.uint64: _DT.DT_UINT64, dtype.float16: _DT.DT_FLOAT16,
    dtype.float32: _DT.DT_FLOAT32, dtype.float64: _DT.DT_FLOAT64, dtype.bfloat16: _DT.DT_BFLOAT16,
    dtype.complex64: _DT.DT_COMPLEX64, dtype.complex128: _DT.DT_COMPLEX128,
}

#: jaxpr primitive -> MindSpore primitive name shown in the graph (unknown ones are CamelCased):
#: op_table.TABLE's graph.meta column
OP_TYPES = {prim: name for prim, (_, name) in column("graph.meta").items()}

#: what tracing a construct can raise when capture cannot follow it (Python control flow on a
#: value, an op JAX cannot trace, an unexpected tracer): the train step then falls back one level
_UNTRACEABLE = (TypeError, ValueError, RuntimeError, AttributeError, LookupError, ArithmeticError,
                AssertionError, jax.errors.InconclusiveDimensionOperation)


#: jaxpr params shown as node attributes (ints or tuples of ints, nested tuples flattened)
_ATTRS = ("window_strides", "window_dimensions", "padding", "permutation", "axes", "new_sizes",
          "feature_group_count")


def _flatten(value):
    if isinstance(value, tuple):
        return tuple(x for v in value for x in (_flatten(v) if isinstance(v, tuple) else (v,)))
    return value


def _op_type(prim):
    return OP_TYPES.get(prim) or "".join(part.capitalize() for part in re.split(r"[_\-]", prim))


def _fused(node, graph, producers):
    """MindSpore's name and inputs for a node: ReLU for max(x, 0), BiasAdd for x + bias, conv grads."""
    op_type, inputs = _op_type(node.op), list(node.inputs)
    if node.op == "max":
        for x, c in (inputs, inputs[::-1]):
            value = graph.constants.get(c)
            if value is not None and value.size == 1 and float(np.asarray(value).reshape(())) == 0.0:
                return "ReLU", [x]
    if node.op == "add":
        for x, b in (inputs, inputs[::-1]):
            src = producers.get(b)
            if src is not None and src.op == "broadcast_in_dim" \
                    and tuple(src.params["broadcast_dimensions"]) == (1,) and len(src.outputs[0].shape) in (2, 4):
                return "BiasAdd", [x, src.inputs[0]]
    if node.op == "conv_general_dilated":
        lhs_spec = node.params["dimension_numbers"].lhs_spec
        if any(d != 1 for d in node.params["lhs_dilation"]):
            return "Conv2DBackpropInput", inputs
        if tuple(lhs_spec) != (0, 1, 2, 3):
            return "Conv2DBackpropFilter", inputs
    if node.op == "dot_general" and node.params["dimension_numbers"][1][0]:
        return "BatchMatMul", inputs
    return op_type, inputs


def _snake(name):
    return re.sub(r"(?<!^)(?=[A-Z][a-z])", "_", name).lower()


def _anf_dtype(np_dtype):
    try:
        return ANF_DTYPE[dtype.from_numpy(np_dtype)]
    except (KeyError, TypeError):
        return _DT.DT_UNDEFINED


def _tensor_type(type_proto, shape, np_dtype):
    type_proto.data_type = _DT.DT_TENSOR
    type_proto.tensor_type.elem_type = _anf_dtype(np_dtype)
    shape_proto = type_proto.tensor_type.shape
    shape_proto.SetInParent()
    for d in shape:
        shape_proto.dim.add().size = int(d)


def _set_value(value_proto, value):
    """A scalar, tuple or array as MindSpore writes const_vals and attributes."""
    if isinstance(value, (tuple, list)):
        value_proto.dtype = _DT.DT_TUPLE
        for v in value:
            _set_value(value_proto.values.add(), v)
    elif isinstance(value, (bool, np.bool_)):
        value_proto.dtype, value_proto.bool_val = _DT.DT_BOOL, bool(value)
    elif isinstance(value, (int, np.integer)):
        value_proto.dtype, value_proto.int_val = _DT.DT_INT64, int(value)
    elif isinstance(value, (float, np.floating)):
        value_proto.dtype, value_proto.float_val = _DT.DT_FLOAT32, float(value)
    elif isinstance(value, str):
        value_proto.dtype, value_proto.str_val = _DT.DT_STRING, value
    else:
        array = np.asarray(value)
        value_proto.dtype = _DT.DT_TENSOR
        value_proto.tensor_val.dims.extend(array.shape)
        value_proto.tensor_val.data_type = _anf_dtype(array.dtype)


class _WithState(Cell):
    """Runs a train step and returns the loss plus every parameter, so capture keeps the updates."""

    def __init__(self, step):
        super().__init__(auto_prefix=False)
        self.step = step

    def construct(self, *inputs):
        loss = self.step(*inputs)
        return loss, [p.get_value() for _, p in self.step.parameters_and_names()]


def _capture_train(network, inputs):
    """Capture the whole train step if it traces, else the first ``.network`` below it that does."""
    errors, prefixes, cell = [], [], network
    while isinstance(cell, Cell):
        target = _WithState(cell) if hasattr(cell, "optimizer") else cell
        try:
            return capture(target, *inputs), cell, prefixes
        except _UNTRACEABLE as exc:      # a construct capture cannot trace: fall back one level
            errors.append(f"{type(cell).__name__}: {exc}")
        nxt = getattr(cell, "network", None)
        if nxt is None:
            break
        prefixes.append(f"network-{type(nxt).__name__}")
        cell = nxt
    raise ExportError("cannot capture the train network for graph.meta: " + "; ".join(errors))


def _scopes(cell, prefixes):
    """dotted cell path -> MindSpore scope ("Default/network-WithLossCell/_backbone-LeNet5/conv1-Conv2d")."""
    base = "/".join(["Default", *prefixes])
    table = {"": base}
    for path, _ in cell.cells_and_names():
        if not path:
            continue
        parts, node = [], cell
        for attr in path.split("."):
            node = getattr(node, attr)
            parts.append(f"{attr}-{type(node).__name__}")
        table[path] = base + "/" + "/".join(parts)
    return table


def _graph_name(network):
    module = type(network).__module__.replace(".", "_")
    return f"1_{module}_{type(network).__name__}_construct_1"


def to_graph_proto(network, example_inputs) -> anf_ir_pb2.ModelProto:
    """The anf_ir ``ModelProto`` that ``write_graph_meta`` serializes."""
    inputs = tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    graph, cell, prefixes = _capture_train(network, inputs)
    scope_of = _scopes(cell, prefixes)
    wrapped = hasattr(cell, "optimizer")         # sources read "step.<path>" under _WithState

    model = anf_ir_pb2.ModelProto(ir_version=anf_ir_pb2.IR_VERSION)
    g = model.graph
    g.name = _graph_name(network)
    names = {}
    for value, name in zip(graph.inputs, input_names(network, len(graph.inputs))):
        p = g.parameters.add(name=name)
        _tensor_type(p.type, value.shape, value.dtype)
        names[value.name] = name
    params = [(p.name, np.shape(p.get_value()), np.asarray(p.get_value()).dtype)
              for _, p in network.parameters_and_names()]
    listed = {n for n, _, _ in params}
    params += [(n, a.shape, a.dtype) for n, a in graph.parameters.items() if n not in listed]
    for name, shape, dt in params:
        p = g.parameters.add(name=name)
        _tensor_type(p.type, shape, dt)
        names[name] = name
    for name, array in graph.constants.items():
        key = f"cst{len(g.const_vals) + 1}"
        array = np.asarray(array)
        _set_value(g.const_vals.add(key=key).value, array.item() if array.ndim == 0 else array)
        names[name] = key

    counters = Counter()
    producers = {o.name: node for node in graph.nodes for o in node.outputs}
    for node in graph.nodes:
        if node.op in ("copy", "copy_p") and not any(o.name == graph.outputs[0].name for o in node.outputs):
            continue
        n = g.node.add()
        op_type, node_inputs = _fused(node, graph, producers)
        n.name = str(len(g.node))
        n.op_type = op_type
        source = node.source
        if wrapped:
            source = "" if source == "step" else source.removeprefix("step.")
        n.scope = scope_of.get(source, scope_of[""])
        n.full_name = f"{n.scope}/{op_type}-op{counters[op_type]}"
        counters[op_type] += 1
        n.instance_name = _snake(op_type)
        for i in node_inputs:
            n.input.add(name=names.get(i, i), type=anf_ir_pb2.InputProto.DATA_EDGE)
        for key in _ATTRS:
            value = node.params.get(key)
            if isinstance(value, (int, tuple)):
                _set_value(n.attribute.add(name=key).value, _flatten(value))
        out = node.outputs[0]
        _tensor_type(n.output_type, out.shape, out.dtype)
        for o in node.outputs:
            names[o.name] = n.name
    loss = graph.outputs[0]
    o = g.outputs.add(name=names.get(loss.name, loss.name))
    _tensor_type(o.type, loss.shape, loss.dtype)
    return model


def write_graph_meta(network, example_inputs, path) -> None:
    """Write ``network``'s graph (the train network: ``TrainOneStepCell`` or forward + loss) to ``path``.

    >>> write_graph_meta(TrainOneStepCell(WithLossCell(net, loss), opt), (x, y), "lenet-graph.meta")  # doctest: +SKIP
    """
    write_bytes(path, to_graph_proto(network, example_inputs).SerializeToString(deterministic=True))


def read_graph_meta(path) -> anf_ir_pb2.ModelProto:
    """Parse a ``-graph.meta`` file (ours or MindSpore's) into an anf_ir ``ModelProto``: it must
    parse, hold a graph, and every string in it must be valid UTF-8."""
    path = os.fspath(path)
    with reading(path, ExportError, "graph.meta file"):
        model = read_message(path, anf_ir_pb2.ModelProto, "a graph.meta file")
    if not model.HasField("graph"):
        raise ExportError("graph.meta holds no graph", file=path)
    return model
