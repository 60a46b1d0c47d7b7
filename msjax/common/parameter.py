"""``Parameter`` (an ``nnx.Param`` with MindSpore's name and ``requires_grad``) and MindSpore's
in-place updates of one: ``assign``, ``assign_add``, ``assign_sub`` under the Assign rules.

``msjax.common.parameter`` is MindSpore's import path (``mindspore.common.parameter``); ``msjax.ops``
re-exports the updates, and ``self.w += x`` in ``construct`` uses them here, below ops.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from flax.nnx.tracers import TraceState as _TraceState

from msjax.common import dtype as mstype
from msjax.common._tensor import Tensor
from msjax.common._tensor_rules import ArrayHolder, _as_array, unwrap

__all__ = ["Parameter", "assign", "assign_add", "assign_sub", "assign_value", "host_parameters"]


def _check_param_name(name):
    """MindSpore: a Parameter's name is a str or None, else a ValueError."""
    if name is not None and not isinstance(name, str):
        raise ValueError(f"The type of the Parameter's name should be 'string' or 'None', but got "
                         f"{type(name).__name__}")


def _check_requires_grad(requires_grad):
    """MindSpore: ``requires_grad`` is a bool, else a TypeError."""
    if not isinstance(requires_grad, (bool, np.bool_)):
        raise TypeError(f"The argument `requires_grad` must be bool type, got {type(requires_grad).__name__}")


class Parameter(nnx.Param):
    """MindSpore's Parameter: ``Parameter(default_input, name=None, requires_grad=True)``.

    An ``nnx.Param`` whose metadata carries MindSpore's ``name`` (the dotted path once the
    parameter sits in a Cell) and ``requires_grad``. Trainable and frozen parameters share this
    class; the train step differentiates only those with ``requires_grad=True``.

    >>> p = Parameter(Tensor(np.zeros(3)), name="bias")
    >>> p.name, p.shape
    ('bias', (3,))
    """

    def __init__(self, default_input=None, name=None, requires_grad=True, layerwise_parallel=False,
                 parallel_optimizer=True, **metadata):
        value = default_input._array() if isinstance(default_input, ArrayHolder) else default_input
        value = _as_array(value)
        _check_param_name(name)
        _check_requires_grad(requires_grad)
        metadata.setdefault("name", name or "Parameter")
        metadata.setdefault("requires_grad", bool(requires_grad))
        super().__init__(value, **metadata)

    # MindSpore's attribute names over nnx metadata
    @property
    def name(self):
        return self.get_metadata("name")

    @name.setter
    def name(self, value):
        _check_param_name(value)
        self.set_metadata("name", value)

    @property
    def requires_grad(self):
        return self.get_metadata("requires_grad")

    @requires_grad.setter
    def requires_grad(self, value):
        _check_requires_grad(value)
        self.set_metadata("requires_grad", bool(value))

    def _array(self):
        return self.get_value()

    @property
    def data(self):
        return self

    @property
    def shape(self):
        return tuple(self.get_value().shape)

    @property
    def dtype(self):
        return mstype.from_numpy(self.get_value().dtype)

    @property
    def ndim(self):
        return self.get_value().ndim

    def asnumpy(self):
        return np.asarray(self.get_value())

    def set_data(self, data, slice_shape=False):
        """Replace the value (MindSpore's ``set_data``); the dtype follows ``data``."""
        self.set_value(_as_array(data))
        return self

    def init_data(self, layout=None, set_sliced=False):
        """MindSpore's ``init_data``: an msjax Parameter always holds its data; returns itself."""
        return self

    def clone(self, init="same"):
        return Parameter(self.get_value(), name=self.name, requires_grad=self.requires_grad)

    # ``self.w += x`` in construct updates the Parameter itself (MindSpore's AssignAdd/AssignSub/
    # Assign rules: the value takes the parameter's dtype and shape), as in MindSpore's GRAPH_MODE
    def __iadd__(self, other):
        assign_add(self, other)
        return self

    def __isub__(self, other):
        assign_sub(self, other)
        return self

    def __imul__(self, other):
        assign(self, jnp.multiply(self.get_value(), _as_array(other)))
        return self

    def __itruediv__(self, other):
        assign(self, jnp.true_divide(self.get_value(), _as_array(other)))
        return self

    def __array__(self, dtype=None, copy=None):
        out = np.asarray(self.get_value())
        return out if dtype is None else out.astype(dtype)

    def __repr__(self):
        return (f"Parameter(name={self.name}, shape={list(self.shape)}, dtype={self.dtype}, "
                f"requires_grad={self.requires_grad})")


ArrayHolder.register(Parameter)


def host_parameters(entries) -> list:
    """``[Parameter(value, name=name, **metadata) for name, value, metadata in entries]`` for the
    many host arrays (``np.ndarray``) of a load, without flax's general ``Variable.__init__`` for
    each one (~15 us: context look-ups, hook scans, a pytree walk).

    The first entry of each metadata key set is built by ``__init__``; the rest copy what
    ``__init__`` added to its metadata (nnx's ``hijax``/``ref``/``eager_sharding`` defaults: same
    values, same order), so each Parameter holds exactly what ``__init__`` would give it. Where
    ``__init__`` does more than store (class hooks, a Ref, a hijax Variable), or for a value that
    is not an ``np.ndarray`` or a name that is not a non-empty str, ``__init__`` builds it.
    """
    out, added = [], {}
    for name, value, metadata in entries:
        plain = type(value) is np.ndarray and isinstance(name, str) and bool(name)
        keys = tuple(metadata)
        extra = added.get(keys) if plain else None
        if not extra:
            param = Parameter(value, name=name, **metadata)
            if plain and keys not in added:
                added[keys] = _added_by_init(param, value, metadata)
        else:
            param = object.__new__(Parameter)
            meta = dict(metadata)
            meta["name"] = name
            meta["requires_grad"] = True
            meta.update(extra)
            object.__setattr__(param, "_trace_state", _TraceState())
            object.__setattr__(param, "_var_metadata", meta)
            object.__setattr__(param, "_raw_value", value)
        out.append(param)
    return out


_NNX_DEFAULTS = {"hijax": False, "ref": False}


def _added_by_init(param, value, metadata):
    """What ``__init__`` added to ``metadata`` after name and requires_grad (a non-empty dict, in
    order), or None when it did more than store ``value`` with nnx's plain defaults."""
    if type(param) is not Parameter:        # a hijax Variable in its place
        return None
    meta = param._var_metadata
    given = dict(metadata, name=param.name, requires_grad=True)
    if (param._raw_value is not value
            or list(meta)[:len(given)] != list(given) or any(meta[k] is not v for k, v in given.items())):
        return None
    extra = {k: v for k, v in meta.items() if k not in given}
    if set(extra) != {"hijax", "ref", "eager_sharding"} or any(extra[k] is not v for k, v in _NNX_DEFAULTS.items()):
        return None
    return extra


# ---------------------------------------------------------------- in-place Parameter updates
def _kind(dtype):
    return 0 if dtype == np.bool_ else 1 if dtype.kind in "iu" else 2 if dtype.kind == "f" else 3


def _promoted(a, b):
    """MindSpore's implicit type promotion of two tensor dtypes (bool < int < float < complex;
    within a kind the wider one; float16 with bfloat16 is float32)."""
    a, b = np.dtype(a), np.dtype(b)
    if a == b:
        return a
    if _kind(a) != _kind(b):
        return a if _kind(a) > _kind(b) else b
    if a.itemsize == b.itemsize and _kind(a) == 2:
        return np.dtype(np.float32)
    return np.promote_types(a, b)


def assign_value(prim, variable, value):
    """``value`` as the new array of Parameter ``variable`` under MindSpore's Assign rules:
    cast to the parameter's dtype when that needs no conversion of the parameter (TypeError
    otherwise), with the parameter's rank and shape (ValueError otherwise)."""
    old = variable.get_value()
    dtype = np.dtype(old.dtype)
    value = unwrap(value)
    if isinstance(value, (bool, int, float)) and not isinstance(value, np.generic):
        if isinstance(value, float) and _kind(dtype) < 2:
            raise TypeError(_conversion_error(dtype, np.dtype(np.float32)))
        value = np.asarray(value, dtype)
    elif not hasattr(value, "dtype"):
        raise TypeError(f"For '{prim}', the argument 'value' must be a Tensor or a number, "
                        f"but got {type(value).__name__}.")
    target = _promoted(dtype, value.dtype)
    if target != dtype:
        raise TypeError(_conversion_error(dtype, target))
    old_shape, new_shape = tuple(np.shape(old)), tuple(np.shape(value))
    if len(old_shape) != len(new_shape):
        raise ValueError(f"For '{prim}','value' must have the same rank as 'variable'. But got 'value' "
                         f"rank: {len(new_shape)}, 'variable' rank: {len(old_shape)}.")
    if old_shape != new_shape:
        raise ValueError(f"For '{prim}','value' must have the same shape as 'variable'. But got 'value' "
                         f"shape: {_shape_text(new_shape)}, 'variable' shape: {_shape_text(old_shape)}.")
    return value if value.dtype == dtype else value.astype(dtype)


def _conversion_error(dtype, target):
    return ("Data type conversion is not supported for a 'Parameter', nor for the input tensor of an "
            f"in-place operator, so data type {mstype.from_numpy(dtype)}, which cannot be converted to "
            f"data type {mstype.from_numpy(target)} automatically.")


def _shape_text(shape):
    return "(" + ", ".join(str(d) for d in shape) + ")"


def _updater(prim, combine):
    def op(variable, value):
        if not isinstance(variable, Parameter):
            raise TypeError(f"For '{prim}', the argument 'variable' must be a Parameter, "
                            f"but got {type(variable).__name__}.")
        new = combine(variable.get_value(), assign_value(prim, variable, value))
        variable.set_value(new)       # inside construct under jit: the traced cell's Variable
        if isinstance(new, (jax.Array, np.ndarray)) and not isinstance(new, jax.core.Tracer):
            return Tensor(new)
        return new
    op.__name__ = op.__qualname__ = {"Assign": "assign", "AssignAdd": "assign_add",
                                     "AssignSub": "assign_sub"}[prim]
    op.__doc__ = (f"MindSpore's ``ops.{op.__name__}(variable, value)``: update Parameter ``variable`` "
                  f"in place ({prim}) and return its new value. In GRAPH_MODE the update is written "
                  f"back into the Parameter after the call, and ``export`` keeps it (MINDIR).")
    return op


assign = _updater("Assign", lambda old, value: value)
assign_add = _updater("AssignAdd", lambda old, value: jnp.add(old, value).astype(old.dtype))
assign_sub = _updater("AssignSub", lambda old, value: jnp.subtract(old, value).astype(old.dtype))
