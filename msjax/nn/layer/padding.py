"""Pad: constant (zero), REFLECT and SYMMETRIC padding by MindSpore's ``paddings`` pairs.

``paddings`` has one ``(before, after)`` pair per input dimension (MindSpore checks the count when
the cell runs). REFLECT mirrors without repeating the edge (``pad < size``), SYMMETRIC with it
(``pad <= size``).

>>> nn.Pad(((1, 1), (2, 2)))(Tensor(np.ones((2, 3), np.float32))).shape
(4, 7)
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from msjax.errors import LayerArgumentError
from msjax.nn.cell import Cell

__all__ = ["Pad"]

_MODES = ("CONSTANT", "REFLECT", "SYMMETRIC")


def _mirror(x, axis, before, after, edge):
    """Mirror ``before``/``after`` cells onto ``axis``, joined from one-cell slices (no ``rev`` to export)."""
    n, skip = x.shape[axis], 0 if edge else 1
    if not before and not after:
        return x
    cell = [jax.lax.slice_in_dim(x, i, i + 1, axis=axis) for i in range(n)]
    head = [cell[i] for i in range(before - 1 + skip, skip - 1, -1)]
    tail = [cell[n - 1 - skip - k] for k in range(after)]
    return jnp.concatenate(head + [x] + tail, axis=axis)


class Pad(Cell):
    """Pad each dimension by ``paddings[i] = (before, after)``; ``mode`` CONSTANT (zeros), REFLECT or SYMMETRIC."""

    def __init__(self, paddings, mode="CONSTANT"):
        super().__init__()
        if mode not in _MODES:
            raise LayerArgumentError(f"Pad: mode must be one of {list(_MODES)}, got {mode!r}")
        if not isinstance(paddings, tuple):
            raise TypeError(f"Pad: paddings must be a tuple of (before, after) pairs, got {type(paddings).__name__}")
        bad = [p for p in paddings if not (isinstance(p, (tuple, list)) and len(p) == 2
                                           and all(isinstance(v, int) and v >= 0 for v in p))]
        if bad:
            raise LayerArgumentError(f"Pad: every entry of paddings must be a (before, after) pair of non-negative "
                                     f"ints, got {bad} in {paddings!r}")
        if len(paddings) > 4:
            raise LayerArgumentError(f"Pad: paddings covers at most 4 dimensions, got {len(paddings)}")
        self.paddings = tuple(tuple(p) for p in paddings)
        self.mode = mode

    def construct(self, x):
        if len(self.paddings) != x.ndim:
            raise LayerArgumentError(f"Pad: paddings has {len(self.paddings)} pairs but the input has {x.ndim} "
                                     f"dimensions (shape {tuple(x.shape)}); give one pair per dimension")
        if self.mode != "CONSTANT":
            limit = 0 if self.mode == "REFLECT" else 1
            over = [(axis, pair) for axis, pair in enumerate(self.paddings) if max(pair) > x.shape[axis] - 1 + limit]
            if over:
                raise LayerArgumentError(f"Pad: {self.mode} padding must be {'<' if limit == 0 else '<='} the "
                                         f"dimension's size; (axis, pair) {over} exceed shape {tuple(x.shape)}")
        if self.mode == "CONSTANT":
            return jnp.pad(x, self.paddings)
        for axis, (before, after) in enumerate(self.paddings):
            x = _mirror(x, axis, before, after, self.mode == "SYMMETRIC")
        return x
