"""``msjax diff``'s comparison: two checkpoints' entries (name -> numpy array or str) to report lines.

One line per difference, in A's order then B's extra names:

    ~ order: same names from position 3 on differ: 'fc1.bias' in A, 'fc1.weight' in B
    - name                        only in A
    + name                        only in B
    ~ name: dtype Float32 -> Float16
    ~ name: shape [120, 400] -> [400, 120]
    ~ name: 3 of 120 values differ, max abs 0.5, max rel 0.25
    ~ name: 'hello' -> 'world'

>>> compare({"w": np.zeros(2)}, {"w": np.ones(2)})
['~ w: 2 of 2 values differ, max abs 1, max rel 1']
"""
from __future__ import annotations

import numpy as np

from msjax.checkpoint.raw import dtype_name

__all__ = ["compare", "order_change", "entry_change", "value_change"]


def compare(a, b) -> list:
    """Every difference between ``a`` and ``b`` (name -> array or str), one line each."""
    lines = [] if (line := order_change(list(a), list(b))) is None else [line]
    for name in list(a) + [n for n in b if n not in a]:
        if name not in b:
            lines.append(f"- {name}")
        elif name not in a:
            lines.append(f"+ {name}")
        elif (change := entry_change(a[name], b[name])) is not None:
            lines.append(f"~ {name}: {change}")
    return lines


def order_change(names_a, names_b) -> str | None:
    """Where the names both files hold stop coming in the same order (None: same order)."""
    in_b, in_a = set(names_b), set(names_a)
    common_a = [n for n in names_a if n in in_b]
    common_b = [n for n in names_b if n in in_a]
    for position, (x, y) in enumerate(zip(common_a, common_b)):
        if x != y:
            same = "same names" if in_a == in_b else "names both hold"
            return f"~ order: {same} from position {position} on differ: {x!r} in A, {y!r} in B"
    return None


def entry_change(x, y) -> str | None:
    """What changed between two entries (None: identical)."""
    if isinstance(x, str) or isinstance(y, str):
        if isinstance(x, str) and isinstance(y, str):
            return None if x == y else f"{x!r} -> {y!r}"
        return f"dtype {dtype_name(x)} -> {dtype_name(y)}"
    parts = []
    if dtype_name(x) != dtype_name(y):
        parts.append(f"dtype {dtype_name(x)} -> {dtype_name(y)}")
    if x.shape != y.shape:
        parts.append(f"shape {list(x.shape)} -> {list(y.shape)}")
    elif (values := value_change(x, y)) is not None:
        parts.append(values)
    return "; ".join(parts) or None


def value_change(x, y) -> str | None:
    """How many values differ and the largest absolute and relative (to B) difference, for two
    same-shaped arrays; None when every value is equal (NaN equals NaN)."""
    if x.dtype == y.dtype and np.array_equal(x, y, equal_nan=x.dtype.kind in "fc"):
        return None
    wide = np.complex128 if "c" in (x.dtype.kind, y.dtype.kind) else np.float64
    a, b = np.asarray(x, wide), np.asarray(y, wide)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        both_nan = np.isnan(a) & np.isnan(b)
        diff = np.where(both_nan, 0.0, np.abs(a - b))
        diff = np.where(np.isnan(diff), np.inf, diff)          # NaN against a number
        scale = np.abs(b)
        rel = np.where(diff == 0, 0.0, np.where(scale > 0, diff / np.where(scale > 0, scale, 1), np.inf))
    count = int(np.count_nonzero(diff))
    if count == 0:
        return None
    return (f"{count} of {diff.size} values differ, max abs {float(diff.max()):.6g}, "
            f"max rel {float(rel.max()):.6g}")
