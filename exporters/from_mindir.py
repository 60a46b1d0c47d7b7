"""MINDIR reader: a ``.mindir`` file (msjax's or MindSpore's own) -> a ``GraphCell`` run by JAX.

``read`` decodes the ModelProto into a ``MindIRGraph`` (parameters by ``ref_key``, inputs,
Constant values, and the node list with each node's primitive and attributes). ``run`` evaluates
that node list with jax; ``OPS`` (``mindir_ops``) maps each MindSpore primitive to a function
``op(args, attrs) -> value``. Side-effect plumbing MindSpore emits (Load, UpdateState, Depend,
monads) is evaluated as identity/no-op.

>>> net = load("lenet5.mindir")                     # doctest: +SKIP
>>> net(Tensor(x)).shape
(4, 10)
"""
from __future__ import annotations

import dataclasses
import functools
import os
from collections import OrderedDict

import jax.numpy as jnp

from .mindir_crypto import read_model
from .mindir_flow import CALL, FLOW_PRIMS, Flow, SubGraph
from .mindir_format import decode_tensor, decode_value, numpy_dtype
from .mindir_ops import OPS, UPDATES
from msjax._proto import mind_ir_pb2 as pb
from msjax.common.untrusted import MAX_DIMS, reading
from msjax.errors import ExportError, UnsupportedOpError
from msjax.nn.cell import Cell

__all__ = ["read", "run", "MindIRGraph", "OPS", "GRAPH_CELL_ATTRIBUTES"]


@dataclasses.dataclass(frozen=True)
class Op:
    """One node: ``outputs[0] = OPS[prim](*inputs, **attrs)``."""

    prim: str
    inputs: tuple
    output: str
    attrs: dict
    scope: str


@dataclasses.dataclass(eq=False)
class MindIRGraph:
    """A decoded MINDIR graph. Hashed by identity, so a jitted GraphCell can hold it statically."""

    file_name: str
    name: str
    parameters: OrderedDict           # ref_key -> np.ndarray, in file order
    param_refs: dict                  # full parameter name ("<graph>:conv1.weight") -> ref_key
    inputs: list                      # [(full name, shape, np.dtype)]
    outputs: list                     # [full name]
    constants: dict                   # Constant node name -> value
    ops: list                         # [Op] in file order
    functions: dict = dataclasses.field(default_factory=dict)   # sub-graph name -> SubGraph

    def __hash__(self):
        return id(self)


def read(file_name, dec_key=None, dec_mode="AES-GCM") -> MindIRGraph:
    """Decode a MINDIR file; raise ExportError naming the file when it cannot be used.

    An encrypted file needs ``dec_key`` and ``dec_mode`` (a name or ``f(file_name, key) -> bytes``),
    as given to export; see ``msjax_exporters.mindir_crypto``.
    """
    file_name = os.fspath(file_name)
    model = read_model(file_name, pb.ModelProto, dec_key, dec_mode)   # a dec_mode function's errors stay its own
    with reading(file_name, ExportError, "MINDIR file"):
        if not model.HasField("graph") or not model.graph.node:
            raise ExportError("not a MINDIR file (no graph); was it encrypted with enc_key?", file=file_name)
        return _decode(model, file_name)


def _decode(model, file_name):
    g = model.graph
    parameters, refs = _parameters(g, file_name)
    inputs = [_input(v, file_name) for v in g.input]
    constants, ops = _nodes(model, file_name)
    functions = {f.name: SubGraph(f.name, tuple(v.name for v in f.input), tuple(v.name for v in f.output),
                                  *_nodes(model, file_name, f)) for f in model.functions}
    every = ops + [op for f in functions.values() for op in f.ops]
    missing = sorted({op.prim for op in every} - set(OPS) - FLOW_PRIMS)
    if missing:
        error = UnsupportedOpError(f"{len(missing)} MindSpore primitive(s) have no JAX rule: "
                                   f"{', '.join(missing)}", file=file_name)
        error.unsupported = missing
        raise error
    outputs = [v.name for v in g.output]
    _check_references(set(refs) | {name for name, _, _ in inputs} | set(constants) | set(functions),
                      ops, outputs, file_name)
    shared = set(constants).union(*(f.constants for f in functions.values()))   # Constants are model-wide
    for f in functions.values():
        _check_references(set(f.inputs) | shared | set(functions), f.ops, f.outputs, file_name)
    return MindIRGraph(file_name, g.name, parameters, refs, inputs, outputs, constants, ops, functions)


def _parameters(g, file_name):
    """ref_key -> array, and full name -> ref_key, for every parameter in file order."""
    parameters, refs = OrderedDict(), {}
    for t in g.parameter:
        key = t.ref_key or t.name.split(":", 1)[-1]
        _check_parameter_name(key, t.name, file_name)
        parameters[key] = decode_tensor(t, where=f"parameter {t.name}", file=file_name)
        refs[t.name] = key
    return parameters, refs


def _check_parameter_name(key, full_name, file_name):
    """A ref_key becomes a GraphCell attribute: it must be non-empty and not shadow one of the
    Cell's own attributes (``construct``, ``training``, ``_graph``...)."""
    if not key:
        raise ExportError(f"parameter {full_name!r} has no name (empty ref_key); the file is "
                          f"corrupt", file=file_name)
    if key in _reserved_names():
        raise ExportError(f"parameter {full_name!r} is named {key!r}, which is an attribute of "
                          f"GraphCell itself; rename the parameter and export again", file=file_name)


#: what a GraphCell sets on itself besides a Cell's own attributes (graph_cell.GraphCell.__init__)
GRAPH_CELL_ATTRIBUTES = frozenset({"_graph", "_train_graph", "_cell_order", "_writes"})


@functools.cache
def _reserved_names():
    """Names a parameter may not take: they would shadow an attribute of its GraphCell."""
    return frozenset(dir(Cell)) | frozenset(vars(Cell())) | GRAPH_CELL_ATTRIBUTES


def _input(v, file_name):
    """(full name, shape or None, numpy dtype or None) of one graph input."""
    if not v.tensor:
        return v.name, None, None
    spec = v.tensor[0]
    where = f"input {v.name}"
    shape = tuple(spec.dims)
    if len(shape) > MAX_DIMS or any(d < -2 for d in shape):
        raise ExportError(f"{where} declares shape {list(shape)}; dims are sizes, -1 (dynamic) or -2 "
                          f"(dynamic rank), at most {MAX_DIMS} of them", file=file_name)
    return v.name, shape, numpy_dtype(spec.data_type, where=where, file=file_name)


def _nodes(model, file_name, graph=None):
    """Constant node output -> value, and the other nodes as Ops, in file order, of the main graph
    or of the sub-graph ``graph``."""
    prims = {p.name: p for p in model.primitives}
    constants, ops = {}, []
    for node in (graph or model.graph).node:
        where = f"node {node.name}"
        if not node.output:
            raise ExportError(f"{where} has no output; every MINDIR node names the value it "
                              f"defines", file=file_name)
        if node.op_type == "Constant":
            constants[node.output[0]] = _constant(node, where, file_name)
        else:
            ops.append(_op(node, prims, where, file_name))
    return constants, ops


def _constant(node, where, file_name):
    attr = next((a for a in node.attribute if a.name == "value"), None)
    if attr is None:
        raise ExportError(f"{where}: Constant without a value", file=file_name)
    return decode_value(attr, where=where, file=file_name)


def _op(node, prims, where, file_name):
    if not node.op_type.startswith("REF::"):
        raise ExportError(f"{where}: op_type {node.op_type!r} (sub-graph calls) is not supported",
                          file=file_name)
    prim = prims.get(node.op_type[len("REF::"):])
    if prim is None:      # a call of a sub-graph, or of the closure an earlier node made
        return Op(CALL, (node.op_type[len("REF::"):],) + tuple(node.input), node.output[0], {}, node.domain)
    attrs = {a.name: decode_value(a, where=f"{where} attribute {a.name}", file=file_name)
             for a in prim.attribute if a.name not in ("input_names", "output_names")}
    return Op(prim.op_type, tuple(node.input), node.output[0], attrs, node.domain)


def _check_references(defined, ops, outputs, file_name):
    """Every node input must be a parameter, an input, a Constant or an earlier node's output, so
    ``run``'s one pass in file order cannot meet an undefined value (nor a cycle)."""
    defined = set(defined)
    for op in ops:
        for name in op.inputs:
            if name not in defined:
                raise ExportError(f"node {op.output} ({op.prim}) reads {name!r}, which no parameter, "
                                  f"input, Constant or earlier node defines (a missing value or a "
                                  f"cycle)", file=file_name)
        defined.add(op.output)
    for name in outputs:
        if name not in defined:
            raise ExportError(f"graph output {name!r} is not defined by any node, parameter, input "
                              f"or Constant", file=file_name)


def run(graph: MindIRGraph, params: dict, *args, updates=None):
    """Evaluate ``graph`` with jax: ``params`` maps ref_key -> array, ``args`` are its inputs.

    An ``Assign``/``AssignAdd``/``AssignSub`` on a parameter writes it: later nodes read the new
    value (nodes come in MindSpore's monad order), and ``updates`` (a dict, when given) receives
    ref_key -> the parameter's value after the call.
    """
    if len(args) != len(graph.inputs):
        raise ExportError(f"{graph.file_name}: the graph takes {len(graph.inputs)} input(s), got {len(args)}")
    env = dict(graph.constants)
    for full, key in graph.param_refs.items():
        env[full] = params[key]
    for (name, shape, dtype), x in zip(graph.inputs, args):
        x = jnp.asarray(x)
        if shape is not None and not _fits(tuple(x.shape), shape):
            raise ExportError(f"{graph.file_name}: input {name.split(':')[-1]!r} must have shape "
                              f"{list(shape)} (-1: any size), got {list(x.shape)}")
        env[name] = x if dtype is None else x.astype(dtype)

    def write(op):
        if op.prim in UPDATES and op.inputs and op.inputs[0] in graph.param_refs:
            env[op.inputs[0]] = env[op.output]
            if updates is not None:
                updates[graph.param_refs[op.inputs[0]]] = env[op.output]

    flow = Flow(graph.functions, graph.constants, lambda op, a: _apply(op, a, graph.file_name), graph.file_name)
    flow.walk(graph.ops, flow.bind(env), on_update=write)
    out = [env[name] for name in graph.outputs]
    return out[0] if len(out) == 1 else tuple(out)


def _fits(actual, declared):
    """Does an input of shape ``actual`` fit a declared input shape (-1: any size, -2: any rank)?"""
    if -2 in declared:
        return True
    return len(actual) == len(declared) and all(d == -1 or d == a for a, d in zip(actual, declared))


def _apply(op, args, file_name):
    """One primitive; what a malformed graph makes it raise leaves as an ExportError naming the node."""
    try:
        return OPS[op.prim](args, op.attrs)
    except ExportError as exc:
        if exc.file is not None:
            raise
        raise ExportError(f"node {op.output} ({op.prim}): {exc}", file=file_name) from exc
    except Exception as exc:
        raise ExportError(f"node {op.output} ({op.prim}) cannot run on its inputs: {exc} "
                          f"({type(exc).__name__})", file=file_name) from exc
