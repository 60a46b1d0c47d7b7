"""The MINDIR graph builder the rules of ``to_mindir`` write through: naming, Constant and
primitive nodes, symbolic dims, and the Load/Assign plumbing of in-place parameter updates.

``Emitter.op(prim, inputs, shape, dtype)`` adds one node (op_type ``REF::<Prim>:<n>``, the primitive
listed in ``ModelProto.primitives``) and returns its name; ``const``/``tensor`` add Constant
nodes; ``dims``/``reshape_dims``/``broadcast_dims`` give a shape argument, computed from the
inputs' ``Shape`` when some dims are symbolic (MindSpore's form of ``x.shape`` arithmetic).

>>> e = Emitter(graph); e.op("Exp", [e.ref("x")], (2, 3), np.float32)   # doctest: +SKIP
"""
from __future__ import annotations

import re

import numpy as np

from . import ir
from .mindir_format import encode_value, tensor_spec
from msjax._proto import mind_ir_pb2 as pb
from msjax.errors import ExportError, UnsupportedOpError

__all__ = ["Emitter", "FUNCTION", "CLASSIC", "A", "spec", "output_of", "load_updated", "assign_updates"]

FUNCTION = pb.PrimitiveProto.PRIMITIVE_FUNCTION
CLASSIC = pb.PrimitiveProto.PRIMITIVE
A = pb.AttributeProto


def spec(shape, dtype):
    """tensor_spec with MindSpore's -1 for every symbolic dim."""
    return tensor_spec(tuple(-1 if isinstance(d, ir.Dim) else d for d in shape), dtype)


def output_of(node):
    """``(shape, dtype)`` of ``node``'s (first) output: the last two arguments of ``Emitter.op``."""
    value = node.outputs[0]
    return tuple(value.shape), np.dtype(value.dtype)


_SCALAR_OPS = {"add": "ScalarAdd", "mul": "ScalarMul", "floordiv": "ScalarFloorDiv", "mod": "ScalarMod"}


class Emitter:
    """Builds one GraphProto: names values, emits Constant and primitive nodes."""

    def __init__(self, graph: ir.Graph):
        self.graph = graph
        self.gname = re.sub(r"[^0-9A-Za-z_]", "_", graph.name) or "graph"
        self.model = pb.ModelProto(ir_version="1.1", producer_name="msjax", model_version="2.10.0",
                                   little_endian=True, mind_ir_version=3)
        self.g = self.model.graph
        self.g.name = self.gname
        self.values = graph.values()
        self.producers = {o.name: n for n in graph.nodes for o in n.outputs}
        self.names = {}            # ir value name -> mindir name
        self._count = 0
        self._scalars = {}
        self._sources = graph.symbol_sources()
        self._dims, self._shapes = {}, {}

    # ------------------------------------------------------------- naming
    def fresh(self, stem="CNode"):
        self._count += 1
        return f"{self.gname}:{stem}_{self._count}"

    def ref(self, name):
        """The mindir name of ir value ``name`` (a constant is emitted on first use)."""
        if name not in self.names:
            if name in self.graph.constants:
                self.names[name] = self._constant(np.asarray(self.graph.constants[name]))
            else:
                raise ExportError(f"{self.graph.name}: value {name!r} is used before it is defined")
        return self.names[name]

    def shape(self, name):
        return tuple(self.values[name].shape)

    def dtype(self, name):
        return np.dtype(self.values[name].dtype)

    # ------------------------------------------------------------- nodes
    def _constant(self, value):
        self._count += 1
        name = f"ValueNode_{self._count}"
        self.g.node.add(output=[name], name=name, op_type="Constant",
                        attribute=[encode_value(value, "value")])
        return name

    def const(self, value):
        """A Constant node for a Python scalar / tuple argument (shared per value)."""
        key = (type(value).__name__, repr(value))
        if key not in self._scalars:
            self._scalars[key] = self._constant(value)
        return self._scalars[key]

    def tensor(self, array):
        return self._constant(np.asarray(array))

    def op(self, prim, inputs, shape, dtype, *, attrs=None, kind=FUNCTION, abstract=None):
        """Emit ``prim(*inputs)``; ``shape``/``dtype`` describe its output. Returns its name."""
        self._count += 1
        pname = f"{prim}:{self._count}"
        p = self.model.primitives.add(name=pname, op_type=prim, instance_name="", prim_type=kind)
        for key, value in (attrs or {}).items():
            p.attribute.append(encode_value(value, key))
        out = f"{self.gname}:CNode_{self._count}"
        node = self.g.node.add(input=list(inputs), output=[out], name=out, op_type=f"REF::{pname}")
        node.attribute.append(abstract if abstract is not None else
                              A(name="shape", type=A.TENSORS, tensors=[spec(shape, dtype)]))
        return out

    # ------------------------------------------------------------- symbolic dims
    @staticmethod
    def _scalar_abstract(count=None):
        """The abstract of an int64 scalar (``count`` None) or of a tuple of ``count`` of them."""
        one = dict(type=A.SCALAR, tensors=[pb.TensorProto(dims=[0], data_type=pb.TensorProto.INT64)])
        if count is None:
            return A(name="shape", **one)
        return A(name="shape", type=A.TUPLE, values=[A(**one) for _ in range(count)])

    def dim(self, d):
        """The value of dim ``d`` as a MindSpore int64 scalar (a Constant for an int)."""
        if not isinstance(d, ir.Dim):
            return self.const(int(d))
        if d not in self._dims:
            def combine(op):
                def scalar(a, b):
                    if op not in _SCALAR_OPS:
                        raise UnsupportedOpError(f"symbolic dim {d} needs {op}, which MINDIR export cannot "
                                                 f"compute")
                    return self.op(_SCALAR_OPS[op], [a, b], None, None, abstract=self._scalar_abstract())
                return scalar
            if d.name is not None:
                self._dims[d] = self._symbol(d.name)
            else:
                self._dims[d] = d.evaluate(lambda name: self.dim(ir.Dim.symbol(name)), self.const,
                                           {k: combine(k) for k in ir.Dim.OPS})
        return self._dims[d]

    def _symbol(self, name):
        if name not in self._sources:
            raise ExportError(f"{self.graph.name}: symbolic dim {name!r} is not a dim of any input")
        value, axis = self._sources[name]
        if value not in self._shapes:
            rank = len(self.shape(value))
            self._shapes[value] = self.op("Shape", [self.ref(value)], None, None,
                                          abstract=self._scalar_abstract(rank))
        return self.op("TupleGetItem", [self._shapes[value], self.const(axis)], None, None,
                       kind=CLASSIC, abstract=self._scalar_abstract())

    def dims(self, dims, keep=None):
        """A shape argument: a constant tuple, with -1 at the axes in ``keep`` (dims the op infers
        or keeps); when other dims are symbolic, a MakeTuple of their computed scalars."""
        keep = set(keep or ())
        dims = tuple(-1 if i in keep else d for i, d in enumerate(dims))
        if ir.is_static(dims):
            return self.const(tuple(int(d) for d in dims))
        items = [self.dim(d) for d in dims]
        return self.op("MakeTuple", items, None, None, kind=CLASSIC, abstract=self._scalar_abstract(len(items)))

    def reshape_dims(self, shape):
        """A Reshape's shape argument: one symbolic dim becomes -1; more are computed."""
        axes = ir.dynamic_axes(shape)
        return self.dims(shape, keep=axes if len(axes) == 1 else ())

    def broadcast_dims(self, shape, aligned):
        """A BroadcastTo's shape: -1 (keep) where the input already has the symbolic dim."""
        return self.dims(shape, keep=[i for i, d in enumerate(shape) if isinstance(d, ir.Dim) and aligned[i] == d])



_UMONAD = A(name="shape", type=A.UMONAD)


def load_updated(e):
    """Parameters the call updates (``graph.updates``), read as MindSpore reads them before an
    Assign: ``TensorMove(Load(p, U))``, a copy every node of the graph reads. Returns the monad
    that orders those copies before the Assigns."""
    e._count += 1
    u = f"ValueNode_{e._count}"
    e.g.node.add(output=[u], name=u, op_type="Constant", attribute=[A(name="value", type=A.UMONAD)])
    copies = []
    for name in e.graph.updates:
        if name not in e.graph.parameters:
            raise ExportError(f"{e.graph.name}: the updated value {name!r} is not a parameter")
        array = e.graph.parameters[name]
        load = e.op("Load", [e.names[name], u], array.shape, array.dtype, kind=CLASSIC)
        copies.append(e.op("TensorMove", [load], array.shape, array.dtype, kind=CLASSIC))
        e.names[name] = copies[-1]
    return e.op("UpdateState", [u, *copies], None, None, kind=CLASSIC, abstract=_UMONAD)


def assign_updates(e, u):
    """``Assign(p, value, U)`` for each updated parameter, chained by UpdateState (MindSpore's
    form of ``ops.assign``/``self.p = value``); returns the last monad, which the output Depends on."""
    for name, src in e.graph.updates.items():
        array = e.graph.parameters[name]
        if tuple(e.shape(src)) != tuple(array.shape) or e.dtype(src) != array.dtype:
            raise ExportError(f"{e.graph.name}: parameter {name!r} ({list(array.shape)}, {array.dtype}) is "
                              f"updated with a value of shape {list(e.shape(src))} and dtype {e.dtype(src)}")
        target = spec(array.shape, array.dtype)
        target.ref_key = name
        assign = e.op("Assign", [f"{e.gname}:{name}", e.ref(src), u], None, None, attrs={"side_effect_mem": True},
                      abstract=A(name="shape", type=A.TENSORS, tensors=[target]))
        u = e.op("UpdateState", [u, assign], None, None, kind=CLASSIC, abstract=_UMONAD)
    return u

