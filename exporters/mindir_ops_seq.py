"""MINDIR reader rules for sequence, tuple/list and scalar primitives (``SEQ_OPS``).

MindSpore 2.10 writes ``Split`` (``ops.split``, attention heads, GRU gates), ``Unstack``,
``Stack`` over a ``make_list`` (``nn.GRU``/``nn.RNN`` time steps), ``ReverseV2`` (a bidirectional
LSTM's backward input), ``Tile``, ``SumExt`` (``Tensor.sum``, a control-flow condition), and
the scalar comparison ``LessScalar`` (``while x.sum() < 100``). Tuples and lists are python
tuples and lists here.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .mindir_format import BY_TYPE_ID
from msjax.errors import ExportError

__all__ = ["SEQ_OPS"]


def _split(args, attrs):
    """Split(x, axis, output_num): output_num equal parts along axis."""
    x, axis, num = args[0], int(args[1]), int(args[2])
    if x.shape[axis] % num:
        raise ExportError(f"Split of a dim of {x.shape[axis]} into {num} equal parts")
    return tuple(jnp.split(x, num, axis=axis))


def _unstack(args, attrs):
    x, axis = args[0], int(attrs.get("axis", 0))
    return tuple(jnp.moveaxis(x, axis, 0))


def _sum_ext(args, attrs):
    """SumExt(x, dim, keepdim, dtype): dim None sums everything; an integer or bool input sums
    as int64 (int32 where jax's x64 is off), as in MindSpore."""
    x, dim = jnp.asarray(args[0]), args[1] if len(args) > 1 else None
    keep = bool(args[2]) if len(args) > 2 else False
    axes = None if dim is None or dim == () else (tuple(dim) if isinstance(dim, (tuple, list)) else (int(dim),))
    out = jnp.sum(x, axis=axes, keepdims=keep)
    if len(args) > 3 and isinstance(args[3], int) and args[3] in BY_TYPE_ID:
        return out.astype(BY_TYPE_ID[args[3]].numpy)
    if not jnp.issubdtype(x.dtype, jnp.floating) and not jnp.issubdtype(x.dtype, jnp.complexfloating):
        out = out.astype(jax.dtypes.canonicalize_dtype(jnp.int64))
    return out


def _tile(args, attrs):
    x, reps = args[0], tuple(int(r) for r in args[1])
    return jnp.tile(x, reps)


def _sequence(kind):
    return lambda a, k: kind(a)


SEQ_OPS = {
    "Split": _split, "Unstack": _unstack,
    "Stack": lambda a, k: jnp.stack(list(a[0]) if len(a) == 1 and isinstance(a[0], (list, tuple)) else a,
                                    axis=int(k.get("axis", 0))),
    "ReverseV2": lambda a, k: jnp.flip(a[0], tuple(int(i) for i in a[1])),
    "Tile": _tile, "SumExt": _sum_ext,
    "make_list": _sequence(list),
    "LessScalar": lambda a, k: a[0] < a[1],
}
