"""MINDIR reader: a ``.mindir`` file (msjax's or MindSpore's own) -> a ``GraphCell`` run by JAX.

``read`` decodes the ModelProto into a ``MindIRGraph`` (parameters by ``ref_key``, inputs,
Constant values, and the node list with each node's primitive and attributes). ``run`` evaluates
that node list with jax; ``OPS`` maps each MindSpore primitive to a function
``op(args, attrs) -> value``. Side-effect plumbing MindSpore emits (Load, UpdateState, Depend,
monads) is evaluated as identity/no-op.

>>> net = load("lenet5.mindir")                     # doctest: +SKIP
>>> net(Tensor(x)).shape
(4, 10)
"""
from __future__ import annotations

import dataclasses
import functools
import math
import os
from collections import OrderedDict

import jax
import jax.numpy as jnp
from jax import lax

from .mindir_crypto import load_options, read_model
from .mindir_format import BY_TYPE_ID, MONAD, decode_tensor, decode_value, numpy_dtype
from msjax._proto import mind_ir_pb2 as pb
from msjax.common.untrusted import MAX_DIMS, reading
from msjax.errors import ExportError, UnsupportedOpError

__all__ = ["read", "load", "run", "MindIRGraph", "OPS"]


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
        if model.functions:
            raise ExportError("MINDIR files with sub-graphs (control flow) are not supported", file=file_name)
        return _decode(model, file_name)


def _decode(model, file_name):
    g = model.graph
    parameters, refs = _parameters(g, file_name)
    inputs = [_input(v, file_name) for v in g.input]
    constants, ops = _nodes(model, file_name)
    missing = sorted({op.prim for op in ops} - set(OPS))
    if missing:
        error = UnsupportedOpError(f"{len(missing)} MindSpore primitive(s) have no JAX rule: "
                                   f"{', '.join(missing)}", file=file_name)
        error.unsupported = missing
        raise error
    outputs = [v.name for v in g.output]
    _check_references(set(refs) | {name for name, _, _ in inputs} | set(constants), ops, outputs,
                      file_name)
    return MindIRGraph(file_name, g.name, parameters, refs, inputs, outputs, constants, ops)


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


@functools.cache
def _reserved_names():
    from .graph_cell import GraphCell
    from msjax.nn.cell import Cell
    return frozenset(dir(GraphCell)) | frozenset(vars(Cell())) | {"_graph", "_cell_order"}


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


def _nodes(model, file_name):
    """Constant node output -> value, and the other nodes as Ops, in file order."""
    prims = {p.name: p for p in model.primitives}
    constants, ops = {}, []
    for node in model.graph.node:
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
    if prim is None:
        raise ExportError(f"{where}: primitive {node.op_type} is not in ModelProto.primitives",
                          file=file_name)
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
    for op in graph.ops:
        try:
            args_ = [env[i] for i in op.inputs]
        except KeyError as exc:
            raise ExportError(f"node {op.output} reads undefined value {exc.args[0]}",
                              file=graph.file_name) from None
        env[op.output] = _apply(op, args_, graph.file_name)
        if op.prim in _UPDATES and op.inputs and op.inputs[0] in graph.param_refs:
            env[op.inputs[0]] = env[op.output]
            if updates is not None:
                updates[graph.param_refs[op.inputs[0]]] = env[op.output]
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


def load(file_name, **kwargs):
    """Read a MINDIR file into a ``GraphCell`` (``msjax.load``'s MINDIR path)."""
    from .graph_cell import GraphCell
    file_name = os.fspath(file_name)
    keyed = load_options(dict(kwargs), file_name)    # dec_key/dec_mode, checked as mindspore.load does
    graph = read(file_name, *(keyed or (None,)))
    with reading(file_name, ExportError, "MINDIR file"):
        return GraphCell(graph)


# ================================================================ primitive -> jax
def _same_pads(size, k, s, d=1):
    eff = (k - 1) * d + 1
    total = max((-(-size // s) - 1) * s + eff - size, 0)
    return (total // 2, total - total // 2)


def _pair(v):
    v = tuple(v) if isinstance(v, (tuple, list)) else (v, v)
    return v[-2:]


def _conv2d(args, attrs):
    x, w = args[:2]
    stride, dilation = _pair(attrs.get("stride", 1)), _pair(attrs.get("dilation", 1))
    mode = str(attrs.get("pad_mode", "valid")).lower()
    if mode == "same":
        pads = [_same_pads(x.shape[2 + i], w.shape[2 + i], stride[i], dilation[i]) for i in range(2)]
    elif mode == "pad":
        p = attrs.get("pad_list") or attrs.get("pad", (0, 0, 0, 0))
        p = tuple(p) if isinstance(p, (tuple, list)) else (p,) * 4
        pads = [(p[0], p[1]), (p[2], p[3])]
    else:
        pads = [(0, 0), (0, 0)]
    if attrs.get("format", "NCHW") != "NCHW":
        raise ExportError("Conv2D with format NHWC is not supported")
    return lax.conv_general_dilated(x, w, stride, pads, rhs_dilation=dilation,
                                    dimension_numbers=("NCHW", "OIHW", "NCHW"),
                                    feature_group_count=int(attrs.get("group", 1)),
                                    precision=lax.Precision.HIGHEST)


def _pool_pads(x, k, s, mode):
    if str(mode).upper() in ("SAME", "1"):
        return [(0, 0), (0, 0)] + [_same_pads(x.shape[2 + i], k[i], s[i]) for i in range(2)]
    return [(0, 0)] * 4


def _max_pool(args, attrs):
    x = args[0]
    k, s = _pair(attrs["kernel_size"]), _pair(attrs["strides"])
    pads = _pool_pads(x, k, s, attrs.get("pad_mode", "VALID"))
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, *k), (1, 1, *s), pads)


def _avg_pool(args, attrs):
    x, kernel, strides, pad_mode = args[:4]
    k, s = _pair(kernel), _pair(strides)
    pads = _pool_pads(x, k, s, {1: "SAME"}.get(pad_mode, "VALID"))
    total = lax.reduce_window(x, 0.0, lax.add, (1, 1, *k), (1, 1, *s), pads)
    count = lax.reduce_window(jnp.ones_like(x), 0.0, lax.add, (1, 1, *k), (1, 1, *s), pads)
    return total / count


def _bias_add(args, attrs):
    x, b = args[:2]
    fmt = args[2] if len(args) > 2 else 0
    axis = x.ndim - 1 if fmt == 1 else 1
    return x + b.reshape((-1,) + (1,) * (x.ndim - 1 - axis))


def _matmul(args, attrs):
    a, b = args[:2]
    ta, tb = (bool(args[2]), bool(args[3])) if len(args) >= 4 else (attrs.get("transpose_a", False),
                                                                     attrs.get("transpose_b", False))
    if ta:
        a = jnp.swapaxes(a, -1, -2)
    if tb:
        b = jnp.swapaxes(b, -1, -2)
    return jnp.matmul(a, b, precision=lax.Precision.HIGHEST)


def _axes(axis, ndim):
    if axis is None or axis == () or axis == []:
        return tuple(range(ndim))
    return tuple(axis) if isinstance(axis, (tuple, list)) else (int(axis),)


def _reduce(fn):
    def op(args, attrs):
        x, axis = args[0], args[1] if len(args) > 1 else ()
        keep = bool(args[2]) if len(args) > 2 else bool(attrs.get("keep_dims", False))
        if len(args) > 3 and args[3] and axis in ((), []):      # ReduceSum skip_mode
            return x
        return fn(x, axis=_axes(axis, x.ndim), keepdims=keep)
    return op


def _batch_norm(args, attrs):
    x, scale, bias, mean, var = args[:5]
    eps = args[6] if len(args) > 6 else attrs.get("epsilon", 1e-5)
    if len(args) > 5 and args[5]:
        raise ExportError("BatchNorm with is_training=True cannot run from a MINDIR graph")
    shape = (-1,) + (1,) * (x.ndim - 2)
    y = (x - mean.reshape(shape)) * lax.rsqrt(var.reshape(shape) + eps) * scale.reshape(shape) + bias.reshape(shape)
    return (y, mean, var, mean, var)


def _layer_norm(args, attrs):
    x, gamma, beta, begin_norm, begin_params, eps = args[:6]
    axes = tuple(range(begin_norm % x.ndim, x.ndim))
    mean = x.mean(axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axes, keepdims=True)
    rstd = lax.rsqrt(var + eps)
    return ((x - mean) * rstd * gamma + beta, mean, rstd)


def _strided_slice(args, attrs):
    x, begin, end, strides = args[:4]
    begin_mask, end_mask, ellipsis, new_axis, shrink = (list(args[4:9]) + [0] * 5)[:5]
    if ellipsis or new_axis:
        raise ExportError("StridedSlice with ellipsis_mask/new_axis_mask is not supported")
    index = []
    for i in range(len(begin)):
        b = None if begin_mask >> i & 1 else begin[i]
        e = None if end_mask >> i & 1 else end[i]
        index.append(b if shrink >> i & 1 else slice(b, e, strides[i]))
    return x[tuple(index)]


def _gelu(args, attrs):
    x = args[0]
    return 0.5 * x * (1.0 + jnp.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def _cast(args, attrs):
    x, dtype = args[:2]
    t = BY_TYPE_ID.get(int(dtype))
    if t is None:
        raise ExportError(f"Cast to MindSpore TypeId {dtype} is not supported")
    return jnp.asarray(x).astype(t.numpy)


def _reshape(args, attrs):
    return jnp.reshape(args[0], tuple(args[1]))


def _argmax_with_value(fn):
    def op(args, attrs):
        x, axis, keep = args[0], int(args[1]), bool(args[2])
        idx = jnp.argmax(x, axis=axis, keepdims=keep) if fn is jnp.max else jnp.argmin(x, axis=axis, keepdims=keep)
        return (idx.astype(jnp.int32), fn(x, axis=axis, keepdims=keep))
    return op


def _unary(fn):
    return lambda args, attrs: fn(args[0])


def _binary(fn):
    return lambda args, attrs: fn(args[0], args[1])


def _update(fn):
    """Assign-family op: the parameter's new value, in its dtype and shape (``run`` writes it)."""
    def op(args, attrs):
        old, value = jnp.asarray(args[0]), jnp.asarray(args[1])
        if value.shape != old.shape:
            raise ExportError(f"the value of shape {list(value.shape)} does not fit the parameter "
                              f"of shape {list(old.shape)}")
        return fn(old, value.astype(old.dtype)).astype(old.dtype)
    return op


def _inplace(fn):
    """``x op= y`` on a parameter (InplaceAddExt(x, y, alpha, U), InplaceMul(x, y, U)): the
    result keeps x's shape and dtype."""
    def op(args, attrs):
        old = jnp.asarray(args[0])
        return jnp.broadcast_to(fn(old, *args[1:-1]), old.shape).astype(old.dtype)
    return op


#: primitives that write their first input (a parameter)
_UPDATES = {"Assign", "AssignAdd", "AssignSub", "InplaceAddExt", "InplaceSubExt", "InplaceMul"}

OPS = {
    # side-effect plumbing: identity / no-op in a pure function
    "Load": lambda a, k: a[0], "UpdateState": lambda a, k: MONAD, "Depend": lambda a, k: a[0],
    "TensorMove": lambda a, k: a[0],
    "Assign": _update(lambda old, v: v), "AssignAdd": _update(jnp.add), "AssignSub": _update(jnp.subtract),
    "InplaceAddExt": _inplace(lambda x, y, alpha: x + alpha * jnp.asarray(y)),
    "InplaceSubExt": _inplace(lambda x, y, alpha: x - alpha * jnp.asarray(y)),
    "InplaceMul": _inplace(lambda x, y: x * jnp.asarray(y)),
    "MakeTuple": lambda a, k: tuple(a), "TupleGetItem": lambda a, k: a[0][int(a[1])],
    "Identity": lambda a, k: a[0],
    # layers
    "Conv2D": _conv2d, "MaxPool": _max_pool, "AvgPool": _avg_pool, "BiasAdd": _bias_add,
    "MatMul": _matmul, "BatchMatMul": _matmul, "BatchNorm": _batch_norm, "LayerNorm": _layer_norm,
    "Flatten": lambda a, k: jnp.reshape(a[0], (a[0].shape[0], -1)),
    "Softmax": lambda a, k: jax.nn.softmax(a[0], axis=_axes(a[1] if len(a) > 1 else -1, a[0].ndim)),
    "Gather": lambda a, k: jnp.take(a[0], a[1], axis=int(a[2])),
    "Pad": lambda a, k: jnp.pad(a[0], [tuple(p) for p in k["paddings"]]),
    # shapes
    "Reshape": _reshape, "Transpose": lambda a, k: jnp.transpose(a[0], tuple(a[1])),
    "BroadcastTo": lambda a, k: jnp.broadcast_to(a[0], tuple(s if s != -1 else d for s, d in
                                                              zip(a[1], (1,) * (len(a[1]) - a[0].ndim) + a[0].shape))),
    "ExpandDims": lambda a, k: jnp.expand_dims(a[0], int(a[1])),
    # dynamic shapes: x.shape as a tuple of ints (static per traced input shape) and its arithmetic
    "Shape": lambda a, k: tuple(int(d) for d in a[0].shape),
    "ScalarAdd": lambda a, k: a[0] + a[1], "ScalarSub": lambda a, k: a[0] - a[1],
    "ScalarMul": lambda a, k: a[0] * a[1], "ScalarFloorDiv": lambda a, k: a[0] // a[1],
    "ScalarMod": lambda a, k: a[0] % a[1],
    "Squeeze": lambda a, k: jnp.squeeze(a[0], tuple(a[1]) or None),
    "Concat": lambda a, k: jnp.concatenate(a[0], axis=int(a[1])), "Cast": _cast,
    "StridedSlice": _strided_slice,
    "ZerosLike": _unary(jnp.zeros_like), "OnesLike": _unary(jnp.ones_like),
    # reductions
    "ReduceSum": _reduce(jnp.sum), "ReduceMean": _reduce(jnp.mean), "ReduceMax": _reduce(jnp.max),
    "ReduceMin": _reduce(jnp.min), "ArgMaxWithValue": _argmax_with_value(jnp.max),
    "ArgMinWithValue": _argmax_with_value(jnp.min),
    # elementwise
    "ReLU": _unary(jax.nn.relu), "Exp": _unary(jnp.exp), "Log": _unary(jnp.log), "Sqrt": _unary(jnp.sqrt),
    "Rsqrt": _unary(lax.rsqrt), "Tanh": _unary(jnp.tanh), "Erf": _unary(jax.scipy.special.erf), "Erfc": _unary(jax.scipy.special.erfc),
    "Sigmoid": _unary(jax.nn.sigmoid), "Neg": _unary(jnp.negative), "Abs": _unary(jnp.abs),
    "Sin": _unary(jnp.sin), "Cos": _unary(jnp.cos), "Floor": _unary(jnp.floor), "Ceil": _unary(jnp.ceil),
    "Sign": _unary(jnp.sign), "Square": _unary(jnp.square), "Log1p": _unary(jnp.log1p),
    "Reciprocal": _unary(jnp.reciprocal), "LogicalNot": _unary(jnp.logical_not), "GeLU": _gelu,
    "Add": _binary(jnp.add), "Sub": _binary(jnp.subtract), "Mul": _binary(jnp.multiply),
    "RealDiv": _binary(jnp.divide), "Div": _binary(jnp.divide), "Divs": _binary(jnp.divide),
    "Muls": _binary(jnp.multiply), "Adds": _binary(jnp.add),
    "Maximum": _binary(jnp.maximum), "Minimum": _binary(jnp.minimum), "Pow": _binary(jnp.power),
    "Equal": _binary(jnp.equal), "NotEqual": _binary(jnp.not_equal), "Less": _binary(jnp.less),
    "LessEqual": _binary(jnp.less_equal), "Greater": _binary(jnp.greater),
    "GreaterEqual": _binary(jnp.greater_equal), "LogicalAnd": _binary(jnp.logical_and),
    "LogicalOr": _binary(jnp.logical_or),
    "Select": lambda a, k: jnp.where(a[0], a[1], a[2]),
}
