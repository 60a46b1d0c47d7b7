"""Pytree key paths <-> MindSpore dotted names: one pure, invertible mapping with a rename table.

A leaf's path (nnx State keys, optax state fields, dict keys, sequence indices) becomes its parts
joined by "."; a rename table rewrites a leading run of parts (the ``moments`` transform's
``trace`` field in Momentum's named optax chain -> ``moments``). Each optimizer keeps its table as
``STATE_TABLE`` (``msjax.nn.optim``), the only copy. ``unflatten`` inverts ``flatten`` against a
template tree of the same structure, and reports every missing and unexpected name at once.

>>> flatten({"fc": {"weight": 1, "bias": 2}})
OrderedDict([('fc.bias', 2), ('fc.weight', 1)])
>>> flatten(opt_state, renames=nn.Momentum.STATE_TABLE)         # -> "moments.fc.weight", ...
"""
from __future__ import annotations

import re
from collections import OrderedDict

import jax
from flax import nnx

from msjax.errors import ParameterLoadError

def key_str(key) -> str:
    """One pytree key as a name part: DictKey 'fc' -> 'fc', SequenceKey 0 -> '0', attr -> name."""
    for attr in ("key", "name", "idx"):
        if hasattr(key, attr) and not isinstance(key, (str, int)):
            return str(getattr(key, attr))
    return str(key)


def _canon(path: str) -> tuple[str, ...]:
    """Split a rename-table key ('moments.trace', "['fc'].weight", '[2].trace') into parts."""
    path = re.sub(r"\[['\"]?([^\]'\"]*)['\"]?\]", r".\1", path)
    return tuple(p for p in path.split(".") if p)


def _rename_table(renames):
    table = [(_canon(src), tuple(p for p in dst.split(".") if p)) for src, dst in (renames or {}).items()]
    return sorted(table, key=lambda item: -len(item[0]))


def path_to_name(path, renames=None, prefix: str = "") -> str:
    """The dotted name of one key path (a tuple of pytree keys or plain strings/ints)."""
    parts = tuple(key_str(k) for k in path)
    for src, dst in _rename_table(renames):
        if parts[:len(src)] == src:
            parts = dst + parts[len(src):]
            break
    return prefix + ".".join(parts)


def _leaves(tree):
    is_var = lambda x: isinstance(x, nnx.Variable)  # noqa: E731
    return jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_var)


def _value(leaf):
    return leaf.get_value() if isinstance(leaf, nnx.Variable) else leaf


def flatten(tree, prefix: str = "", renames=None) -> OrderedDict[str, object]:
    """``OrderedDict`` name -> leaf value (nnx Variables are unwrapped), in pytree order.

    Raises ParameterLoadError if two paths map to one name (the mapping must stay invertible).
    """
    out = OrderedDict()
    for path, leaf in _leaves(tree)[0]:
        name = path_to_name(path, renames, prefix)
        if name in out:
            raise ParameterLoadError(f"two leaves map to the name {name!r}; add a rename to tell them apart")
        out[name] = _value(leaf)
    return out


def unflatten(names_dict, like, prefix: str = "", renames=None):
    """The tree shaped like ``like`` whose leaves come from ``names_dict`` by name.

    nnx Variables in ``like`` are rebuilt around the new values; values may be Parameters,
    Tensors or arrays. Every missing and unexpected name is reported in one error.
    """
    leaves, treedef = _leaves(like)
    names = [path_to_name(path, renames, prefix) for path, _ in leaves]
    missing = [n for n in names if n not in names_dict]
    unexpected = [n for n in names_dict if n not in set(names)]
    if missing or unexpected:
        raise ParameterLoadError(f"names do not match the template: missing {missing}, "
                                 f"unexpected {unexpected}")
    new = []
    for (_, leaf), name in zip(leaves, names):
        value = names_dict[name]
        if hasattr(value, "asnumpy") and not isinstance(value, jax.Array):
            value = value.get_value() if isinstance(value, nnx.Variable) else value.asnumpy()
        new.append(leaf.replace(value) if isinstance(leaf, nnx.Variable) else value)
    return jax.tree_util.tree_unflatten(treedef, new)


def name_to_path(name: str, like, prefix: str = "", renames=None) -> tuple:
    """The key path in ``like`` whose dotted name is ``name`` (the inverse of ``path_to_name``)."""
    for path, _ in _leaves(like)[0]:
        if path_to_name(path, renames, prefix) == name:
            return path
    raise KeyError(name)
