"""The AIR graph builder the rules of ``to_air`` write through: ge_ir descriptors and attributes,
output references, and the walk from Data inputs and parameter Consts to ``NetOutput``.

``Emitter.op(op_type, inputs, outputs, attrs)`` appends one op (named after the layer that made it,
"Default/fc1/MatMulV2-op12") and returns its output ``Ref``s; ``const``/``ints`` add Const ops.
Ops nothing reads (left by folding, e.g. a BiasAdd's broadcast) are pruned at the end.

>>> Emitter(graph, RULES).emit()                    # doctest: +SKIP
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from . import ir
from .air_types import layout_for, proto_dtype
from .rules import walk
from msjax._proto import ge_ir_pb2
from msjax.errors import ExportError

__all__ = ["tensor_desc", "tensor_def", "set_attr", "Ref", "Emitter"]


# ------------------------------------------------------------------ protobuf helpers
def tensor_desc(shape, np_dtype, name=""):
    """A ``TensorDescriptor``: dtype, shape, layout, and GE's origin_format/origin_shape attrs."""
    desc = ge_ir_pb2.TensorDescriptor(name=name, dtype=proto_dtype(np_dtype), layout=layout_for(shape))
    desc.shape.dim.extend(int(d) for d in shape)
    desc.attr["origin_format"].s = layout_for(shape).encode()
    desc.attr["origin_shape"].list.i.extend(int(d) for d in shape)
    desc.attr["origin_shape"].list.val_type = ge_ir_pb2.AttrDef.ListValue.VT_LIST_INT
    return desc


def tensor_def(array, name=""):
    array = np.ascontiguousarray(array)
    return ge_ir_pb2.TensorDef(desc=tensor_desc(array.shape, array.dtype, name),
                               data=array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes())


def set_attr(attr: ge_ir_pb2.AttrDef, value):
    """Store a Python value in an ``AttrDef``: bool, int, float, str, list of those, ndarray."""
    lv = ge_ir_pb2.AttrDef.ListValue
    if isinstance(value, (bool, np.bool_)):
        attr.b = bool(value)
    elif isinstance(value, (int, np.integer)):
        attr.i = int(value)
    elif isinstance(value, (float, np.floating)):
        attr.f = float(value)
    elif isinstance(value, str):
        attr.s = value.encode()
    elif isinstance(value, np.ndarray):
        attr.t.CopyFrom(tensor_def(value))
    elif isinstance(value, (list, tuple)):
        if all(isinstance(v, str) for v in value) and value:
            attr.list.s.extend(v.encode() for v in value)
            attr.list.val_type = lv.VT_LIST_STRING
        elif all(isinstance(v, float) for v in value) and value:
            attr.list.f.extend(value)
            attr.list.val_type = lv.VT_LIST_FLOAT
        else:
            attr.list.i.extend(int(v) for v in value)
            attr.list.val_type = lv.VT_LIST_INT
    else:
        raise ExportError(f"cannot store attribute value {value!r} ({type(value).__name__}) in AIR")


# ------------------------------------------------------------------ the emitter
class Ref:
    """One output of an emitted op: ``"<op>:<index>"`` plus its descriptor."""

    def __init__(self, op, index, shape, dtype):
        self.op, self.index, self.shape, self.dtype = op, index, tuple(shape), np.dtype(dtype)

    def __str__(self):
        return f"{self.op}:{self.index}"


class Emitter:
    """Walks an ``ir.Graph`` and builds its ``GraphDef``; rules call ``op``, ``const`` and ``ref``."""

    def __init__(self, graph: ir.Graph, rules):
        self.graph = graph
        self.rules = rules
        self.gdef = ge_ir_pb2.GraphDef(name=graph.name)
        self.refs = {}
        self.producers = {o.name: n for n in graph.nodes for o in n.outputs}
        self.uses = Counter(i for n in graph.nodes for i in n.inputs)
        self.uses.update(o.name for o in graph.outputs)
        self.scope = "Default"
        self._ids = 0

    # values
    def ref(self, name) -> Ref:
        if name not in self.refs:
            raise ExportError(f"AIR export of {self.graph.name}: value {name!r} is used before it is defined")
        return self.refs[name]

    def producer(self, name):
        """The ``ir.Node`` that computes value ``name`` (None for inputs, parameters, constants)."""
        return self.producers.get(name)

    def constant_value(self, name):
        """The array of a captured constant, or None if ``name`` is computed or a parameter."""
        return self.graph.constants.get(name)

    # ops
    def op(self, op_type, inputs, outputs, attrs=None, *, input_names=None, name=None):
        """Append an op; ``outputs`` is a list of ``(shape, dtype)``; returns its output Refs."""
        op = self.gdef.op.add()
        op.name = name or f"{self.scope}/{op_type}-op{self._ids}"
        op.type = op_type
        op.id = self._ids
        self._ids += 1
        for r in inputs:
            op.input.append(str(r))
            op.input_desc.append(tensor_desc(r.shape, r.dtype))
        for shape, dt in outputs:
            op.output_desc.append(tensor_desc(shape, dt))
        for key, value in (attrs or {}).items():
            set_attr(op.attr[key], value)
        if input_names:
            set_attr(op.attr["_input_name_key"], list(input_names))
            set_attr(op.attr["_input_name_value"], list(range(len(input_names))))
        return [Ref(op.name, i, shape, dt) for i, (shape, dt) in enumerate(outputs)]

    def const(self, array, name=None):
        array = np.asarray(array)
        (out,) = self.op("Const", [], [(array.shape, array.dtype)], {"value": array}, name=name)
        return out

    def ints(self, values, dtype=np.int64):
        """A 1-d integer Const (shapes, axes, permutations)."""
        return self.const(np.asarray(list(values), dtype))

    # driving
    def emit(self):
        g = self.graph
        for index, value in enumerate(g.inputs):
            (r,) = self.op("Data", [], [(value.shape, value.dtype)], {"index": index}, name=value.name,
                           input_names=["x"])
            self.gdef.input.append(str(r))
            self.refs[value.name] = r
        for name, array in list(g.parameters.items()) + list(g.constants.items()):
            self.refs[name] = self.const(array, name=name)
        walk(g, "AIR", self._emit_node, self._placeholder)
        self.scope = "Default"
        results = [self.ref(v.name) for v in g.outputs]
        self.op("NetOutput", results, [], name="NetOutput", input_names=[f"x{i}" for i in range(len(results))])
        self.gdef.output.extend(str(r) for r in results)
        self._prune()
        return self.gdef

    def _emit_node(self, node):
        self.scope = "Default/" + node.source.replace(".", "/") if node.source else "Default"
        outs = self.rules[node.op](self, node)
        for value, r in zip(node.outputs, outs):
            if tuple(r.shape) != tuple(value.shape):
                raise ExportError(f"AIR rule for {node.op} made shape {r.shape}, expected {value.shape}")
            self.refs[value.name] = r

    def _placeholder(self, node):
        """Stands in for the outputs of a refused node, so the walk can try the later ones."""
        for value in node.outputs:
            self.refs[value.name] = Ref("<refused>", 0, value.shape, value.dtype)

    def _prune(self):
        """Drop ops nothing reads (left by folding), keeping inputs and parameter Consts."""
        keep = set(self.graph.parameters) | {v.name for v in self.graph.inputs}
        live, kept = {"NetOutput"}, []
        for op in reversed(self.gdef.op):
            if op.name in live or op.name in keep:
                kept.append(op)
                live.update(i.rsplit(":", 1)[0] for i in op.input)
        del self.gdef.op[:]
        self.gdef.op.extend(reversed(kept))
