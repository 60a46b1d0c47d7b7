"""AIR reader: parse an AIR file (a serialized ge_ir ``ModelDef``) and run its graph in JAX.

No Ascend toolchain exists off Ascend hardware, so this interpreter is how msjax proves its AIR
files: each graph-engine op type in ``OPS`` is evaluated with ``jax.numpy``/``lax`` following the
graph engine's op definitions (attribute names and input order as in the file), and the whole
graph runs jitted.

>>> graph = load("lenet5.air")                      # doctest: +SKIP
>>> graph(x)[0].shape                               # doctest: +SKIP
(1, 10)
"""
from __future__ import annotations

import math
import os
from collections import OrderedDict

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .air_types import numpy_from_ge, numpy_from_proto
from .mindir_format import array_shape
from .protofile import read_message
from msjax._proto import ge_ir_pb2
from msjax.common.untrusted import MAX_DIMS, reading
from msjax.errors import ExportError

__all__ = ["load", "read_model", "AirGraph", "OPS"]


def read_model(file_name) -> ge_ir_pb2.ModelDef:
    """Parse ``file_name`` as a ge_ir ``ModelDef``."""
    with reading(os.fspath(file_name), ExportError, "AIR file"):
        model = read_message(file_name, ge_ir_pb2.ModelDef, "an AIR file")
    if not model.graph:
        raise ExportError("AIR file holds no graph", file=file_name)
    return model


def attr_value(attr: ge_ir_pb2.AttrDef, *, where="", file=None):
    """The Python value of an ``AttrDef`` (lists as lists, tensors as numpy arrays)."""
    kind = attr.WhichOneof("value")
    if kind == "s":
        return _text(attr.s, where, file)
    if kind in ("i", "f", "b", "dt"):
        return getattr(attr, kind)
    if kind == "t":
        return tensor_value(attr.t, where=where, file=file)
    if kind == "list":
        lv = attr.list
        for field in ("i", "f", "b", "dt"):
            if len(getattr(lv, field)):
                return list(getattr(lv, field))
        if len(lv.s):
            return [_text(s, where, file) for s in lv.s]
        return []
    return None


def _text(raw: bytes, where, file) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise ExportError(f"{where}: string {raw[:40]!r} is not valid UTF-8", file=file) from None


def tensor_value(t: ge_ir_pb2.TensorDef, *, where="", file=None) -> np.ndarray:
    """A ``TensorDef``'s data as numpy; its bytes must fill the shape its desc declares exactly."""
    where = where or f"Const tensor {t.desc.name!r}"
    dt = np.dtype(numpy_from_proto(t.desc.dtype, where=where, file=file)).newbyteorder("<")
    shape = array_shape(t.desc.shape.dim, dt, len(t.data), where, file)
    need = math.prod(shape) * dt.itemsize
    if len(t.data) != need:
        raise ExportError(f"{where}: {len(t.data)} bytes do not fill shape {list(shape)} of {dt.name} "
                          f"({need} bytes)", file=file)
    return np.frombuffer(t.data, dtype=dt).reshape(shape).astype(dt.newbyteorder("="))


# ------------------------------------------------------------------ op semantics
def _pads4(pads):
    top, bottom, left, right = pads
    return ((top, bottom), (left, right))


def _conv2d(x, w, *rest, strides, pads, dilations, groups=1, data_format="NCHW", **_):
    if data_format != "NCHW":
        raise ExportError(f"Conv2D data_format {data_format} is not supported")
    y = lax.conv_general_dilated(x, w, tuple(strides[2:]), _pads4(pads), rhs_dilation=tuple(dilations[2:]),
                                 dimension_numbers=("NCHW", "OIHW", "NCHW"), feature_group_count=groups,
                                 precision=lax.Precision.HIGHEST)
    if rest:
        y = y + rest[0].reshape(1, -1, 1, 1)
    return y


def _matmul(a, b, *rest, transpose_x1=False, transpose_x2=False, **_):
    y = jnp.matmul(a.T if transpose_x1 else a, b.T if transpose_x2 else b, precision=lax.Precision.HIGHEST)
    return y + rest[0] if rest else y


def _batch_matmul(a, b, adj_x1=False, adj_x2=False, **_):
    a = jnp.swapaxes(a, -1, -2) if adj_x1 else a
    b = jnp.swapaxes(b, -1, -2) if adj_x2 else b
    return jnp.matmul(a, b, precision=lax.Precision.HIGHEST)


def _bias_add(x, b, data_format="NCHW", **_):
    shape = [1] * x.ndim
    shape[1 if data_format.startswith("NC") else -1] = -1
    return x + b.reshape(shape)


def _max_pool(x, ksize, strides, padding="VALID", data_format="NCHW", **_):
    return lax.reduce_window(x, -jnp.inf, lax.max, tuple(ksize), tuple(strides), padding)


def _max_pool_v3(x, ksize, strides, pads, padding_mode="CALCULATED", data_format="NCHW", **_):
    if padding_mode != "CALCULATED":
        return _max_pool(x, ksize, strides, padding_mode)
    top, bottom, left, right = pads
    return lax.reduce_window(x, -jnp.inf, lax.max, tuple(ksize), tuple(strides),
                             ((0, 0), (0, 0), (top, bottom), (left, right)))


def _reduce(fn):
    def op(x, axes, keep_dims=False, **_):
        return fn(x, axis=tuple(int(a) for a in np.asarray(axes).reshape(-1)), keepdims=keep_dims)
    return op


def _static(x):
    """A shape/axis input: Consts are numpy arrays already, so this stays static under jit."""
    return tuple(int(v) for v in np.asarray(x).reshape(-1))


def _strided_slice(x, begin, end, strides, **_):
    idx = tuple(slice(b, e, s) for b, e, s in zip(_static(begin), _static(end), _static(strides)))
    return x[idx]


def _pad_v3(x, paddings, value, mode="constant", **_):
    p = _static(paddings)
    return jnp.pad(x, list(zip(p[0::2], p[1::2])), constant_values=value)


def _argmax(x, dimension, dtype=3, **_):
    return jnp.argmax(x, axis=_static(dimension)[0]).astype(numpy_from_ge(dtype))


def _argmin(x, dimension, dtype=3, **_):
    return jnp.argmin(x, axis=_static(dimension)[0]).astype(numpy_from_ge(dtype))


def _binary(fn):
    return lambda a, b, **_: fn(a, b)


def _unary(fn):
    return lambda x, **_: fn(x)


#: graph-engine op type -> fn(*inputs, **attrs) -> output (or tuple of outputs)
OPS = {
    "Conv2D": _conv2d, "MatMul": _matmul, "MatMulV2": _matmul, "BatchMatMulV2": _batch_matmul,
    "BiasAdd": _bias_add, "MaxPool": _max_pool, "MaxPoolV3": _max_pool_v3,
    "Relu": _unary(jax.nn.relu), "Add": _binary(jnp.add), "Sub": _binary(jnp.subtract),
    "Mul": _binary(jnp.multiply), "RealDiv": _binary(jnp.divide), "TruncateDiv": _binary(lax.div),
    "Maximum": _binary(jnp.maximum), "Minimum": _binary(jnp.minimum), "Pow": _binary(jnp.power),
    "Greater": _binary(jnp.greater), "GreaterEqual": _binary(jnp.greater_equal), "Less": _binary(jnp.less),
    "LessEqual": _binary(jnp.less_equal), "Equal": _binary(jnp.equal), "NotEqual": _binary(jnp.not_equal),
    "LogicalAnd": _binary(jnp.logical_and), "LogicalOr": _binary(jnp.logical_or),
    "LogicalNot": _unary(jnp.logical_not), "Neg": _unary(jnp.negative), "Exp": _unary(jnp.exp),
    "Log": _unary(jnp.log), "Tanh": _unary(jnp.tanh), "Sigmoid": _unary(jax.nn.sigmoid),
    "Sqrt": _unary(jnp.sqrt), "Rsqrt": _unary(lax.rsqrt), "Abs": _unary(jnp.abs), "Erf": _unary(lax.erf),
    "Sign": _unary(jnp.sign), "Floor": _unary(jnp.floor), "Ceil": _unary(jnp.ceil), "Sin": _unary(jnp.sin),
    "Cos": _unary(jnp.cos), "Log1p": _unary(jnp.log1p), "Expm1": _unary(jnp.expm1),
    "Square": _unary(jnp.square), "IsFinite": _unary(jnp.isfinite), "Identity": _unary(lambda x: x),
    "Reshape": lambda x, shape, **_: jnp.reshape(x, _static(shape)),
    "BroadcastTo": lambda x, shape, **_: jnp.broadcast_to(x, _static(shape)),
    "Transpose": lambda x, perm, **_: jnp.transpose(x, _static(perm)),
    "ReduceSum": _reduce(jnp.sum), "ReduceMax": _reduce(jnp.max), "ReduceMin": _reduce(jnp.min),
    "ReduceProd": _reduce(jnp.prod), "ReduceMean": _reduce(jnp.mean),
    "ArgMaxV2": _argmax, "ArgMin": _argmin,
    "Cast": lambda x, dst_type, **_: x.astype(numpy_from_ge(dst_type)),
    "Select": lambda c, a, b, **_: jnp.where(c, a, b),
    "ClipByValue": lambda x, lo, hi, **_: jnp.clip(x, lo, hi),
    "ConcatV2": lambda *xs, N=None, **_: jnp.concatenate(xs[:-1], axis=_static(xs[-1])[0]),
    "PadV3": _pad_v3, "StridedSlice": _strided_slice,
    "Cumsum": lambda x, axis, exclusive=False, reverse=False, **_: (
        jnp.flip(jnp.cumsum(jnp.flip(x, _static(axis)[0]), _static(axis)[0]), _static(axis)[0])
        if reverse else jnp.cumsum(x, _static(axis)[0])),
}


class AirGraph:
    """The main graph of an AIR file, runnable in JAX: ``graph(*inputs)`` -> tuple of outputs.

    ``parameters`` maps each weight Const's name (the dotted parameter name) to its array;
    ``model`` is the parsed ``ModelDef``. ``jit=False`` runs op by op (no compile step).
    """

    def __init__(self, model: ge_ir_pb2.ModelDef, file_name="<memory>", *, jit=True):
        self.model = model
        self.graph = model.graph[0]
        self.file_name = str(file_name)
        self.ops = list(self.graph.op)
        missing = sorted({op.type for op in self.ops if op.type not in OPS
                          and op.type not in ("Data", "Const", "NetOutput")})
        if missing:
            raise ExportError(f"AIR reader has no semantics for op type(s) {missing}", file=self.file_name)
        self._attrs = [self._op_attrs(op) for op in self.ops]
        self.consts = OrderedDict((op.name, self._const(op)) for op in self.ops if op.type == "Const")
        self.parameters = self.consts
        self.inputs = [self._data_spec(op) for op in self.ops if op.type == "Data"]
        self._check_data_indices()
        self._check_references()
        self._run = jax.jit(self._interpret) if jit else self._interpret

    def _op_attrs(self, op):
        """An op's attributes as Python values (private "_" ones and a Const's value left out)."""
        return {k: attr_value(v, where=f"op {op.name} attribute {k}", file=self.file_name)
                for k, v in op.attr.items() if not k.startswith("_") and k != "value"}

    def _const(self, op):
        where = f"Const {op.name}"
        if "value" not in op.attr or op.attr["value"].WhichOneof("value") != "t":
            raise ExportError(f"{where} has no tensor 'value' attribute", file=self.file_name)
        return tensor_value(op.attr["value"].t, where=where, file=self.file_name)

    def _data_spec(self, op):
        """(name, shape, dtype) of a Data op, from its one output_desc."""
        where = f"Data op {op.name}"
        if not op.output_desc:
            raise ExportError(f"{where} has no output_desc; it must describe the input's shape and "
                              f"dtype", file=self.file_name)
        desc = op.output_desc[0]
        shape = tuple(desc.shape.dim)
        if len(shape) > MAX_DIMS or any(d < -2 for d in shape):
            raise ExportError(f"{where} declares shape {list(shape)}; dims are sizes, -1 (dynamic) or "
                              f"-2 (dynamic rank), at most {MAX_DIMS} of them", file=self.file_name)
        return op.name, shape, numpy_from_proto(desc.dtype, where=where, file=self.file_name)

    def _check_data_indices(self):
        for op, attrs in zip(self.ops, self._attrs):
            index = attrs.get("index", 0)
            if op.type == "Data" and (type(index) is not int or not 0 <= index < len(self.inputs)):
                raise ExportError(f"Data op {op.name} has index {index!r}; the graph has "
                                  f"{len(self.inputs)} input(s), so it must be 0..{len(self.inputs) - 1}",
                                  file=self.file_name)

    def _check_references(self):
        """Every input is '<earlier op>:<output index>' (or a ':-1' control edge), so one pass in
        file order defines each value before it is read; undefined names and cycles fail here."""
        defined = set()
        for op in self.ops:
            for name in op.input:
                self._check_reference(name, defined, f"op {op.name} ({op.type})")
            defined.add(op.name)
        if not any(op.type == "NetOutput" for op in self.ops):
            for name in self.graph.output:
                self._check_reference(name, defined, "graph output")

    def _check_reference(self, name, defined, reader):
        producer, _, index = name.rpartition(":")
        if index == "-1":                      # a control edge: ordering only, no value
            return
        if not index.isdigit() or not producer:
            raise ExportError(f"{reader} reads {name!r}, which is not '<op name>:<output index>'",
                              file=self.file_name)
        if producer not in defined:
            raise ExportError(f"{reader} reads {name!r}, but no earlier op is named {producer!r} "
                              f"(a missing op or a cycle)", file=self.file_name)

    def _interpret(self, *inputs):
        env = {}
        results = None
        for op, attrs in zip(self.ops, self._attrs):
            args = [self._value(env, i, op) for i in op.input if not i.endswith(":-1")]
            if op.type == "Data":
                out = inputs[attrs.get("index", 0)]
            elif op.type == "Const":
                out = self.consts[op.name]
            elif op.type == "NetOutput":
                results = tuple(args)
                continue
            else:
                out = self._apply(op, args, attrs)
            outs = out if isinstance(out, tuple) else (out,)
            for i, value in enumerate(outs):
                env[f"{op.name}:{i}"] = value
        if results is None:
            results = tuple(self._value(env, o, None) for o in self.graph.output)
        return results

    def _value(self, env, name, op):
        try:
            return env[name]
        except KeyError:
            reader = "graph output" if op is None else f"op {op.name} ({op.type})"
            raise ExportError(f"{reader} reads {name!r}, an output its producer does not have",
                              file=self.file_name) from None

    def _apply(self, op, args, attrs):
        try:
            return OPS[op.type](*args, **attrs)
        except ExportError as exc:
            if exc.file is not None:
                raise
            raise ExportError(f"op {op.name} ({op.type}): {exc}", file=self.file_name) from exc
        except Exception as exc:
            raise ExportError(f"op {op.name} ({op.type}) failed: {exc}", file=self.file_name) from exc

    def __call__(self, *inputs):
        if len(inputs) != len(self.inputs):
            raise ExportError(f"{self.file_name}: graph takes {len(self.inputs)} input(s), got {len(inputs)}")
        arrays = [jnp.asarray(x.asnumpy() if hasattr(x, "asnumpy") else x) for x in inputs]
        return self._run(*arrays)


def load(file_name, *, jit=True) -> AirGraph:
    """Read an AIR file and return its main graph as a runnable ``AirGraph``."""
    file_name = os.fspath(file_name)
    model = read_model(file_name)
    with reading(file_name, ExportError, "AIR file"):
        return AirGraph(model, file_name, jit=jit)
