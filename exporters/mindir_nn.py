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
    """Conv2D; Conv3D for 5-D NCDHW inputs; Conv2DTranspose for an ``lhs_dilation`` (transposed) one."""
    dn = node.params["dimension_numbers"]
    lhs, rhs = node.inputs
    if any(d != 1 for d in node.params["lhs_dilation"]):
        return _conv_transpose(e, node)
    if len(e.shape(lhs)) == 5 and (tuple(dn.lhs_spec), tuple(dn.rhs_spec), tuple(dn.out_spec)) == ((0, 1, 2, 3, 4),) * 3:
        return _conv3d(e, node)
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


def _static_pads(node):
    pads = [tuple(pair) for pair in node.params["padding"]]
    if not ir.is_static([d for pair in pads for d in pair]):
        raise UnsupportedOpError(f"padding {pads} depends on a symbolic input dim; give the spatial dims")
    return [(int(lo), int(hi)) for lo, hi in pads]


def _conv3d(e, node):
    """Conv3D with the attributes MindSpore 2.10 writes for ``nn.Conv3d``."""
    p = node.params
    if p.get("batch_group_count", 1) != 1:
        raise UnsupportedOpError("batch-grouped convolutions do not export to MINDIR")
    lhs, rhs = node.inputs
    o, _, *kernel = e.shape(rhs)
    stride, dilation = tuple(int(v) for v in p["window_strides"]), tuple(int(v) for v in p["rhs_dilation"])
    pads = interleaved(_static_pads(node))
    if any(v < 0 for v in pads):
        raise UnsupportedOpError(f"negative padding {pads} does not export to MINDIR")
    mode = "valid" if not any(pads) else "pad"
    group = int(p["feature_group_count"])
    attrs = {"kernel_size": tuple(kernel), "mode": 1, "out_channel": o, "input_names": ["x", "w"], "pad": pads,
             "offset_x": 0, "pad_mode": mode, "format": "NCDHW", "pad_list": pads, "groups": group,
             "stride": stride, "dilations": (1, 1, *dilation), "strides": (1, 1, *stride), "group": group,
             "dilation": dilation, "output_names": ["output"]}
    return e.op("Conv3D", [e.ref(lhs), e.ref(rhs)], *_out(node), attrs=attrs, kind=CLASSIC)


def _conv_transpose(e, node):
    """A convolution over the input dilated by ``lhs_dilation`` (jax's transposed convolution) as
    MindSpore's ``Conv2DTranspose(dout, weight, input_sizes)``.

    That op is the input gradient of a convolution whose weight is the kernel flipped spatially with
    its in/out channels swapped; jax's padding ``lo`` of a kernel spanning ``span = d*(k-1)+1`` is
    its padding ``span - 1 - lo``. Where ``lo`` (or ``hi``) exceeds ``span - 1`` the extra output rows
    see only padding: they are zeros, added by a Pad after it.
    """
    p = node.params
    lhs, rhs = node.inputs
    dn = p["dimension_numbers"]
    if len(e.shape(lhs)) != 4 or tuple(dn.lhs_spec) != (0, 1, 2, 3) or tuple(dn.out_spec) != (0, 1, 2, 3):
        raise UnsupportedOpError(f"only 2-D NCHW transposed convolutions export to MINDIR ({dn})")
    if set(p["window_strides"]) != {1} or p["feature_group_count"] != 1 or p.get("batch_group_count", 1) != 1:
        raise UnsupportedOpError("a transposed convolution with window strides or groups does not export to MINDIR")
    shape, dtype = _out(node)
    rs = e.shape(rhs)
    perm = (dn.rhs_spec[1], dn.rhs_spec[0], *dn.rhs_spec[2:])        # (x channels, out channels, kh, kw)
    kernel = tuple(rs[d] for d in perm)
    w = e.ref(rhs)
    if perm != (0, 1, 2, 3):
        w = e.op("Transpose", [w, e.const(tuple(int(d) for d in perm))], kernel, e.dtype(rhs))
    w = e.op("ReverseV2", [w, e.const((2, 3))], kernel, e.dtype(rhs))
    stride, dilation = tuple(int(v) for v in p["lhs_dilation"]), tuple(int(v) for v in p["rhs_dilation"])
    pads, extra = [], []
    for (lo, hi), k, d in zip(_static_pads(node), kernel[2:], dilation):
        reach = d * (k - 1)
        pads += [max(reach - lo, 0), max(reach - hi, 0)]
        extra.append((max(lo - reach, 0), max(hi - reach, 0)))
    inner = (*shape[:2], *(n - a - b for n, (a, b) in zip(shape[2:], extra)))
    attrs = {"kernel_size": kernel[2:], "mode": 1, "out_channel": kernel[0],
             "input_names": ["out_backprop", "filter", "input_sizes"], "pad": tuple(pads), "pad_mode": "PAD",
             "format": "NCHW", "pad_list": tuple(pads), "groups": 1, "stride": (1, 1, *stride), "group": 1,
             "dilation": (1, 1, *dilation), "output_names": ["output"]}
    y = e.op("Conv2DTranspose", [e.ref(lhs), w, e.dims(inner)], inner, dtype, attrs=attrs, kind=CLASSIC)
    if any(a or b for a, b in extra):
        y = e.op("Pad", [y], shape, dtype, attrs={"paddings": ((0, 0), (0, 0), *extra)}, kind=CLASSIC)
    return y


def _window(node, e, padded=False):
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
    elif padded and min(pads) >= 0:
        mode = "PAD"
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
    """A window sum: a VALID AvgPool times the window size; a padded one pads with zeros first
    (the sum counts the padding as zeros, as MindSpore's ``count_include_pad=True``)."""
    x, k, s, mode = _window(node, e, padded=True)
    shape, dtype = _out(node)
    x = e.ref(x)
    if mode != "VALID":
        t, b, left, r = _spatial(node, 2)
        n, c, h, w = e.shape(node.inputs[0])
        x = e.op("Pad", [x], (n, c, h + t + b, w + left + r), dtype,
                 attrs={"paddings": ((0, 0), (0, 0), (t, b), (left, r))}, kind=CLASSIC)
    avg = e.op("AvgPool", [x, e.const(k[2:]), e.const(s[2:]), e.const(2), e.const(0)], shape, dtype)
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
