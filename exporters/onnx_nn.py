"""The ONNX rules of the network primitives: matrix products, convolutions, pooling windows, gathers.

Each is ``rule(ctx, node, ins, outs)`` as in ``to_onnx``, which lists them in its ``RULES``.
A convolution with ``lhs_dilation`` (the transposed convolutions of ``nn.Conv2dTranspose`` and
``jax.lax.conv_transpose``) is written as a plain ``Conv`` over the input dilated with zeros
(``Unsqueeze``, ``Pad``, ``Reshape``, ``Slice``): exact, and any padding, dilation or group count
maps to it, where ``ConvTranspose`` cannot express every padding jax allows.
"""
from __future__ import annotations

import numpy as np
from onnx import TensorProto

from . import ir
from .onnx_context import onnx_type
from .window import onnx_pads
from msjax.errors import UnsupportedOpError

__all__ = ["dot_general", "conv", "pool", "gather"]


def dot_general(ctx, node, ins, outs):
    """MatMul for (batched) matrix products, Einsum for any other contraction."""
    (lc, rc), (lb, rb) = node.params["dimension_numbers"]
    values = ctx.values
    lhs_rank, rhs_rank = len(values[node.inputs[0]].shape), len(values[node.inputs[1]].shape)
    out_dtype = node.outputs[0].dtype
    lhs_free = [d for d in range(lhs_rank) if d not in lc and d not in lb]
    rhs_free = [d for d in range(rhs_rank) if d not in rc and d not in rb]
    target = outs[0] if np.dtype(values[node.inputs[0]].dtype) == out_dtype else None
    if len(lc) == 1 and not lb and rhs_rank <= 2 and list(lc) == [lhs_rank - 1]:
        rhs = ins[1] if rc[0] == 0 else ctx.op("Transpose", [ins[1]], perm=[1, 0])
        result = ctx.op("MatMul", [ins[0], rhs], target)
    elif (len(lc) == 1 and len(lhs_free) == 1 and len(rhs_free) == 1
          and list(lb) == list(range(len(lb))) and list(rb) == list(range(len(rb)))):
        lhs = ins[0] if lc[0] == lhs_rank - 1 else ctx.op("Transpose", [ins[0]], perm=list(lb) + lhs_free + list(lc))
        rhs = ins[1] if rc[0] == rhs_rank - 2 else ctx.op("Transpose", [ins[1]], perm=list(rb) + list(rc) + rhs_free)
        result = ctx.op("MatMul", [lhs, rhs], target)
    else:
        letters = iter("abcdefghijklmnopqrstuvwxyz")
        lhs_sub, rhs_sub = [None] * lhs_rank, [None] * rhs_rank
        for l_dim, r_dim in list(zip(lb, rb)) + list(zip(lc, rc)):
            lhs_sub[l_dim] = rhs_sub[r_dim] = next(letters)
        for d in lhs_free:
            lhs_sub[d] = next(letters)
        for d in rhs_free:
            rhs_sub[d] = next(letters)
        out_sub = [lhs_sub[d] for d in lb] + [lhs_sub[d] for d in lhs_free] + [rhs_sub[d] for d in rhs_free]
        equation = f"{''.join(lhs_sub)},{''.join(rhs_sub)}->{''.join(out_sub)}"
        result = ctx.op("Einsum", ins, target, equation=equation)
    if target is None:
        ctx.op("Cast", [result], outs[0], to=onnx_type(out_dtype))


def _inverse(perm):
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return inv


def conv(ctx, node, ins, outs):
    p = node.params
    if p["batch_group_count"] != 1:
        raise UnsupportedOpError("batch-grouped convolutions are not supported")
    pads = [tuple(pair) for pair in p["padding"]]
    if not ir.is_static([d for pair in pads for d in pair]):
        raise UnsupportedOpError(f"padding {pads} depends on a symbolic input dim; give the spatial dims")
    if any(lo < 0 or hi < 0 for lo, hi in pads):
        raise UnsupportedOpError("negative padding is not supported")
    lhs_spec, rhs_spec, out_spec = p["dimension_numbers"]
    nchw = list(range(len(lhs_spec)))
    lhs = ins[0] if list(lhs_spec) == nchw else ctx.op("Transpose", [ins[0]], perm=list(lhs_spec))
    if any(d != 1 for d in p["lhs_dilation"]):
        in_shape = ctx.values[node.inputs[0]].shape
        lhs = _dilate(ctx, lhs, [in_shape[d] for d in lhs_spec], [int(d) for d in p["lhs_dilation"]],
                      node.outputs[0].dtype)
    rhs = ins[1] if list(rhs_spec) == nchw else ctx.op("Transpose", [ins[1]], perm=list(rhs_spec))
    out = outs[0] if list(out_spec) == nchw else None
    weight = ctx.values[node.inputs[1]].shape
    kernel = [weight[d] for d in rhs_spec[2:]]
    y = ctx.op("Conv", [lhs, rhs], out, kernel_shape=kernel, strides=list(p["window_strides"]),
               pads=onnx_pads(pads), dilations=list(p["rhs_dilation"]),
               group=int(p["feature_group_count"]))
    if out is None:
        ctx.op("Transpose", [y], outs[0], perm=_inverse(out_spec))


def _dilate(ctx, x, shape, dilation, dtype):
    """``x`` (N, C, *spatial) with ``dilation[i] - 1`` zeros between neighbours along spatial dim i:
    a new unit axis after each spatial dim, zero-padded to the dilation, merged back, the trailing
    zeros sliced off."""
    spatial = shape[2:]
    if not ir.is_static(shape[1:]):
        raise UnsupportedOpError(f"a transposed convolution over symbolic dims {list(shape)}; give the spatial dims")
    k = len(spatial)
    inserted = [3 + 2 * i for i in range(k)]                   # (N, C, H, 1, W, 1, ...)
    y = ctx.op("Unsqueeze", [x, ctx.ints(inserted)])
    ends = [0, 0] + [v for d in dilation for v in (0, d - 1)]
    y = ctx.op("Pad", [y, ctx.ints([0] * (2 + 2 * k) + ends), ctx.const(0, dtype)], mode="constant")
    merged = [shape[0], shape[1]] + [int(n) * d for n, d in zip(spatial, dilation)]
    y = ctx.op("Reshape", [y, ctx.reshape_target(merged)])
    limits = [(int(n) - 1) * d + 1 for n, d in zip(spatial, dilation)]
    return ctx.op("Slice", [y, ctx.ints([0] * k), ctx.ints(limits), ctx.ints(range(2, 2 + k))])


def pool(kind):
    def rule(ctx, node, ins, outs):
        p = node.params
        window, strides = list(p["window_dimensions"]), list(p["window_strides"])
        pads = [tuple(pair) for pair in p["padding"]]
        if not ir.is_static([d for pair in pads for d in pair]):
            raise UnsupportedOpError(f"padding {pads} depends on a symbolic input dim; give the spatial dims")
        lead = len(window) - 2
        if (window[:2] != [1, 1] or strides[:2] != [1, 1] or any(lo or hi for lo, hi in pads[:2]) or lead < 1
                or any(d != 1 for d in p["base_dilation"]) or any(d != 1 for d in p["window_dilation"])):
            raise UnsupportedOpError("only NCHW pooling windows over the spatial dims are supported")
        attrs = dict(kernel_shape=window[2:], strides=strides[2:],
                     pads=onnx_pads(pads[2:]))
        if kind == "max":
            ctx.op("MaxPool", ins[:1], outs[0], **attrs)
        else:
            mean = ctx.op("AveragePool", ins[:1], count_include_pad=1, **attrs)
            ctx.op("Mul", [mean, ctx.const(np.prod(window[2:]), node.outputs[0].dtype)], outs[0])
    return rule


def gather(ctx, node, ins, outs):
    """Row lookups (embeddings, ``table[ids]``, ``jnp.take``) map to GatherND."""
    p = node.params
    dn = p["dimension_numbers"]
    values = ctx.values
    operand, indices = values[node.inputs[0]].shape, values[node.inputs[1]].shape
    k = indices[-1] if indices else 0
    batch = len(indices) - 1
    if (dn.operand_batching_dims or tuple(dn.start_index_map) != tuple(range(k))
            or tuple(dn.collapsed_slice_dims) != tuple(range(k))
            or tuple(p["slice_sizes"][k:]) != tuple(operand[k:])
            or tuple(dn.offset_dims) != tuple(range(batch, batch + len(operand) - k))):
        raise UnsupportedOpError("only leading-axis row gathers (embedding lookups) are supported")
    index = ctx.op("Cast", [ins[1]], to=TensorProto.INT64)
    ctx.op("GatherND", [ins[0], index], outs[0])
