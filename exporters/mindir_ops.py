"""What each MindSpore primitive of a MINDIR graph computes, in jax: ``OPS[prim](args, attrs)``.

``args`` are the node's inputs (tensors, and scalars/tuples from Constant nodes) in MindSpore's
argument order; ``attrs`` the primitive's attributes. Side-effect plumbing MindSpore emits (Load,
UpdateState, Depend, monads) is identity or a no-op; ``UPDATES`` are the primitives that write
their first input, a parameter (``from_mindir.run`` stores the new value).

>>> OPS["Add"]([1.0, 2.0], {})                      # doctest: +SKIP
3.0
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax

from .mindir_format import BY_TYPE_ID, MONAD
from .mindir_ops_nn import NN_OPS
from .mindir_ops_seq import SEQ_OPS
from .window import same_pads
from msjax.errors import ExportError

__all__ = ["OPS", "UPDATES"]


def _pair(v):
    v = tuple(v) if isinstance(v, (tuple, list)) else (v, v)
    return v[-2:]


def _conv2d(args, attrs):
    x, w = args[:2]
    stride, dilation = _pair(attrs.get("stride", 1)), _pair(attrs.get("dilation", 1))
    mode = str(attrs.get("pad_mode", "valid")).lower()
    if mode == "same":
        pads = [same_pads(x.shape[2 + i], w.shape[2 + i], stride[i], dilation[i]) for i in range(2)]
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
        return [(0, 0), (0, 0)] + [same_pads(x.shape[2 + i], k[i], s[i]) for i in range(2)]
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
    shape = (-1,) + (1,) * (x.ndim - 2)
    if len(args) > 5 and args[5]:
        return _batch_norm_train(x, scale, bias, mean, var, eps, args[7] if len(args) > 7 else attrs.get("momentum", 0.1))
    y = (x - mean.reshape(shape)) * lax.rsqrt(var.reshape(shape) + eps) * scale.reshape(shape) + bias.reshape(shape)
    return (y, mean, var, mean, var)


def _batch_norm_train(x, scale, bias, mean, var, eps, momentum):
    """is_training=True: normalise with the batch's statistics (biased variance). Outputs 0-4 are
    MindSpore's (y, batch mean, batch variance, and the same two as its reserve spaces); 5 and 6,
    msjax's own, are the moving statistics after MindSpore's update, ``(1 - momentum) * moving +
    momentum * batch`` with the unbiased variance (``GraphCell`` in train mode assigns them)."""
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (-1,) + (1,) * (x.ndim - 2)
    batch_mean, batch_var = jnp.mean(x, axes), jnp.var(x, axes)
    n = x.size // x.shape[1]
    y = (x - batch_mean.reshape(shape)) * lax.rsqrt(batch_var.reshape(shape) + eps) * scale.reshape(shape) \
        + bias.reshape(shape)
    unbiased = batch_var * (n / max(n - 1, 1))
    new_mean = lax.stop_gradient((1 - momentum) * mean + momentum * batch_mean).astype(mean.dtype)
    new_var = lax.stop_gradient((1 - momentum) * var + momentum * unbiased).astype(var.dtype)
    return (y, batch_mean, batch_var, batch_mean, batch_var, new_mean, new_var)


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
UPDATES = {"Assign", "AssignAdd", "AssignSub", "InplaceAddExt", "InplaceSubExt", "InplaceMul"}

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
OPS.update(NN_OPS)
OPS.update(SEQ_OPS)
