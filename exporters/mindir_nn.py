"""The MINDIR rules of the network primitives: matrix products, convolutions, pooling windows, gathers.

Each is ``rule(emitter, node) -> output name`` as in ``to_mindir``, which lists them in its
``RULES``. Arguments and attributes are spelled as MindSpore 2.10 writes them for its own layers.
"""
from __future__ import annotations

import numpy as np

from . import ir
from .mindir_emitter import CLASSIC
from .mindir_emitter import output_of as _out
from .window import interleaved, same_pads_2d
from msjax.errors import UnsupportedOpError

__all__ = ["dot_general", "conv", "max_pool", "sum_pool", "gather"]


def dot_general(e, node):
    (lc, rc), (lb, rb) = node.params["dimension_numbers"]
    lhs, rhs = node.inputs
    ls, rs = e.shape(lhs), e.shape(rhs)
    shape, dtype = _out(node)
    if len(lc) != 1 or len(rc) != 1:
        raise UnsupportedOpError(f"dot_general with {len(lc)} contracting dimensions is not supported")
    lc, rc = lc[0], rc[0]
    nb = len(lb)
    if tuple(lb) != tuple(range(nb)) or tuple(rb) != tuple(range(nb)) or len(rs) != nb + 2:
        raise UnsupportedOpError(f"dot_general {node.params['dimension_numbers']} with shapes "
                          f"{ls} x {rs} is not supported")
    a, b = e.ref(lhs), e.ref(rhs)
    if rc not in (nb, nb + 1):
        raise UnsupportedOpError(f"dot_general contracting dim {rc} of rhs {rs} is not supported")
    trans_b = rc == nb + 1
    if nb:                                   # batched: lhs (*B, M, K) only
        if len(ls) != nb + 2 or lc not in (nb, nb + 1):
            raise UnsupportedOpError(f"batched dot_general with lhs {ls} is not supported")
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
        raise UnsupportedOpError(f"dot_general contracting dim {lc} of lhs {ls} is not supported")
    return e.op("MatMul", [a, b, e.const(lc == 0), e.const(trans_b)], shape, dtype)


def _spatial(node, rank_offset):
    """The (top, bottom, left, right) padding of a 2-D window op."""
    pads = interleaved(node.params["padding"][rank_offset:rank_offset + 2])
    if not ir.is_static(pads):
        raise UnsupportedOpError(f"padding {pads} depends on a symbolic input dim; MINDIR export needs "
                                 f"static spatial dims for SAME padding")
    return pads


def conv(e, node):
    dn = node.params["dimension_numbers"]
    lhs, rhs = node.inputs
    if (tuple(dn.lhs_spec), tuple(dn.rhs_spec), tuple(dn.out_spec)) != ((0, 1, 2, 3),) * 3 \
            or len(e.shape(lhs)) != 4:
        raise UnsupportedOpError(f"only 2-D NCHW/OIHW convolutions export to MINDIR ({dn})")
    if tuple(node.params["lhs_dilation"]) != (1, 1) or node.params.get("batch_group_count", 1) != 1:
        raise UnsupportedOpError("transposed or batch-grouped convolutions do not export to MINDIR")
    o, _, kh, kw = e.shape(rhs)
    sh, sw = node.params["window_strides"]
    dh, dw = node.params["rhs_dilation"]
    pads = _spatial(node, 0)
    if pads == (0, 0, 0, 0):
        mode = "valid"
    elif ir.is_static(e.shape(lhs)[2:]) and pads == same_pads_2d(e.shape(lhs)[2:], (kh, kw), (sh, sw), (dh, dw)):
        mode = "same"
    else:
        mode = "pad"
    group = int(node.params["feature_group_count"])
    attrs = {"kernel_size": (kh, kw), "mode": 1, "out_channel": o, "input_names": ["x", "w"],
             "pad": pads if mode == "pad" else (0, 0, 0, 0), "pad_mode": mode, "format": "NCHW",
             "pad_list": pads, "groups": group, "stride": (1, 1, sh, sw), "group": group,
             "dilation": (1, 1, dh, dw), "output_names": ["output"]}
    return e.op("Conv2D", [e.ref(lhs), e.ref(rhs)], *_out(node), attrs=attrs, kind=CLASSIC)


def _window(node, e):
    x = node.inputs[0]
    if len(e.shape(x)) != 4:
        raise UnsupportedOpError("only 4-D NCHW pooling exports to MINDIR")
    k, s = tuple(node.params["window_dimensions"]), tuple(node.params["window_strides"])
    if k[:2] != (1, 1) or s[:2] != (1, 1) or set(node.params["base_dilation"]) != {1} \
            or set(node.params["window_dilation"]) != {1}:
        raise UnsupportedOpError("pooling over batch/channels or dilated pooling does not export")
    pads = _spatial(node, 2)
    if pads == (0, 0, 0, 0):
        mode = "VALID"
    elif ir.is_static(e.shape(x)[2:]) and pads == same_pads_2d(e.shape(x)[2:], k[2:], s[2:]):
        mode = "SAME"
    else:
        raise UnsupportedOpError(f"pooling padding {pads} is neither VALID nor SAME; MindSpore's "
                          f"MaxPool/AvgPool support only those")
    return x, k, s, mode


def max_pool(e, node):
    x, k, s, mode = _window(node, e)
    attrs = {"pad_mode": mode, "output_names": ["output"], "kernel_size": k, "format": "NCHW",
             "strides": s, "input_names": ["x"]}
    return e.op("MaxPool", [e.ref(x)], *_out(node), attrs=attrs, kind=CLASSIC)


def sum_pool(e, node):
    x, k, s, mode = _window(node, e)
    if mode != "VALID":
        raise UnsupportedOpError("a padded window sum does not export to MINDIR")
    shape, dtype = _out(node)
    avg = e.op("AvgPool", [e.ref(x), e.const(k[2:]), e.const(s[2:]), e.const(2), e.const(0)], shape, dtype)
    return e.op("Mul", [avg, e.tensor(np.asarray(k[2] * k[3], dtype))], shape, dtype)


def gather(e, node):
    """``jnp.take(table, idx, axis=0)`` (embedding lookups) -> Gather(table, idx, 0, 0)."""
    table, idx = node.inputs
    ts, ishape = e.shape(table), e.shape(idx)
    dn = node.params["dimension_numbers"]
    ok = (tuple(dn.collapsed_slice_dims) == (0,) and tuple(dn.start_index_map) == (0,)
          and tuple(node.params["slice_sizes"]) == (1, *ts[1:]) and ishape and ishape[-1] == 1
          and tuple(dn.offset_dims) == tuple(range(len(ishape) - 1, len(ishape) - 1 + len(ts) - 1))
          and not getattr(dn, "operand_batching_dims", ()))
    if not ok:
        raise UnsupportedOpError("only take-along-axis-0 gathers (embedding lookups) export to MINDIR")
    i = e.op("Reshape", [e.ref(idx), e.reshape_dims(ishape[:-1])], ishape[:-1], e.dtype(idx))
    return e.op("Gather", [e.ref(table), i, e.const(0), e.const(0)], *_out(node))
