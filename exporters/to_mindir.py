"""MINDIR emitter: ``ir.Graph`` -> a ``mind_ir.ModelProto`` file that MindSpore 2.10 loads.

The file is the minimal form MindSpore's loader accepts: ``ir_version`` "1.1",
``mind_ir_version`` 3, ``little_endian``; parameters embedded as ``<graph>:<dotted name>``
with ``ref_key``; one graph input per network input; ``Constant`` nodes for scalar, tuple and
tensor arguments; one node per MindSpore primitive (op_type ``REF::<Prim>:<n>``, the primitive
listed in ``ModelProto.primitives``); one output (a ``MakeTuple`` for several).
Argument order and attribute names follow what MindSpore 2.10 itself exports: operators defined
as primitive functions (MatMul, BiasAdd, ReduceMean, ...) take every argument as an input;
Conv2D, MaxPool and Pad are classic primitives whose arguments are primitive attributes.

``RULES`` maps each jaxpr primitive to a function ``rule(emitter, node) -> output name``.

Dynamic shapes are written as MindSpore 2.10 writes them for ``Tensor(shape=[None, 3], ...)``
inputs: every unknown dim is -1 in the inputs', nodes' and outputs' shapes (no other attribute
changes); a Reshape with one unknown dim gets -1 there, a BroadcastTo keeps an input's dim with
-1; any other shape argument is computed as MindSpore does for ``x.shape`` arithmetic:
``Shape(input)``, ``TupleGetItem``, ``ScalarMul``/``ScalarAdd``/``ScalarFloorDiv``/``ScalarMod``
and a ``MakeTuple`` of the scalars.

>>> write(capture(net, x), "net.mindir")           # doctest: +SKIP
"""
from __future__ import annotations

import re

import numpy as np

from . import ir
from .mindir_crypto import write_model
from .mindir_format import TYPE_IDS, encode_tensor, encode_value, tensor_spec
from .rules import check_supported
from msjax._proto import mind_ir_pb2 as pb
from msjax.common import dtype as mstype
from msjax.errors import ExportError

__all__ = ["write", "to_model_proto", "RULES"]

FUNCTION = pb.PrimitiveProto.PRIMITIVE_FUNCTION
CLASSIC = pb.PrimitiveProto.PRIMITIVE
A = pb.AttributeProto


def _spec(shape, dtype):
    """tensor_spec with MindSpore's -1 for every symbolic dim."""
    return tensor_spec(tuple(-1 if isinstance(d, ir.Dim) else d for d in shape), dtype)


_SCALAR_OPS = {"add": "ScalarAdd", "mul": "ScalarMul", "floordiv": "ScalarFloorDiv", "mod": "ScalarMod"}


class _Emitter:
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
                              A(name="shape", type=A.TENSORS, tensors=[_spec(shape, dtype)]))
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
                        raise ExportError(f"{self.graph.name}: symbolic dim {d} needs {op}, which MINDIR "
                                          f"export cannot compute")
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


# ================================================================ rules
def _out(node):
    value = node.outputs[0]
    return tuple(value.shape), np.dtype(value.dtype)


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
        raise ExportError(f"{node.source or e.graph.name}: cannot cast to {target} in MINDIR")
    return e.op("Cast", [e.ref(node.inputs[0]), e.const(TYPE_IDS[target])], shape, dtype)


def _copy(e, node):
    # an output that is an input/parameter as is: Depend(x, x) is MindSpore's identity node
    x = e.ref(node.inputs[0])
    return e.op("Depend", [x, x], *_out(node), kind=CLASSIC, attrs={"side_effect_propagate": 1})


def _reshape(e, node):
    shape, dtype = _out(node)
    if node.params.get("dimensions") not in (None, ()):
        raise ExportError(f"{node.source or e.graph.name}: reshape with dimensions is not supported")
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


def _reduce(prim, extra=()):
    def rule(e, node):
        axes = tuple(int(a) for a in node.params["axes"])
        return e.op(prim, [e.ref(node.inputs[0]), e.const(axes), e.const(False),
                           *[e.const(v) for v in extra]], *_out(node))
    return rule


def _select_n(e, node):
    pred, *cases = node.inputs
    if len(cases) != 2 or e.dtype(pred) != np.bool_:
        raise ExportError(f"{node.source or e.graph.name}: select_n needs a boolean predicate and 2 cases")
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
                 values=[A(type=A.TENSORS, tensors=[_spec(e.shape(n), e.dtype(n))])
                         for n in node.inputs])
    tup = e.op("MakeTuple", parts, None, None, kind=CLASSIC, abstract=abstract)
    return e.op("Concat", [tup, e.const(int(node.params["dimension"]))], *_out(node))


def _dot_general(e, node):
    (lc, rc), (lb, rb) = node.params["dimension_numbers"]
    lhs, rhs = node.inputs
    ls, rs = e.shape(lhs), e.shape(rhs)
    shape, dtype = _out(node)
    where = node.source or e.graph.name
    if len(lc) != 1 or len(rc) != 1:
        raise ExportError(f"{where}: dot_general with {len(lc)} contracting dimensions is not supported")
    lc, rc = lc[0], rc[0]
    nb = len(lb)
    if tuple(lb) != tuple(range(nb)) or tuple(rb) != tuple(range(nb)) or len(rs) != nb + 2:
        raise ExportError(f"{where}: dot_general {node.params['dimension_numbers']} with shapes "
                          f"{ls} x {rs} is not supported")
    a, b = e.ref(lhs), e.ref(rhs)
    if rc not in (nb, nb + 1):
        raise ExportError(f"{where}: dot_general contracting dim {rc} of rhs {rs} is not supported")
    trans_b = rc == nb + 1
    if nb:                                   # batched: lhs (*B, M, K) only
        if len(ls) != nb + 2 or lc not in (nb, nb + 1):
            raise ExportError(f"{where}: batched dot_general with lhs {ls} is not supported")
        return e.op("BatchMatMul", [a, b, e.const(lc == nb), e.const(trans_b)], shape, dtype)
    if lc == len(ls) - 1 and len(ls) != 2:   # (..., K) @ (K, N): flatten the leading dims
        k = ls[-1]
        if not ir.is_static(ls[:-1]):         # symbolic leading dims: -1 rows
            rows = -1
        else:
            rows = int(np.prod(ls[:-1])) if ls[:-1] else 1
        a = e.op("Reshape", [a, e.reshape_dims((rows, k))], (rows, k), e.dtype(lhs))
        n = rs[1] if rc == 0 else rs[0]
        y = e.op("MatMul", [a, b, e.const(False), e.const(trans_b)], (rows, n), dtype)
        return e.op("Reshape", [y, e.reshape_dims(shape)], shape, dtype)
    if len(ls) != 2:
        raise ExportError(f"{where}: dot_general contracting dim {lc} of lhs {ls} is not supported")
    return e.op("MatMul", [a, b, e.const(lc == 0), e.const(trans_b)], shape, dtype)


def _spatial(node, rank_offset):
    """The (top, bottom, left, right) padding of a 2-D window op."""
    pads = [tuple(p) for p in node.params["padding"]][rank_offset:]
    pads = (pads[0][0], pads[0][1], pads[1][0], pads[1][1])
    if not ir.is_static(pads):
        raise ExportError(f"{node.source or '<top level>'}: padding {pads} depends on a symbolic input "
                          f"dim; MINDIR export needs static spatial dims for SAME padding")
    return pads


def _same_pads(in_hw, k, s, d=(1, 1)):
    out = []
    for size, kk, ss, dd in zip(in_hw, k, s, d):
        eff = (kk - 1) * dd + 1
        total = max((-(-size // ss) - 1) * ss + eff - size, 0)
        out += [total // 2, total - total // 2]
    return tuple(out)


def _conv(e, node):
    where = node.source or e.graph.name
    dn = node.params["dimension_numbers"]
    lhs, rhs = node.inputs
    if (tuple(dn.lhs_spec), tuple(dn.rhs_spec), tuple(dn.out_spec)) != ((0, 1, 2, 3),) * 3 \
            or len(e.shape(lhs)) != 4:
        raise ExportError(f"{where}: only 2-D NCHW/OIHW convolutions export to MINDIR ({dn})")
    if tuple(node.params["lhs_dilation"]) != (1, 1) or node.params.get("batch_group_count", 1) != 1:
        raise ExportError(f"{where}: transposed or batch-grouped convolutions do not export to MINDIR")
    o, _, kh, kw = e.shape(rhs)
    sh, sw = node.params["window_strides"]
    dh, dw = node.params["rhs_dilation"]
    pads = _spatial(node, 0)
    if pads == (0, 0, 0, 0):
        mode = "valid"
    elif ir.is_static(e.shape(lhs)[2:]) and pads == _same_pads(e.shape(lhs)[2:], (kh, kw), (sh, sw), (dh, dw)):
        mode = "same"
    else:
        mode = "pad"
    group = int(node.params["feature_group_count"])
    attrs = {"kernel_size": (kh, kw), "mode": 1, "out_channel": o, "input_names": ["x", "w"],
             "pad": pads if mode == "pad" else (0, 0, 0, 0), "pad_mode": mode, "format": "NCHW",
             "pad_list": pads, "groups": group, "stride": (1, 1, sh, sw), "group": group,
             "dilation": (1, 1, dh, dw), "output_names": ["output"]}
    return e.op("Conv2D", [e.ref(lhs), e.ref(rhs)], *_out(node), attrs=attrs, kind=CLASSIC)


def _window(node, e, where):
    x = node.inputs[0]
    if len(e.shape(x)) != 4:
        raise ExportError(f"{where}: only 4-D NCHW pooling exports to MINDIR")
    k, s = tuple(node.params["window_dimensions"]), tuple(node.params["window_strides"])
    if k[:2] != (1, 1) or s[:2] != (1, 1) or set(node.params["base_dilation"]) != {1} \
            or set(node.params["window_dilation"]) != {1}:
        raise ExportError(f"{where}: pooling over batch/channels or dilated pooling does not export")
    pads = _spatial(node, 2)
    if pads == (0, 0, 0, 0):
        mode = "VALID"
    elif ir.is_static(e.shape(x)[2:]) and pads == _same_pads(e.shape(x)[2:], k[2:], s[2:]):
        mode = "SAME"
    else:
        raise ExportError(f"{where}: pooling padding {pads} is neither VALID nor SAME; MindSpore's "
                          f"MaxPool/AvgPool support only those")
    return x, k, s, mode


def _max_pool(e, node):
    x, k, s, mode = _window(node, e, node.source or e.graph.name)
    attrs = {"pad_mode": mode, "output_names": ["output"], "kernel_size": k, "format": "NCHW",
             "strides": s, "input_names": ["x"]}
    return e.op("MaxPool", [e.ref(x)], *_out(node), attrs=attrs, kind=CLASSIC)


def _sum_pool(e, node):
    where = node.source or e.graph.name
    x, k, s, mode = _window(node, e, where)
    if mode != "VALID":
        raise ExportError(f"{where}: a padded window sum does not export to MINDIR")
    shape, dtype = _out(node)
    avg = e.op("AvgPool", [e.ref(x), e.const(k[2:]), e.const(s[2:]), e.const(2), e.const(0)], shape, dtype)
    return e.op("Mul", [avg, e.tensor(np.asarray(k[2] * k[3], dtype))], shape, dtype)


def _slice(e, node):
    start, limit = tuple(node.params["start_indices"]), tuple(node.params["limit_indices"])
    strides = tuple(node.params.get("strides") or (1,) * len(start))
    zero = e.const(0)
    if not ir.is_static(start + limit + strides):
        # a slice to a symbolic dim's end: end_mask bit with end 0, as MindSpore writes x[:, :1]
        full = e.shape(node.inputs[0])
        to_end = [i for i, v in enumerate(limit) if isinstance(v, ir.Dim) and v == full[i]]
        limit = tuple(0 if i in to_end else v for i, v in enumerate(limit))
        end_mask = e.const(sum(1 << i for i in to_end)) if to_end else zero
        return e.op("StridedSlice", [e.ref(node.inputs[0]), e.dims(start), e.dims(limit), e.dims(strides),
                                     zero, end_mask, zero, zero, zero], *_out(node))
    start, limit, strides = (tuple(int(v) for v in t) for t in (start, limit, strides))
    return e.op("StridedSlice", [e.ref(node.inputs[0]), e.const(start), e.const(limit), e.const(strides),
                                 zero, zero, zero, zero, zero], *_out(node))


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
    where = node.source or e.graph.name
    x, value = node.inputs
    if not ir.is_static([v for c in node.params["padding_config"] for v in c]):
        raise ExportError(f"{where}: padding {node.params['padding_config']} depends on a symbolic input dim")
    config = [tuple(int(v) for v in c) for c in node.params["padding_config"]]
    fill = _static(e, value)
    if fill is None or np.any(np.asarray(fill) != 0) or any(c[2] or c[0] < 0 or c[1] < 0 for c in config):
        raise ExportError(f"{where}: only non-negative zero padding (no interior) exports to MINDIR")
    paddings = tuple((c[0], c[1]) for c in config)
    return e.op("Pad", [e.ref(x)], *_out(node), attrs={"paddings": paddings}, kind=CLASSIC)


def _gather(e, node):
    """``jnp.take(table, idx, axis=0)`` (embedding lookups) -> Gather(table, idx, 0, 0)."""
    where = node.source or e.graph.name
    table, idx = node.inputs
    ts, ishape = e.shape(table), e.shape(idx)
    dn = node.params["dimension_numbers"]
    ok = (tuple(dn.collapsed_slice_dims) == (0,) and tuple(dn.start_index_map) == (0,)
          and tuple(node.params["slice_sizes"]) == (1, *ts[1:]) and ishape and ishape[-1] == 1
          and tuple(dn.offset_dims) == tuple(range(len(ishape) - 1, len(ishape) - 1 + len(ts) - 1))
          and not getattr(dn, "operand_batching_dims", ()))
    if not ok:
        raise ExportError(f"{where}: only take-along-axis-0 gathers (embedding lookups) export to MINDIR")
    i = e.op("Reshape", [e.ref(idx), e.reshape_dims(ishape[:-1])], ishape[:-1], e.dtype(idx))
    return e.op("Gather", [e.ref(table), i, e.const(0), e.const(0)], *_out(node))


RULES = {
    "add": _binary("Add"), "sub": _binary("Sub"), "mul": _binary("Mul"), "div": _binary("RealDiv"),
    "max": _binary("Maximum"), "min": _binary("Minimum"), "pow": _binary("Pow"),
    "eq": _binary("Equal"), "ne": _binary("NotEqual"), "lt": _binary("Less"), "le": _binary("LessEqual"),
    "gt": _binary("Greater"), "ge": _binary("GreaterEqual"),
    "and": _binary("LogicalAnd"), "or": _binary("LogicalOr"), "not": _unary("LogicalNot"),
    "exp": _unary("Exp"), "log": _unary("Log"), "sqrt": _unary("Sqrt"), "rsqrt": _unary("Rsqrt"),
    "tanh": _unary("Tanh"), "erf": _unary("Erf"), "erfc": _unary("Erfc"), "logistic": _unary("Sigmoid"), "neg": _unary("Neg"),
    "abs": _unary("Abs"), "sin": _unary("Sin"), "cos": _unary("Cos"), "floor": _unary("Floor"),
    "ceil": _unary("Ceil"), "sign": _unary("Sign"), "square": _unary("Square"), "log1p": _unary("Log1p"),
    "integer_pow": _integer_pow, "convert_element_type": _convert, "copy": _copy,
    "reshape": _reshape, "squeeze": _squeeze,
    "broadcast_in_dim": _broadcast_in_dim, "transpose": _transpose,
    "reduce_sum": _reduce("ReduceSum", extra=(False,)), "reduce_max": _reduce("ReduceMax"),
    "reduce_min": _reduce("ReduceMin"), "select_n": _select_n, "concatenate": _concatenate,
    "dot_general": _dot_general, "conv_general_dilated": _conv, "reduce_window_max": _max_pool,
    "reduce_window_sum": _sum_pool, "slice": _slice, "pad": _pad, "gather": _gather,
}


# ================================================================ model
def to_model_proto(graph: ir.Graph) -> pb.ModelProto:
    """Translate ``graph`` to a ModelProto (raises UnsupportedOpError listing every missing op)."""
    check_supported(graph, RULES, "MINDIR", updates=True)
    e = _Emitter(graph)
    for name, array in graph.parameters.items():
        array = np.asarray(array)
        t = encode_tensor(array, f"{e.gname}:{name}")
        t.ref_key = name
        t.compression_type = pb.TensorProto.NO_COMPRESSION
        e.g.parameter.append(t)
        e.names[name] = t.name
    for value in graph.inputs:
        full = f"{e.gname}:{value.name}"
        e.g.input.add(name=full, tensor=[_spec(value.shape, value.dtype)])
        e.names[value.name] = full
    monad = _load_updated(e) if graph.updates else None
    for node in graph.nodes:
        out = RULES[node.op](e, node)
        if len(node.outputs) != 1:
            raise ExportError(f"{node.source or graph.name}: {node.op} with several outputs")
        e.names[node.outputs[0].name] = out
    outs = [e.ref(v.name) for v in graph.outputs]
    if monad is not None:
        monad = _assign_updates(e, monad)
    if len(outs) == 1:
        v = graph.outputs[0]
        out = outs[0]
        if monad is not None:
            out = e.op("Depend", [out, monad], v.shape, v.dtype, kind=CLASSIC,
                       attrs={"side_effect_propagate": 1})
        e.g.output.add(name=out, tensor=[_spec(v.shape, v.dtype)])
    else:
        abstract = A(name="shape", type=A.TUPLE,
                     values=[A(type=A.TENSORS, tensors=[_spec(v.shape, v.dtype)]) for v in graph.outputs])
        tup = e.op("MakeTuple", outs, None, None, kind=CLASSIC, abstract=abstract)
        if monad is not None:
            tup = e.op("Depend", [tup, monad], None, None, kind=CLASSIC, abstract=abstract,
                       attrs={"side_effect_propagate": 1})
        e.g.output.add(name=tup)
    return e.model


# ================================================================ in-place parameter updates
_UMONAD = A(name="shape", type=A.UMONAD)


def _load_updated(e):
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


def _assign_updates(e, u):
    """``Assign(p, value, U)`` for each updated parameter, chained by UpdateState (MindSpore's
    form of ``ops.assign``/``self.p = value``); returns the last monad, which the output Depends on."""
    for name, src in e.graph.updates.items():
        array = e.graph.parameters[name]
        if tuple(e.shape(src)) != tuple(array.shape) or e.dtype(src) != array.dtype:
            raise ExportError(f"{e.graph.name}: parameter {name!r} ({list(array.shape)}, {array.dtype}) is "
                              f"updated with a value of shape {list(e.shape(src))} and dtype {e.dtype(src)}")
        spec = _spec(array.shape, array.dtype)
        spec.ref_key = name
        assign = e.op("Assign", [f"{e.gname}:{name}", e.ref(src), u], None, None, attrs={"side_effect_mem": True},
                      abstract=A(name="shape", type=A.TENSORS, tensors=[spec]))
        u = e.op("UpdateState", [u, assign], None, None, kind=CLASSIC, abstract=_UMONAD)
    return u


def write(graph: ir.Graph, file_name, *, enc_key=None, enc_mode="AES-GCM", **options) -> None:
    """Write ``graph`` as a MINDIR file at ``file_name`` (the caller adds the suffix).

    With ``enc_key`` the whole serialized ModelProto is encrypted as MindSpore does
    (``enc_mode`` "AES-GCM", "AES-CBC", "SM4-CBC" or ``f(bytes, key) -> bytes``; see
    ``msjax_exporters.mindir_crypto``).
    """
    if options:
        raise ExportError(f"MINDIR export takes no options {sorted(options)}")
    write_model(file_name, to_model_proto(graph).SerializeToString(), enc_key, enc_mode)
