"""AIR emitter: ``ir.Graph`` -> the Ascend graph engine's IR (a serialized ge_ir ``ModelDef``).

The file is exactly what MindSpore's AIR export writes on Ascend (``ge::Model::SaveToFile``):
one serialized ``ModelDef`` holding one ``GraphDef``, no header. Graph inputs are ``Data`` ops
(attr ``index``), parameters are ``Const`` ops named by their dotted names with the tensor in
attr ``value``, and ``NetOutput`` collects the outputs. ``RULES`` maps each jaxpr primitive to
graph-engine ops (``Conv2D``, ``MatMulV2``, ``BiasAdd``, ``Relu``, ``MaxPool``, ...), with the
graph engine's attribute names, built from op_table.TABLE's AIR column; a new primitive is one row
there (and a rule here unless its kind has a factory) and one line in the tests. The graph builder
the rules write through is ``air_emitter.Emitter``.

>>> write(capture(net, x), "lenet5.air")             # doctest: +SKIP
"""
from __future__ import annotations

import numpy as np

from . import ir
from .air_emitter import Emitter, set_attr
from .air_types import ge_dtype
from .protofile import write_bytes
from .rules import check_supported, rules_for
from msjax._proto import ge_ir_pb2
from msjax.errors import ExportError, UnsupportedOpError

__all__ = ["write", "to_model", "RULES"]


def _fail(node, why):
    """Refuse ``node``: a form of its primitive the graph engine has no op for (``rules.walk``
    reports every refused node at once)."""
    raise UnsupportedOpError(why)


# ------------------------------------------------------------------ rules
def _out(node, i=0):
    v = node.outputs[i]
    return (v.shape, v.dtype)


def _unary(op_type):
    def rule(em, node):
        return em.op(op_type, [em.ref(node.inputs[0])], [_out(node)], input_names=["x"])
    return rule


def _binary(op_type):
    def rule(em, node):
        a, b = (em.ref(n) for n in node.inputs)
        return em.op(op_type, [a, b], [_out(node)], input_names=["x1", "x2"])
    return rule


def _add(em, node):
    """``add``; ``x + broadcast(bias)`` over the channel axis becomes ``BiasAdd``."""
    for x, b in (node.inputs, node.inputs[::-1]):
        src = em.producer(b)
        xv = em.ref(x)
        if (src is not None and src.op == "broadcast_in_dim" and em.uses[b] == 1
                and len(src.params["broadcast_dimensions"]) == 1 and xv.shape == node.outputs[0].shape
                and len(xv.shape) in (2, 4) and tuple(src.params["broadcast_dimensions"]) == (1,)
                and len(em.ref(src.inputs[0]).shape) == 1):
            return em.op("BiasAdd", [xv, em.ref(src.inputs[0])], [_out(node)],
                         {"data_format": "NCHW"}, input_names=["x", "bias"])
    return _binary("Add")(em, node)


def _max(em, node):
    """``max(x, 0)`` is ``Relu``; any other ``max`` is ``Maximum``."""
    for x, c in (node.inputs, node.inputs[::-1]):
        value = em.constant_value(c)
        if value is not None and value.size == 1 and float(value.reshape(())) == 0.0 \
                and em.ref(x).shape == node.outputs[0].shape:
            return em.op("Relu", [em.ref(x)], [_out(node)], input_names=["x"])
    return _binary("Maximum")(em, node)


def _div(em, node):
    op_type = "RealDiv" if np.issubdtype(node.outputs[0].dtype, np.inexact) else "TruncateDiv"
    return _binary(op_type)(em, node)


def _integer_pow(em, node):
    y = node.params["y"]
    if y == 2:
        return _unary("Square")(em, node)
    x = em.ref(node.inputs[0])
    return em.op("Pow", [x, em.const(np.asarray(y, x.dtype))], [_out(node)], input_names=["x1", "x2"])


def _exp2(em, node):
    x = em.ref(node.inputs[0])
    return em.op("Pow", [em.const(np.asarray(2, x.dtype)), x], [_out(node)], input_names=["x1", "x2"])


def _reshape(em, node):
    x = em.ref(node.inputs[0])
    shape = node.outputs[0].shape
    if x.shape == tuple(shape):
        return em.op("Identity", [x], [_out(node)], input_names=["x"])
    return em.op("Reshape", [x, em.ints(shape)], [_out(node)], {"axis": 0, "num_axes": -1},
                 input_names=["x", "shape"])


def _broadcast_in_dim(em, node):
    """``Reshape`` to the target rank (1 in the new axes), then ``BroadcastTo`` if sizes differ."""
    x = em.ref(node.inputs[0])
    out_shape = tuple(node.outputs[0].shape)
    dims = node.params["broadcast_dimensions"]
    mid = [1] * len(out_shape)
    for src_axis, dst_axis in enumerate(dims):
        mid[dst_axis] = x.shape[src_axis]
    if tuple(mid) != x.shape:
        (x,) = em.op("Reshape", [x, em.ints(mid)], [(tuple(mid), x.dtype)], {"axis": 0, "num_axes": -1},
                     input_names=["x", "shape"])
    if tuple(mid) == out_shape:
        reshaped = x is not em.ref(node.inputs[0])
        return [x] if reshaped else em.op("Identity", [x], [_out(node)], input_names=["x"])
    return em.op("BroadcastTo", [x, em.ints(out_shape)], [_out(node)], input_names=["x", "shape"])


def _transpose(em, node):
    x = em.ref(node.inputs[0])
    return em.op("Transpose", [x, em.ints(node.params["permutation"])], [_out(node)],
                 input_names=["x", "perm"])


def _reduce(op_type):
    def rule(em, node):
        x = em.ref(node.inputs[0])
        return em.op(op_type, [x, em.ints(node.params["axes"])], [_out(node)], {"keep_dims": False},
                     input_names=["x", "axes"])
    return rule


def _argminmax(op_type):
    def rule(em, node):
        (axis,) = node.params["axes"]
        x = em.ref(node.inputs[0])
        attrs = {"dtype": ge_dtype(node.params["index_dtype"])}
        return em.op(op_type, [x, em.ints([axis])], [_out(node)], attrs, input_names=["x", "dimension"])
    return rule


def _cast(em, node):
    return em.op("Cast", [em.ref(node.inputs[0])], [_out(node)],
                 {"dst_type": ge_dtype(node.params["new_dtype"]), "truncate": False}, input_names=["x"])


def _select_n(em, node):
    if len(node.inputs) != 3:
        _fail(node, "select_n with more than two cases")
    pred, false_case, true_case = (em.ref(n) for n in node.inputs)
    if pred.dtype != np.bool_:
        _fail(node, "select_n with an integer predicate")
    return em.op("Select", [pred, true_case, false_case], [_out(node)],
                 input_names=["condition", "x1", "x2"])


def _clamp(em, node):
    lo, x, hi = (em.ref(n) for n in node.inputs)
    return em.op("ClipByValue", [x, lo, hi], [_out(node)],
                 input_names=["x", "clip_value_min", "clip_value_max"])


def _concatenate(em, node):
    xs = [em.ref(n) for n in node.inputs]
    axis = em.const(np.asarray(node.params["dimension"], np.int32))
    return em.op("ConcatV2", xs + [axis], [_out(node)], {"N": len(xs)},
                 input_names=[f"x{i}" for i in range(len(xs))] + ["concat_dim"])


def _pad(em, node):
    x, value = (em.ref(n) for n in node.inputs)
    config = node.params["padding_config"]
    if any(interior or lo < 0 or hi < 0 for lo, hi, interior in config):
        _fail(node, "interior or negative padding")
    pads = em.ints([p for lo, hi, _ in config for p in (lo, hi)])
    return em.op("PadV3", [x, pads, value], [_out(node)], {"mode": "constant", "paddings_contiguous": True},
                 input_names=["x", "paddings", "constant_values"])


def _slice(em, node):
    x = em.ref(node.inputs[0])
    start, limit = node.params["start_indices"], node.params["limit_indices"]
    strides = node.params.get("strides") or (1,) * len(start)
    return em.op("StridedSlice", [x, em.ints(start), em.ints(limit), em.ints(strides)], [_out(node)],
                 {"begin_mask": 0, "end_mask": 0, "ellipsis_mask": 0, "new_axis_mask": 0,
                  "shrink_axis_mask": 0}, input_names=["x", "begin", "end", "strides"])


def _cumsum(em, node):
    x = em.ref(node.inputs[0])
    return em.op("Cumsum", [x, em.ints([node.params["axis"]])], [_out(node)],
                 {"exclusive": False, "reverse": bool(node.params.get("reverse", False))},
                 input_names=["x", "axis"])


def _conv(em, node):
    p = node.params
    lhs, rhs, out = p["dimension_numbers"]
    if len(node.outputs[0].shape) != 4 or (lhs, rhs, out) != ((0, 1, 2, 3),) * 3:
        _fail(node, "only 2-d NCHW/OIHW convolutions are supported")
    if tuple(p["lhs_dilation"]) != (1, 1) or p["batch_group_count"] != 1:
        _fail(node, "transposed (lhs-dilated) or batch-grouped convolution")
    x, w = em.ref(node.inputs[0]), em.ref(node.inputs[1])
    (top, bottom), (left, right) = p["padding"]
    attrs = {"strides": [1, 1, *p["window_strides"]], "pads": [top, bottom, left, right],
             "dilations": [1, 1, *p["rhs_dilation"]], "groups": p["feature_group_count"],
             "data_format": "NCHW", "offset_x": 0}
    return em.op("Conv2D", [x, w], [_out(node)], attrs, input_names=["x", "filter"])


def _swapped_last_two(em, name):
    """If ``name`` is a transpose (used once) that swaps the last two axes, its input's name."""
    src = em.producer(name)
    if src is None or src.op != "transpose" or em.uses[name] != 1:
        return None
    perm = tuple(src.params["permutation"])
    n = len(perm)
    if n >= 2 and perm == tuple(range(n - 2)) + (n - 1, n - 2):
        return src.inputs[0]
    return None


def _dot_general(em, node):
    """2-d products -> ``MatMulV2``; leading-batch products -> ``BatchMatMulV2`` (transposes folded)."""
    (lc, rc), (lb, rb) = node.params["dimension_numbers"]
    names = list(node.inputs)
    ranks = [len(em.ref(n).shape) for n in names]
    lr, rr = ranks
    nb = len(lb)
    if len(lc) != 1 or len(rc) != 1 or tuple(lb) != tuple(range(nb)) or tuple(rb) != tuple(range(nb)):
        _fail(node, f"dot_general with dimension numbers {node.params['dimension_numbers']}")
    if nb == 0 and rr == 2 and lr >= 2 and lc[0] == lr - 1:
        pass                                     # (..., k) x (k|n, n|k): broadcast matmul
    elif nb == 0 and lr == 2 and rr == 2:
        pass
    elif not (lr == rr == nb + 2):
        _fail(node, f"dot_general with dimension numbers {node.params['dimension_numbers']}")
    tx1 = lc[0] == lr - 2
    tx2 = rc[0] == rr - 1
    for i, flag in ((0, "tx1"), (1, "tx2")):
        inner = _swapped_last_two(em, names[i])
        if inner is not None:
            names[i] = inner
            if flag == "tx1":
                tx1 = not tx1
            else:
                tx2 = not tx2
    a, b = (em.ref(n) for n in names)
    if lr == 2 and rr == 2:
        return em.op("MatMulV2", [a, b], [_out(node)], {"transpose_x1": tx1, "transpose_x2": tx2,
                                                         "offset_x": 0}, input_names=["x1", "x2"])
    return em.op("BatchMatMulV2", [a, b], [_out(node)], {"adj_x1": tx1, "adj_x2": tx2, "offset_x": 0},
                 input_names=["x1", "x2"])


def _reduce_window_max(em, node):
    p = node.params
    if len(node.outputs[0].shape) != 4 or tuple(p["window_dimensions"][:2]) != (1, 1) \
            or tuple(p["window_strides"][:2]) != (1, 1) or any(d != 1 for d in p["base_dilation"]) \
            or any(d != 1 for d in p["window_dilation"]) or any(p["padding"][i] != (0, 0) for i in (0, 1)):
        _fail(node, "only spatial NCHW max pooling is supported")
    x = em.ref(node.inputs[0])
    ksize, strides = list(p["window_dimensions"]), list(p["window_strides"])
    (top, bottom), (left, right) = p["padding"][2:]
    if (top, bottom, left, right) == (0, 0, 0, 0):
        return em.op("MaxPool", [x], [_out(node)], {"ksize": ksize, "strides": strides, "padding": "VALID",
                                                    "data_format": "NCHW"}, input_names=["x"])
    return em.op("MaxPoolV3", [x], [_out(node)],
                 {"ksize": ksize, "strides": strides, "padding_mode": "CALCULATED",
                  "pads": [top, bottom, left, right], "data_format": "NCHW", "global_pooling": False,
                  "ceil_mode": False}, input_names=["x"])


#: jaxpr primitive -> rule(emitter, node) -> output Refs; the primitives and GE op types are
#: op_table.TABLE's AIR column
RULES = rules_for("AIR", {"unary": _unary, "binary": _binary, "reduce": _reduce, "arg": _argminmax}, {
    "add": _add, "div": _div, "max": _max, "integer_pow": _integer_pow, "exp2": _exp2,
    "reshape": _reshape, "squeeze": _reshape, "expand_dims": _reshape,
    "broadcast_in_dim": _broadcast_in_dim, "transpose": _transpose,
    "convert_element_type": _cast, "select_n": _select_n, "clamp": _clamp,
    "concatenate": _concatenate, "pad": _pad, "slice": _slice, "cumsum": _cumsum,
    "conv_general_dilated": _conv, "dot_general": _dot_general, "reduce_window_max": _reduce_window_max,
})


# ------------------------------------------------------------------ entry points
def to_model(graph: ir.Graph) -> ge_ir_pb2.ModelDef:
    """The ``ModelDef`` for ``graph`` (what ``write`` serializes)."""
    check_supported(graph, RULES, "AIR")
    model = ge_ir_pb2.ModelDef(name=graph.name, version=1)
    model.graph.append(Emitter(graph, RULES).emit())
    # the model attributes ge::Model::Init sets
    for key, value in (("memory_size", 0), ("p2p_memory_size", 0), ("stream_num", 0), ("event_num", 0),
                       ("label_num", 0), ("weight_size", sum(a.nbytes for a in graph.parameters.values())),
                       ("target_type", "MINI")):
        set_attr(model.attr[key], value)
    return model


def write(graph: ir.Graph, file_name: str, **options) -> None:
    """Write ``graph`` as an AIR file (a serialized ge_ir ``ModelDef``) at ``file_name``.

    >>> write(capture(net, x), "net.air")            # doctest: +SKIP
    """
    if options:
        raise ExportError(f"AIR export takes no options; got {sorted(options)}")
    write_bytes(file_name, to_model(graph).SerializeToString(deterministic=True))
