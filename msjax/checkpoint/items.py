"""The item layer every format shares: what a save takes off the live network, what can be stored,
and how a stored value is made to fit a network's parameter.

Save side: ``entries`` lists a ``save_obj`` (Cell, list, dict) and ``append_dict`` in MindSpore's
order; ``snapshot`` turns them into ``name -> host array | jax.Array | str`` plus stored dtype
strings (``Int4``), checking every entry is storable and raising one error for all that are not.
Load side: ``to_parameters`` wraps what a reader returns as Parameters (the dtype string kept when
numpy cannot tell it), and ``problem`` states MindSpore's reshape/convert rule for one parameter.

>>> named, types = snapshot(entries(net, None), copy=False)
>>> problem("fc.weight", "fc.weight", (3, 4), np.float32, (3, 4, 1), np.float16, False, "a.ckpt")
"""
from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

import jax
import numpy as np

from msjax.checkpoint.raw import storable as _storable
from msjax.checkpoint.raw import stored_type as _stored_type
from msjax.common import dtype as mstype
from msjax.common.parameter import host_parameters
from msjax.common.tensor import Parameter, Tensor

__all__ = ["TYPE_META", "Snapshot", "entries", "host_value", "snapshot", "to_parameters", "parameter",
           "reshapable", "convertible", "problem", "FLOATS", "INTS"]

TYPE_META = "ms_dtype"      # Parameter metadata: the stored dtype string when numpy cannot tell it
FLOATS = frozenset({mstype.float16, mstype.float32, mstype.float64, mstype.bfloat16})
INTS = frozenset({mstype.int8, mstype.int16, mstype.int32, mstype.int64})


# --------------------------------------------------------------------------- save side

def _is_cell(obj):
    return hasattr(obj, "parameters_and_names") and hasattr(obj, "construct")


def _list_entries(save_obj):
    items = []
    for item in save_obj:
        if isinstance(item, dict):
            if "name" not in item or "data" not in item:
                raise TypeError(f"For save_checkpoint, a list entry must be {{'name': ..., 'data': ...}}, "
                                f"got keys {sorted(item)}")
            if not isinstance(item["name"], str):
                raise TypeError(f"For save_checkpoint, 'name' must be a str, got {item['name']!r}")
            items.append((item["name"], item["data"]))
        elif isinstance(item, Parameter):
            items.append((item.name, item))
        else:
            raise TypeError(f"For save_checkpoint, list entries must be Parameters or "
                            f"{{'name', 'data'}} dicts, got {type(item).__name__}")
    return items


def _append_value(name, value):
    if isinstance(value, bool):
        return np.array(value, np.bool_)
    if isinstance(value, int):
        return np.array(value, np.int64)
    if isinstance(value, float):
        return np.array(value, np.float32)
    if isinstance(value, (str, Parameter, Tensor)):
        return value
    raise TypeError(f"For 'save_checkpoint', append_dict[{name!r}] must be int, float, bool, str, "
                    f"Parameter or Tensor, got {type(value).__name__}")


def entries(save_obj, choice_func, append_dict=None) -> list:
    """(name, value) pairs of ``save_obj`` in MindSpore's order, filtered by ``choice_func``, then
    ``append_dict``'s entries (ints, floats and bools as 0-d Int64/Float32/Bool arrays)."""
    if _is_cell(save_obj):
        items = [(p.name, p) for _, p in save_obj.parameters_and_names()]
    elif isinstance(save_obj, dict):
        items = list(save_obj.items())
        bad = [k for k, _ in items if not isinstance(k, str)]
        if bad:
            raise TypeError(f"For save_checkpoint, dict keys must be str, got {bad[0]!r}"
                            + (f" (and {bad[1:]!r})" if len(bad) > 1 else ""))
    elif isinstance(save_obj, (list, tuple)):
        items = _list_entries(save_obj)
    else:
        raise TypeError(f"For 'save_checkpoint', 'save_obj' must be a Cell, list or dict, got "
                        f"{type(save_obj).__name__}")
    items = [(n, v) for n, v in items if choice_func is None or choice_func(n)]
    if append_dict is not None:
        if not isinstance(append_dict, dict):
            raise TypeError(f"For 'save_checkpoint', 'append_dict' must be a dict, got "
                            f"{type(append_dict).__name__}")
        for key, value in append_dict.items():
            if not isinstance(key, str):
                raise TypeError(f"For 'save_checkpoint', append_dict keys must be str, got {key!r}")
            items.append((key, _append_value(key, value)))
    return items


def host_value(value, name, caller="save_checkpoint"):
    """What one entry stores: its array (or str) and its stored dtype string (None: numpy's)."""
    if isinstance(value, str):
        return value, None
    if isinstance(value, Parameter):
        return value.get_value(), value.get_metadata(TYPE_META, None)
    if isinstance(value, Tensor):
        return value._array(), None
    if isinstance(value, (np.ndarray, jax.Array, np.generic)):
        return value, None
    raise TypeError(f"{caller}: {_not_storable(name, value)}")


def _not_storable(name, value):
    if isinstance(value, np.dtype):
        return f"parameter {name!r} has dtype {value}, which MindSpore cannot store"
    return (f"entry {name!r} is a {type(value).__name__}; expected a Parameter, Tensor, jax or "
            f"numpy array (or str)")


class Snapshot(NamedTuple):
    """What a save writes: name -> array or str in save order, and name -> stored dtype string."""
    named: OrderedDict
    types: dict


def snapshot(items, *, copy: bool, keep_device: bool = False, caller: str = "save_checkpoint") -> Snapshot:
    """Take ``items`` (from ``entries``) off the live network.

    ``copy`` detaches mutable numpy arrays (a background write must not see later edits);
    ``keep_device`` keeps ``jax.Array`` values (and their sharding) instead of a host view. A name
    given twice keeps its first place and its last value. Every entry that cannot be stored (no
    MindSpore dtype, or not an array at all) is named in one TypeError.
    """
    named, types, bad = OrderedDict(), {}, {}
    for name, value in items:
        bad.pop(name, None)
        try:
            data, override = host_value(value, name, caller)
        except TypeError:
            bad[name] = value
            continue
        if not isinstance(data, str):
            if isinstance(data, np.ndarray):
                data = data.copy() if copy and data.flags.writeable else data
            elif not (keep_device and isinstance(data, jax.Array)):
                data = np.asarray(data)     # jax arrays are immutable; a host view keeps the buffer
            if not _storable(data.dtype):
                bad[name] = data.dtype
        named[name] = data
        types.pop(name, None)
        if override:
            types[name] = override
    if bad:
        (name, value), *more = bad.items()
        message = f"{caller}: {_not_storable(name, value)}"
        if more:
            message += f"; {len(more)} more cannot be stored: " + "; ".join(_not_storable(n, v) for n, v in more)
        raise TypeError(message)
    return Snapshot(named, types)


# --------------------------------------------------------------------------- load side

def _metadata(file, tensor_type=None) -> dict:
    meta = {"ckpt_file": file}
    if tensor_type:
        meta[TYPE_META] = tensor_type
    return meta


def parameter(name, value, file, tensor_type=None) -> Parameter:
    """A loaded Parameter: ``ckpt_file`` names its file; ``tensor_type`` is kept when it is not
    what numpy's dtype says (``Int4`` in int8 bytes)."""
    return Parameter(value, name=name, **_metadata(file, tensor_type))


def to_parameters(named, types, file) -> OrderedDict:
    """name -> Parameter (str stays str) for what a reader returned; ``types`` (name -> stored
    dtype string) is checked against each array's dtype. The Parameters are built together
    (``host_parameters``), each as ``parameter`` builds it."""
    out, arrays = OrderedDict(), []
    for name, value in named.items():
        out[name] = value            # keeps the file's order; str entries stay str
        if isinstance(value, str):
            continue
        stored = _stored_type(name, value, types.get(name), file)
        keep = stored is not None and stored is not mstype.from_numpy(value.dtype)
        arrays.append((name, value, _metadata(file, stored.ckpt if keep else None)))
    for (name, _, _), param in zip(arrays, host_parameters(arrays)):
        out[name] = param
    return out


def reshapable(shape, stored) -> bool:
    """MindSpore's one reshape: the stored shape is the network's with trailing 1s."""
    shape, stored = tuple(shape), tuple(stored)
    return len(stored) > len(shape) and stored[:len(shape)] == shape and all(d == 1 for d in stored[len(shape):])


def convertible(have, got) -> bool:
    """MindSpore's non-strict conversions: float <-> float and int <-> int."""
    return {have, got} <= FLOATS or {have, got} <= INTS


def problem(name, dict_name, shape, dtype, new_shape, new_dtype, strict_load, source) -> str | None:
    """Why the value ``dict_name`` (shape/dtype ``new_*``, from ``source``) cannot load into the
    network's parameter ``name``; None when it can (maybe after a reshape or conversion).
    ``dtype=None`` checks the shape only."""
    shape, new_shape = tuple(shape), tuple(new_shape)
    if shape != new_shape and not reshapable(shape, new_shape):
        return (f"parameter {name!r} has shape {shape} in the network but {dict_name!r} has "
                f"shape {new_shape} in {source}; check that the checkpoint belongs to this network")
    if dtype is None:
        return None
    have, got = mstype.from_numpy(dtype), mstype.from_numpy(new_dtype)
    if have is not got and (strict_load or not convertible(have, got)):
        return (f"parameter {name!r} has dtype {have} in the network but {dict_name!r} has "
                f"dtype {got} in {source}"
                + ("" if strict_load else "; only float<->float and int<->int are converted"))
    return None


def problems_message(problems) -> str:
    """One message for every problem: the first as it reads alone, then the rest, one a line."""
    first, *more = problems
    if not more:
        return first
    return (f"{first}\n{len(more)} more parameter(s) do not match either:\n"
            + "\n".join(f"  {p}" for p in more))
