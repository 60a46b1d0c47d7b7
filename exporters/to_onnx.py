"""ONNX emitter: ``ir.Graph`` -> ``.onnx`` file, one rule per jaxpr primitive in ``RULES``.

A rule is ``rule(ctx, node, ins, outs)``: ``ins`` are the ONNX names of the node's inputs,
``outs`` the names its results must be written to. Parameters become initializers under their
dotted names with ``raw_data`` equal to the checkpoint bytes (as in MindSpore's ONNX export);
the graph input of a one-input network is named after ``construct``'s argument ("x").

Dynamic shapes: a graph captured from an input with unknown dims (``Tensor(shape=[None, 3],
dtype=...)``) has symbolic dims (``ir.Dim``); they become ``dim_param`` in the graph's inputs and
outputs ("batch", "4*batch"), and every shape an op needs (Reshape, Expand, Slice ...) is either
constant (-1 for a Reshape's one unknown dim, 1 for an Expand dim the input already has) or
computed at run time from the inputs' ``Shape``. (MindSpore 2.10 itself refuses dynamic-shape
ONNX export; msjax writes it.)

>>> write(capture(net, x), "net.onnx", opset_version=18, dynamic_batch=True)   # doctest: +SKIP
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from . import ir
from .onnx_context import Context, onnx_type
from .onnx_flow import cond, while_loop
from .onnx_nn import conv, dot_general, gather, pool
from .op_table import SYMBOLIC
from .protofile import write_bytes
from .rules import check_supported, rules_for, walk
from .window import onnx_pads
from msjax import __version__
from msjax.errors import ExportError, UnsupportedOpError

__all__ = ["RULES", "SYMBOLIC_RULES", "DEFAULT_OPSET", "to_model", "write"]

#: the opset written when ``opset_version`` is not given (onnxruntime 1.32 runs it fully)
DEFAULT_OPSET = 18
_MIN_OPSET = 13
_INT64_MAX = np.iinfo(np.int64).max
_INT64_MIN = np.iinfo(np.int64).min


# ------------------------------------------------------------------------------------ rules
def _simple(op_type):
    def rule(ctx, node, ins, outs):
        ctx.op(op_type, ins, outs[0])
    return rule


def _logic(bool_op, bitwise_op):
    def rule(ctx, node, ins, outs):
        is_bool = node.outputs[0].dtype == np.bool_
        if not is_bool and ctx.opset < 18:
            raise UnsupportedOpError(f"integer {node.op} needs opset 18 ({bitwise_op})")
        ctx.op(bool_op if is_bool else bitwise_op, ins, outs[0])
    return rule


def _ne(ctx, node, ins, outs):
    ctx.op("Not", [ctx.op("Equal", ins)], outs[0])


def _rsqrt(ctx, node, ins, outs):
    ctx.op("Reciprocal", [ctx.op("Sqrt", ins)], outs[0])


def _square(ctx, node, ins, outs):
    ctx.op("Mul", [ins[0], ins[0]], outs[0])


def _log1p(ctx, node, ins, outs):
    one = ctx.const(1, node.outputs[0].dtype)
    ctx.op("Log", [ctx.op("Add", [ins[0], one])], outs[0])


def _expm1(ctx, node, ins, outs):
    one = ctx.const(1, node.outputs[0].dtype)
    ctx.op("Sub", [ctx.op("Exp", ins), one], outs[0])


def _exp2(ctx, node, ins, outs):
    ctx.op("Pow", [ctx.const(2, node.outputs[0].dtype), ins[0]], outs[0])


def _integer_pow(ctx, node, ins, outs):
    y, x = node.params["y"], ins[0]
    if y == 0:
        ctx.op("Expand", [ctx.const(1, node.outputs[0].dtype), ctx.dims(node.outputs[0].shape)], outs[0])
        return
    acc = x
    for _ in range(abs(y) - 1):
        acc = ctx.op("Mul", [acc, x])
    if y < 0:
        ctx.op("Reciprocal", [acc], outs[0])
    else:
        ctx.op("Identity", [acc], outs[0])


def _rem(ctx, node, ins, outs):
    ctx.op("Mod", ins, outs[0], fmod=1)


def _round(ctx, node, ins, outs):
    if int(node.params.get("rounding_method", 1)) != 1:
        raise UnsupportedOpError("only round-half-to-even (jnp.round) maps to ONNX Round")
    ctx.op("Round", ins, outs[0])


def _convert(ctx, node, ins, outs):
    ctx.op("Cast", ins, outs[0], to=onnx_type(node.params["new_dtype"]))


def _reshape(ctx, node, ins, outs):
    if node.params.get("dimensions") is not None:
        raise UnsupportedOpError("reshape with dimensions is not supported")
    ctx.op("Reshape", [ins[0], ctx.reshape_target(node.outputs[0].shape)], outs[0])


def _squeeze(ctx, node, ins, outs):
    ctx.op("Squeeze", [ins[0], ctx.ints(node.params["dimensions"])], outs[0])


def _broadcast_in_dim(ctx, node, ins, outs):
    shape, dims = node.outputs[0].shape, tuple(node.params["broadcast_dimensions"])
    missing = [i for i in range(len(shape)) if i not in dims]
    x = ctx.op("Unsqueeze", [ins[0], ctx.ints(missing)]) if missing else ins[0]
    if ir.is_static(shape):
        ctx.op("Expand", [x, ctx.shape(shape, "expand")], outs[0])
        return
    aligned = [1] * len(shape)           # Expand keeps an input dim where the target says 1
    for axis, d in zip(dims, ctx.values[node.inputs[0]].shape):
        aligned[axis] = d
    target = [1 if isinstance(d, ir.Dim) and aligned[i] == d else d for i, d in enumerate(shape)]
    ctx.op("Expand", [x, ctx.dims(target)], outs[0])


def _transpose(ctx, node, ins, outs):
    ctx.op("Transpose", ins, outs[0], perm=list(node.params["permutation"]))


def _concatenate(ctx, node, ins, outs):
    ctx.op("Concat", ins, outs[0], axis=int(node.params["dimension"]))


def _split(ctx, node, ins, outs):
    ctx.op("Split", [ins[0], ctx.dims(node.params["sizes"])], outs, axis=int(node.params["axis"]))


def _slice(ctx, node, ins, outs):
    starts = list(node.params["start_indices"])
    limits = list(node.params["limit_indices"])
    steps = list(node.params["strides"] or [1] * len(starts))
    if not ir.is_static(starts + limits + steps):
        full = ctx.values[node.inputs[0]].shape            # a slice to a dim's end: to INT64_MAX
        limits = [_INT64_MAX if isinstance(lim, ir.Dim) and lim == full[i] else lim for i, lim in enumerate(limits)]
        axes = list(range(len(starts)))
        ctx.op("Slice", [ins[0], ctx.dims(starts), ctx.dims(limits), ctx.ints(axes), ctx.dims(steps)], outs[0])
        return
    if ctx.batch is not None and starts and starts[0] == 0 and limits[0] == ctx.batch and steps[0] == 1:
        limits[0] = _INT64_MAX
    axes = list(range(len(starts)))
    ctx.op("Slice", [ins[0], ctx.ints(starts), ctx.ints(limits), ctx.ints(axes), ctx.ints(steps)], outs[0])


def _rev(ctx, node, ins, outs):
    """``jnp.flip``: a Slice that walks the reversed axes backwards (step -1, from the last element)."""
    dims = [int(d) for d in node.params["dimensions"]]
    if not dims:
        ctx.op("Identity", ins, outs[0])
        return
    n = len(dims)
    ctx.op("Slice", [ins[0], ctx.ints([-1] * n), ctx.ints([_INT64_MIN] * n), ctx.ints(dims), ctx.ints([-1] * n)],
           outs[0])


def _stack(ctx, node, ins, outs):
    """``jnp.stack``: each input gets the new axis (Unsqueeze), then one Concat along it."""
    axis = int(node.params["axis"]) % len(node.outputs[0].shape)
    ctx.op("Concat", [ctx.op("Unsqueeze", [x, ctx.ints([axis])]) for x in ins], outs[0], axis=axis)


def _tile(ctx, node, ins, outs):
    """``jnp.tile``: ONNX Tile with jax's ``reps``, one per input dim."""
    ctx.op("Tile", [ins[0], ctx.ints([int(r) for r in node.params["reps"]])], outs[0])


def _pad(ctx, node, ins, outs):
    config = node.params["padding_config"]
    if any(interior for _, _, interior in config):
        raise UnsupportedOpError("interior padding has no ONNX equivalent")
    pads = onnx_pads((lo, hi) for lo, hi, _ in config)
    ctx.op("Pad", [ins[0], ctx.dims(pads), ins[1]], outs[0], mode="constant")


def _iota(ctx, node, ins, outs):
    p = node.params
    shape = tuple(p["shape"])
    if not ir.is_static(shape):
        raise UnsupportedOpError(f"iota of symbolic shape {shape}")
    ramp = np.arange(shape[p["dimension"]], dtype=np.dtype(p["dtype"]))
    view = [1] * len(shape)
    view[p["dimension"]] = shape[p["dimension"]]
    ctx.op("Identity", [ctx.const(np.broadcast_to(ramp.reshape(view), shape).copy())], outs[0])


def _select_n(ctx, node, ins, outs):
    if len(ins) != 3:
        raise UnsupportedOpError(f"select_n with {len(ins) - 1} cases (only 2 map to Where)")
    which = ins[0]
    if np.dtype(ctx.values[node.inputs[0]].dtype) != np.bool_:
        which = ctx.op("Cast", [which], to=TensorProto.BOOL)
    ctx.op("Where", [which, ins[2], ins[1]], outs[0])


def _clamp(ctx, node, ins, outs):
    lo, x, hi = ins
    ctx.op("Max", [ctx.op("Min", [x, hi]), lo], outs[0])


def _reducer(op_type):
    def rule(ctx, node, ins, outs):
        axes = list(node.params["axes"])
        if not axes:
            ctx.op("Identity", ins, outs[0])
        else:
            ctx.reduce(op_type, ins[0], axes, outs[0])
    return rule


def _arg(op_type):
    def rule(ctx, node, ins, outs):
        (axis,) = node.params["axes"]
        index = ctx.op(op_type, ins, axis=int(axis), keepdims=0)
        ctx.op("Cast", [index], outs[0], to=onnx_type(node.params["index_dtype"]))
    return rule


def _cumsum(ctx, node, ins, outs):
    ctx.op("CumSum", [ins[0], ctx.const(np.int64(node.params["axis"]))], outs[0],
           reverse=int(bool(node.params["reverse"])))


def _dim_as_value(ctx, node, ins, outs):
    """A (symbolic) dim as a scalar value (``x.shape[0]`` used in arithmetic, ``mean`` over it)."""
    scalar = ctx.op("Squeeze", [ctx.dim(node.params["dim"]), ctx.ints([0])])
    ctx.op("Cast", [scalar], outs[0], to=onnx_type(node.outputs[0].dtype))


#: jaxpr primitive -> rule writing its ONNX node(s); the primitives and ONNX op types are
#: op_table.TABLE's ONNX column
RULES = rules_for("ONNX", {"unary": _simple, "binary": _simple, "reduce": _reducer, "arg": _arg}, {
    "ne": _ne, "rsqrt": _rsqrt, "square": _square, "log1p": _log1p, "expm1": _expm1, "exp2": _exp2,
    "integer_pow": _integer_pow, "rem": _rem, "round": _round,
    "and": _logic("And", "BitwiseAnd"), "or": _logic("Or", "BitwiseOr"),
    "xor": _logic("Xor", "BitwiseXor"), "not": _logic("Not", "BitwiseNot"),
    "convert_element_type": _convert, "reshape": _reshape, "squeeze": _squeeze,
    "broadcast_in_dim": _broadcast_in_dim, "transpose": _transpose, "concatenate": _concatenate,
    "split": _split, "slice": _slice, "rev": _rev, "stack": _stack, "tile": _tile, "pad": _pad, "iota": _iota, "select_n": _select_n,
    "clamp": _clamp, "cumsum": _cumsum, "dot_general": dot_general, "conv_general_dilated": conv,
    "reduce_window_max": pool("max"), "reduce_window_sum": pool("sum"), "gather": gather,
    "dim_as_value": _dim_as_value, "cond": cond, "while": while_loop,
})
#: rules for primitives that only graphs with symbolic dims contain (tests/test_export_dynamic.py)
SYMBOLIC_RULES = {prim: RULES.pop(prim) for prim in sorted(SYMBOLIC & set(RULES))}


# ------------------------------------------------------------------------------------ writer
def _value_info(value, batch):
    shape = [str(d) if isinstance(d, ir.Dim) else d for d in value.shape]     # symbolic: dim_param
    if batch is not None and shape and shape[0] == batch:
        shape[0] = "batch"
    return helper.make_tensor_value_info(value.name, onnx_type(value.dtype), shape)


def to_model(graph, opset_version=DEFAULT_OPSET, dynamic_batch=False):
    """The ``onnx.ModelProto`` for ``graph`` (checked with ``onnx.checker``, full check)."""
    if not _MIN_OPSET <= int(opset_version) <= onnx.defs.onnx_opset_version():
        raise ExportError(f"ONNX export: opset_version {opset_version} is outside the supported range "
                          f"{_MIN_OPSET}..{onnx.defs.onnx_opset_version()}")
    rules = {**RULES, **SYMBOLIC_RULES} if graph.is_dynamic else RULES
    check_supported(graph, rules, "ONNX")
    ctx = Context(graph, int(opset_version), dynamic_batch)
    ctx.rules = rules                     # control flow writes its sub-graphs with them
    used = {name for node in graph.nodes for name in node.inputs}
    for name, array in list(graph.parameters.items()) + list(graph.constants.items()):
        if name in used:                  # ascontiguousarray makes a 0-d array 1-d: keep its rank
            array = np.ascontiguousarray(array).reshape(np.shape(array))
            ctx.initializers.append(numpy_helper.from_array(array, name))

    def emit_node(node):
        ctx.source = node.source
        rules[node.op](ctx, node, list(node.inputs), [v.name for v in node.outputs])

    walk(graph, "ONNX", emit_node)
    onnx_graph = helper.make_graph(ctx.nodes, graph.name, [_value_info(v, ctx.batch) for v in graph.inputs],
                                   [_value_info(v, ctx.batch) for v in graph.outputs], ctx.initializers)
    opset = [helper.make_opsetid("", ctx.opset)]
    model = helper.make_model(onnx_graph, opset_imports=opset, producer_name="msjax",
                              ir_version=helper.find_min_ir_version_for(opset))
    model.producer_version = __version__
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"ONNX export of {graph.name} made an invalid model: {exc}") from exc
    return model


def write(graph, file_name, opset_version=DEFAULT_OPSET, dynamic_batch=False, enc_key=None, enc_mode=None):
    """Write ``graph`` as an ONNX file; ``enc_mode`` may be a function ``(bytes, key) -> bytes``.

    As in MindSpore, ONNX supports only customized encryption (a callable ``enc_mode``).
    """
    data = to_model(graph, opset_version, dynamic_batch).SerializeToString()
    if enc_key is not None:
        if not callable(enc_mode):
            raise ExportError(f"ONNX export: only customized encryption (a callable enc_mode) is supported, "
                              f"got enc_mode={enc_mode!r}")
        data = enc_mode(data, enc_key)
    write_bytes(file_name, data)
