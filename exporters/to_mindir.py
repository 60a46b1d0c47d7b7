"""MINDIR emitter: ``ir.Graph`` -> a ``mind_ir.ModelProto`` file that MindSpore 2.10 loads.

The file is the minimal form MindSpore's loader accepts: ``ir_version`` "1.1",
``mind_ir_version`` 3, ``little_endian``; parameters embedded as ``<graph>:<dotted name>``
with ``ref_key``; one graph input per network input; ``Constant`` nodes for scalar, tuple and
tensor arguments; one node per MindSpore primitive (op_type ``REF::<Prim>:<n>``, the primitive
listed in ``ModelProto.primitives``); one output (a ``MakeTuple`` for several).
Argument order and attribute names follow what MindSpore 2.10 itself exports: operators defined
as primitive functions (MatMul, BiasAdd, ReduceMean, ...) take every argument as an input;
Conv2D, MaxPool and Pad are classic primitives whose arguments are primitive attributes.

``RULES`` maps each jaxpr primitive to a function ``rule(emitter, node) -> output name`` (built from
op_table.TABLE's MINDIR column); the graph builder they write through is ``mindir_emitter.Emitter``.
A form of a primitive MINDIR has no op for (a layout, a padding) is refused through ``rules.walk``.

Dynamic shapes are written as MindSpore 2.10 writes them for ``Tensor(shape=[None, 3], ...)``
inputs: every unknown dim is -1 in the inputs', nodes' and outputs' shapes (no other attribute
changes); a Reshape with one unknown dim gets -1 there, a BroadcastTo keeps an input's dim with
-1; any other shape argument is computed as MindSpore does for ``x.shape`` arithmetic:
``Shape(input)``, ``TupleGetItem``, ``ScalarMul``/``ScalarAdd``/``ScalarFloorDiv``/``ScalarMod``
and a ``MakeTuple`` of the scalars.

>>> write(capture(net, x), "net.mindir")           # doctest: +SKIP
"""
from __future__ import annotations

import numpy as np

from . import ir
from .mindir_crypto import write_model
from .mindir_emitter import CLASSIC, A, Emitter, assign_updates, load_updated, spec
from .mindir_emitter import output_of as _out
from .mindir_nn import conv, dot_general, gather, max_pool, sum_pool
from .mindir_format import TYPE_IDS, encode_tensor
from .rules import check_supported, rules_for, walk
from msjax._proto import mind_ir_pb2 as pb
from msjax.common import dtype as mstype
from msjax.errors import ExportError, UnsupportedOpError

__all__ = ["write", "to_model_proto", "RULES"]


# ================================================================ rules
def _unary(prim):
    def rule(e, node):
        return e.op(prim, [e.ref(node.inputs[0])], *_out(node))
    return rule


def _binary(prim):
    def rule(e, node):
        return e.op(prim, [e.ref(n) for n in node.inputs], *_out(node))
    return rule


def _integer_pow(e, node):
    x = e.ref(node.inputs[0])
    y = node.params["y"]
    if y == 2:
        return e.op("Square", [x], *_out(node))
    return e.op("Pow", [x, e.tensor(np.asarray(y, e.dtype(node.inputs[0])))], *_out(node))


def _convert(e, node):
    shape, dtype = _out(node)
    target = mstype.from_numpy(dtype)
    if target not in TYPE_IDS:
        raise UnsupportedOpError(f"cannot cast to {target} in MINDIR")
    return e.op("Cast", [e.ref(node.inputs[0]), e.const(TYPE_IDS[target])], shape, dtype)


def _copy(e, node):
    # an output that is an input/parameter as is: Depend(x, x) is MindSpore's identity node
    x = e.ref(node.inputs[0])
    return e.op("Depend", [x, x], *_out(node), kind=CLASSIC, attrs={"side_effect_propagate": 1})


def _reshape(e, node):
    shape, dtype = _out(node)
    if node.params.get("dimensions") not in (None, ()):
        raise UnsupportedOpError("reshape with dimensions is not supported")
    return e.op("Reshape", [e.ref(node.inputs[0]), e.reshape_dims(shape)], shape, dtype)


def _squeeze(e, node):
    shape, dtype = _out(node)
    return e.op("Reshape", [e.ref(node.inputs[0]), e.reshape_dims(shape)], shape, dtype)


def _broadcast_in_dim(e, node):
    shape, dtype = _out(node)
    src = node.inputs[0]
    x, in_shape = e.ref(src), e.shape(src)
    aligned = [1] * len(shape)
    for axis, dim in zip(node.params["broadcast_dimensions"], in_shape):
        aligned[axis] = dim
    aligned = tuple(aligned)
    if aligned != in_shape:
        x = e.op("Reshape", [x, e.reshape_dims(aligned)], aligned, dtype)
    if aligned != tuple(shape):
        x = e.op("BroadcastTo", [x, e.broadcast_dims(shape, aligned)], shape, dtype)
    elif aligned == in_shape:
        x = e.op("Reshape", [x, e.reshape_dims(aligned)], aligned, dtype)
    return x


def _transpose(e, node):
    perm = tuple(int(p) for p in node.params["permutation"])
    return e.op("Transpose", [e.ref(node.inputs[0]), e.const(perm)], *_out(node))


def _reduce(prim):
    extra = (False,) if prim == "ReduceSum" else ()       # ReduceSum's skip_mode argument

    def rule(e, node):
        axes = tuple(int(a) for a in node.params["axes"])
        return e.op(prim, [e.ref(node.inputs[0]), e.const(axes), e.const(False),
                           *[e.const(v) for v in extra]], *_out(node))
    return rule


def _select_n(e, node):
    pred, *cases = node.inputs
    if len(cases) != 2 or e.dtype(pred) != np.bool_:
        raise UnsupportedOpError("select_n needs a boolean predicate and 2 cases")
    shape, dtype = _out(node)
    p = e.ref(pred)
    if e.shape(pred) != shape:
        pred_shape = e.shape(pred)
        aligned = (1,) * (len(shape) - len(pred_shape)) + pred_shape
        p = e.op("BroadcastTo", [p, e.broadcast_dims(shape, aligned)], shape, np.bool_)
    return e.op("Select", [p, e.ref(cases[1]), e.ref(cases[0])], shape, dtype)


def _concatenate(e, node):
    parts = [e.ref(n) for n in node.inputs]
    abstract = A(name="shape", type=A.TUPLE,
                 values=[A(type=A.TENSORS, tensors=[spec(e.shape(n), e.dtype(n))])
                         for n in node.inputs])
    tup = e.op("MakeTuple", parts, None, None, kind=CLASSIC, abstract=abstract)
    return e.op("Concat", [tup, e.const(int(node.params["dimension"]))], *_out(node))


def _slice(e, node):
    start, limit = tuple(node.params["start_indices"]), tuple(node.params["limit_indices"])
    strides = tuple(node.params.get("strides") or (1,) * len(start))
    return _strided(e, node.inputs[0], start, limit, strides, *_out(node))


def _strided(e, x, start, limit, strides, shape, dtype):
    """``StridedSlice(x, begin, end, strides, 0, 0, 0, 0, 0)``, as MindSpore writes ``x[a:b:c]``."""
    zero = e.const(0)
    if not ir.is_static(start + limit + strides):
        # a slice to a symbolic dim's end: end_mask bit with end 0, as MindSpore writes x[:, :1]
        full = e.shape(x)
        to_end = [i for i, v in enumerate(limit) if isinstance(v, ir.Dim) and v == full[i]]
        limit = tuple(0 if i in to_end else v for i, v in enumerate(limit))
        end_mask = e.const(sum(1 << i for i in to_end)) if to_end else zero
        return e.op("StridedSlice", [e.ref(x), e.dims(start), e.dims(limit), e.dims(strides),
                                     zero, end_mask, zero, zero, zero], shape, dtype)
    start, limit, strides = (tuple(int(v) for v in t) for t in (start, limit, strides))
    return e.op("StridedSlice", [e.ref(x), e.const(start), e.const(limit), e.const(strides),
                                 zero, zero, zero, zero, zero], shape, dtype)


def _split(e, node):
    """``jnp.split``: one StridedSlice per piece, as MindSpore writes ``ops.split(x, [sizes])``."""
    x, axis = node.inputs[0], int(node.params["axis"])
    full, offset, pieces = e.shape(x), 0, []
    for value in node.outputs:
        size = value.shape[axis]
        start = tuple(offset if i == axis else 0 for i in range(len(full)))
        limit = tuple(offset + size if i == axis else d for i, d in enumerate(full))
        pieces.append(_strided(e, x, start, limit, (1,) * len(full), tuple(value.shape), np.dtype(value.dtype)))
        offset = offset + size
    return pieces


def _rev(e, node):
    """``jnp.flip``: ReverseV2(x, dims)."""
    dims = tuple(int(d) for d in node.params["dimensions"])
    return e.op("ReverseV2", [e.ref(node.inputs[0]), e.const(dims)], *_out(node))


def _stack(e, node):
    """``jnp.stack``: Stack over a tuple of the inputs (attributes as MindSpore's ``ops.stack``)."""
    shape, dtype = _out(node)
    n, axis = len(node.inputs), int(node.params["axis"]) % len(shape)
    abstract = A(name="shape", type=A.TUPLE,
                 values=[A(type=A.TENSORS, tensors=[spec(e.shape(i), e.dtype(i))]) for i in node.inputs])
    tup = e.op("MakeTuple", [e.ref(i) for i in node.inputs], None, None, kind=CLASSIC, abstract=abstract)
    return e.op("Stack", [tup], shape, dtype, kind=CLASSIC, attrs={"num": n, "axis": axis, "N": n})


def _iota(e, node):
    """``jnp.arange``: the ramp as a constant tensor, as MindSpore writes ``ops.arange``."""
    p = node.params
    shape = tuple(p["shape"])
    if not ir.is_static(shape):
        raise UnsupportedOpError(f"iota of symbolic shape {shape}")
    view = [1] * len(shape)
    view[p["dimension"]] = shape[p["dimension"]]
    ramp = np.arange(shape[p["dimension"]], dtype=np.dtype(p["dtype"])).reshape(view)
    return e.tensor(np.broadcast_to(ramp, shape).copy())


def _static(e, name):
    """The value of ``name`` when it is a constant (possibly cast/broadcast), else None."""
    if name in e.graph.constants:
        return np.asarray(e.graph.constants[name])
    node = e.producers.get(name)
    if node is not None and node.op in ("convert_element_type", "broadcast_in_dim", "reshape") \
            and ir.is_static(node.outputs[0].shape):
        src = _static(e, node.inputs[0])
        if src is not None:
            return np.broadcast_to(src, node.outputs[0].shape).astype(node.outputs[0].dtype)
    return None


def _pad(e, node):
    x, value = node.inputs
    if not ir.is_static([v for c in node.params["padding_config"] for v in c]):
        raise UnsupportedOpError(f"padding {node.params['padding_config']} depends on a symbolic input dim")
    config = [tuple(int(v) for v in c) for c in node.params["padding_config"]]
    fill = _static(e, value)
    if fill is None or np.any(np.asarray(fill) != 0) or any(c[2] or c[0] < 0 or c[1] < 0 for c in config):
        raise UnsupportedOpError("only non-negative zero padding (no interior) exports to MINDIR")
    paddings = tuple((c[0], c[1]) for c in config)
    return e.op("Pad", [e.ref(x)], *_out(node), attrs={"paddings": paddings}, kind=CLASSIC)


#: jaxpr primitive -> rule(emitter, node) -> output name; the primitives and MINDIR names are
#: op_table.TABLE's MINDIR column
RULES = rules_for("MINDIR", {"unary": _unary, "binary": _binary, "reduce": _reduce}, {
    "integer_pow": _integer_pow, "convert_element_type": _convert, "copy": _copy, "reshape": _reshape,
    "squeeze": _squeeze, "broadcast_in_dim": _broadcast_in_dim, "transpose": _transpose,
    "select_n": _select_n, "concatenate": _concatenate, "dot_general": dot_general,
    "conv_general_dilated": conv, "reduce_window_max": max_pool, "reduce_window_sum": sum_pool,
    "slice": _slice, "split": _split, "rev": _rev, "stack": _stack, "iota": _iota, "pad": _pad, "gather": gather,
})


# ================================================================ model
def to_model_proto(graph: ir.Graph) -> pb.ModelProto:
    """Translate ``graph`` to a ModelProto; an ``UnsupportedOpError`` lists every primitive MINDIR has
    no rule for, or else every node whose form of its primitive MINDIR cannot write."""
    check_supported(graph, RULES, "MINDIR", updates=True)
    e = Emitter(graph)
    for name, array in graph.parameters.items():
        array = np.asarray(array)
        t = encode_tensor(array, f"{e.gname}:{name}")
        t.ref_key = name
        t.compression_type = pb.TensorProto.NO_COMPRESSION
        e.g.parameter.append(t)
        e.names[name] = t.name
    for value in graph.inputs:
        full = f"{e.gname}:{value.name}"
        e.g.input.add(name=full, tensor=[spec(value.shape, value.dtype)])
        e.names[value.name] = full
    monad = load_updated(e) if graph.updates else None

    def emit_node(node):
        out = RULES[node.op](e, node)              # a rule of a several-output node returns a list
        outs = out if isinstance(out, list) else [out]
        if len(outs) != len(node.outputs):
            raise UnsupportedOpError(f"{node.op} with {len(node.outputs)} outputs")
        e.names.update((v.name, name) for v, name in zip(node.outputs, outs))

    walk(graph, "MINDIR", emit_node, lambda node: e.names.update((v.name, "<refused>") for v in node.outputs))
    outs = [e.ref(v.name) for v in graph.outputs]
    if monad is not None:
        monad = assign_updates(e, monad)
    if len(outs) == 1:
        v = graph.outputs[0]
        out = outs[0]
        if monad is not None:
            out = e.op("Depend", [out, monad], v.shape, v.dtype, kind=CLASSIC,
                       attrs={"side_effect_propagate": 1})
        e.g.output.add(name=out, tensor=[spec(v.shape, v.dtype)])
    else:
        abstract = A(name="shape", type=A.TUPLE,
                     values=[A(type=A.TENSORS, tensors=[spec(v.shape, v.dtype)]) for v in graph.outputs])
        tup = e.op("MakeTuple", outs, None, None, kind=CLASSIC, abstract=abstract)
        if monad is not None:
            tup = e.op("Depend", [tup, monad], None, None, kind=CLASSIC, abstract=abstract,
                       attrs={"side_effect_propagate": 1})
        e.g.output.add(name=tup)
    return e.model


def write(graph: ir.Graph, file_name, *, enc_key=None, enc_mode="AES-GCM", **options) -> None:
    """Write ``graph`` as a MINDIR file at ``file_name`` (the caller adds the suffix).

    With ``enc_key`` the whole serialized ModelProto is encrypted as MindSpore does
    (``enc_mode`` "AES-GCM", "AES-CBC", "SM4-CBC" or ``f(bytes, key) -> bytes``; see
    ``msjax_exporters.mindir_crypto``).
    """
    if options:
        raise ExportError(f"MINDIR export takes no options {sorted(options)}")
    write_model(file_name, to_model_proto(graph).SerializeToString(), enc_key, enc_mode)
