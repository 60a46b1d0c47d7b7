"""The argument rules of Tensor methods: dims, axes, shapes, indices, devices, and the data of a
Tensor built without ``input_data`` (MindSpore 2.10's messages)."""
from __future__ import annotations

import jax
import numpy as np

from msjax.common import _initializers
from msjax.common import dtype as mstype
from msjax.common._tensor_rules import ArrayHolder, unwrap

_DEVICES_HERE = ("cpu", "CPU")
_DEVICES_ELSEWHERE = ("npu", "Ascend", "ascend", "GPU", "cuda")


def _one_element(size, message=None):
    if size != 1:
        raise ValueError(message or f"The tensor should have only one element, but got {size}, more than one "
                                    f"element is ambiguous.")


def _check_device(device):
    if device in _DEVICES_HERE:
        return
    if device in _DEVICES_ELSEWHERE:
        raise RuntimeError(f"Tensor.to({device!r}): msjax places arrays with JAX; only 'cpu' is a target here")
    raise ValueError(f"Failed to convert the value \"{device}\" of input 'device' of 'to' to enum.")


def _dim(dim, ndim, what):
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"For '{what}', a dim must be an int, but got {type(dim).__name__}.")
    bound = max(ndim, 1)
    if not -bound <= dim < bound:
        raise ValueError(f"Dimension out of range (expected to be in range of [{-bound}, {bound}), but got {dim})")
    return int(dim) % bound


def _axes(axis, ndim, what):
    """``axis`` (None, int, tuple or list) as a tuple of non-negative dims, or None."""
    if axis is None:
        return None
    axes = (axis,) if isinstance(axis, (int, np.integer)) and not isinstance(axis, bool) else tuple(axis)
    out = []
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)):
            raise TypeError(f"For '{what}', 'axis' must be an int, tuple or list of ints, but got {axis!r}.")
        bound = max(ndim, 1)
        if not -bound <= a < bound:
            raise ValueError(f"For '{what}', the axis value must be in [{-bound}, {bound}), but got {a}.")
        out.append(int(a) % bound)
    return tuple(out) if ndim else None


def _new_shape(shape, size):
    """``reshape``'s argument (ints, or one tuple/list) checked against ``size`` elements."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    shape = tuple(shape)
    if any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) for d in shape):
        raise TypeError(f"For 'reshape', the shape must be ints, but got {list(shape)}.")
    shape = tuple(int(d) for d in shape)
    if shape.count(-1) > 1:
        raise ValueError("only one dimension can be inferred")
    known = int(np.prod([d for d in shape if d != -1]))
    if any(d < -1 for d in shape) or (-1 in shape and (known == 0 or size % known)) or \
            (-1 not in shape and known != size):
        raise ValueError(f"proposed_shape {list(shape)} is invalid for input of size {size}")
    return tuple(size // known if d == -1 else d for d in shape)


def _index(index):
    """An index with Tensors as arrays and lists as numpy arrays (fancy indices, as in MindSpore)."""
    if isinstance(index, tuple):
        return tuple(_index(i) for i in index)
    if isinstance(index, ArrayHolder):
        return index._array()
    if isinstance(index, list):
        return np.asarray(unwrap(index))
    return index


def _is_bool_array(i):
    return isinstance(i, (np.ndarray, jax.Array)) and np.dtype(i.dtype) == np.bool_


def _check_bounds(shape, index):
    """IndexError for integer indices outside ``shape`` (jax would clamp them silently)."""
    items = index if isinstance(index, tuple) else (index,)
    consumed = sum(i.ndim if _is_bool_array(i) else 0 if i is None or i is Ellipsis or isinstance(i, bool) else 1
                   for i in items)
    if consumed > len(shape):
        raise IndexError(f"too many indices for tensor of dimension {len(shape)}")
    dim = 0
    for i in items:
        if i is Ellipsis:
            dim += len(shape) - consumed
            continue
        if i is None or isinstance(i, bool):
            continue
        if _is_bool_array(i):
            dim += i.ndim
            continue
        size = shape[dim]
        if isinstance(i, (int, np.integer)):
            if not -size <= i < size:
                raise IndexError(f"index {i} is out of bounds for dimension with size {size}")
        elif isinstance(i, (np.ndarray, jax.Array)) and not isinstance(i, jax.core.Tracer) \
                and np.dtype(i.dtype).kind in "iu" and i.size:
            host = np.asarray(i)
            bad = host[(host < -size) | (host >= size)]
            if bad.size:
                raise IndexError(f"index {bad.flat[0]} is out of bounds for dimension with size {size}")
        dim += 1


class _NoData:
    """What a data-less Tensor holds: a shape with unknown dims (-1; ``(-2,)``: unknown rank)
    and a dtype. MindSpore's ``Tensor(shape=[None, 3], dtype=...)``, used to describe export
    inputs of dynamic shape; like MindSpore's, it has no values (``asnumpy`` raises ValueError)."""

    __slots__ = ("shape", "dtype")
    size = 0

    def __init__(self, shape, dtype):
        self.shape, self.dtype = tuple(shape), dtype

    @property
    def ndim(self):
        return len(self.shape)

    def __array__(self, dtype=None, copy=None):
        raise ValueError(f"negative dimensions are not allowed: Tensor(shape={list(self.shape)}) has "
                         f"dynamic shape and no data; it can only describe an export input")

    def __len__(self):
        raise ValueError("__len__() should return >= 0")


def _no_data(dtype, shape, init):
    """The data of ``Tensor(shape=..., dtype=..., init=...)`` without input_data, as MindSpore
    2.10 makes it: zeros (or ``init``'s values) for a static shape, no data for a dynamic one."""
    if shape is None and init is None:
        if dtype is None:
            raise TypeError("For 'Tensor', the type of 'input_data' should be one of Tensor, ndarray, "
                            "list, tuple, float, int, bool or complex, but got type 'NoneType'.")
        return _NoData((-2,), mstype.to_numpy(dtype))          # dtype only: unknown rank
    if init is not None and (shape is None or dtype is None):
        raise ValueError("init, dtype and shape must have values at the same time.")
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(-1 if d is None else int(d) for d in shape)
    if any(d < 0 for d in shape):
        if dtype is None or init is not None:
            raise ValueError("If setting dynamic shape, dtype must not be None, init must be None")
        if any(d < -1 for d in shape) and shape != (-2,):
            raise ValueError(f"For 'Tensor', shape {list(shape)} has a dim below -1; unknown dims are "
                             f"None or -1, and (-2,) is an unknown rank")
        return _NoData(shape, mstype.to_numpy(dtype))
    if dtype is None:
        raise TypeError("For 'Tensor', the type of 'input_data' should be one of Tensor, ndarray, "
                        "list, tuple, float, int, bool or complex, but got type 'NoneType'.")
    if init is not None:
        return _initializers.initial_array(init, shape, dtype)
    return np.zeros(shape, mstype.to_numpy(dtype))


