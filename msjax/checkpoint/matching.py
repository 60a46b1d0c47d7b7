"""``load_param_into_net``: match a name -> Parameter dict to a Cell's parameters, MindSpore's way.

Exact names first (``param.name``, via ``net.parameters_and_names()``). Unless ``strict_load``,
MindSpore's prefix rule then runs: for the first unloaded parameter whose name ends some unused
dict name, take the extra leading text as a prefix and load every unloaded parameter found under
that prefix; repeat while new prefixes turn up. Unlike MindSpore, two candidate dict names for one
parameter are an error naming both, never a silent pick. Every mismatch (shape, dtype, ambiguous
name) is collected first and raised in one ``ParameterLoadError`` listing them all, the first one's
message as its first line; nothing is assigned then. Values are assigned as given (host numpy arrays
stay numpy: no device copy).

>>> param_not_load, ckpt_not_load = load_param_into_net(net, load_checkpoint("net.ckpt"))
"""
from __future__ import annotations

import numpy as np

from msjax.checkpoint import items
from msjax.common import dtype as mstype
from msjax.common.tensor import Parameter, Tensor
from msjax.errors import ParameterLoadError


def _array(value):
    if isinstance(value, Parameter):
        return value.get_value()
    if isinstance(value, Tensor):
        return value._array()
    return value


def _source(new, file):
    if file:
        return file
    found = new.get_metadata("ckpt_file", None) if isinstance(new, Parameter) else None
    return found or "parameter_dict"


def _fit(param, new, dict_name, strict_load, file):
    """(value for ``param``, None), or (None, why not): same shape (or MindSpore's trailing-1
    reshape), same dtype (or float<->float / int<->int conversion when not strict)."""
    value = _array(new)
    if not hasattr(value, "shape"):
        value = np.asarray(value)
    dtype = param.get_value().dtype
    found = items.problem(param.name, dict_name, param.shape, dtype, value.shape, value.dtype, strict_load,
                          _source(new, file))
    if found:
        return None, found
    if tuple(value.shape) != tuple(param.shape):
        value = np.asarray(value).reshape(tuple(param.shape))
    have = mstype.from_numpy(dtype)
    if have is not mstype.from_numpy(value.dtype):
        value = np.asarray(value).astype(have.numpy)
    return value, None


class _Plan:
    """The assignments a load will make and the problems that stop it."""

    def __init__(self, strict_load, file):
        self.strict_load, self.file = strict_load, file
        self.assign, self.problems = [], []

    def take(self, param, new, dict_name):
        value, problem = _fit(param, new, dict_name, self.strict_load, self.file)
        if problem:
            self.problems.append(problem)
        else:
            self.assign.append((param, value))

    def note(self, problem):
        if problem not in self.problems:
            self.problems.append(problem)


def load_param_into_net(net, parameter_dict, strict_load=False, remove_redundancy=False, *, _file=None):
    """Load ``parameter_dict`` (name -> Parameter) into ``net``; return ``(param_not_load,
    ckpt_not_load)``: the net's parameter names not loaded and the dict's names not used.

    ``net`` is a Cell, or a plain ``flax.nnx.Module`` whose variables get MindSpore's names and
    layouts (``msjax.checkpoint.nnx_interop``; ``load_param_into_nnx`` takes a ``name_fn``).
    ``remove_redundancy`` (MindSpore's data-parallel de-duplication) needs a parallel run, which
    msjax has not: ``True`` is the TypeError MindSpore raises in a stand-alone run. Every mismatch
    is reported in one ``ParameterLoadError`` (MindSpore stops at the first), before any parameter
    is assigned.

    >>> param_not_load, ckpt_not_load = load_param_into_net(net, param_dict)
    """
    if hasattr(net, "parameters_and_names"):
        params = None
    else:
        from msjax.checkpoint import nnx_interop      # imported here: it imports this module
        if not nnx_interop.is_plain_module(net):
            raise TypeError(f"For 'load_param_into_net', 'net' must be a Cell or a flax.nnx.Module, got "
                            f"{type(net).__name__}")
        params = nnx_interop.nnx_targets(net)
    check_dict(parameter_dict, strict_load, "load_param_into_net", remove_redundancy)
    if remove_redundancy:
        raise TypeError("The deduplication feature for loading checkpoint can only be used in parallel "
                        "scenarios, but got stand_alone.")
    if params is None:
        params = [p for _, p in net.parameters_and_names()]
    return load_params(params, parameter_dict, strict_load, _file)


def check_dict(parameter_dict, strict_load, caller, remove_redundancy=False):
    """MindSpore's argument checks of a load, in its order."""
    if not isinstance(parameter_dict, dict):
        raise TypeError(f"For '{caller}', 'parameter_dict' must be a dict, got "
                        f"{type(parameter_dict).__name__}")
    if not isinstance(strict_load, bool):
        raise TypeError(f"For '{caller}', 'strict_load' must be a bool, got {strict_load!r}")
    if not isinstance(remove_redundancy, bool):
        raise ValueError(  # noqa: TRY004  (MindSpore raises ValueError here)
            f"For '{caller}', the parameter 'remove_redundancy' must be bool, "
            f"got {remove_redundancy!r}")
    for key, value in parameter_dict.items():
        if not isinstance(key, str) or not isinstance(value, (Parameter, Tensor, str, np.ndarray)) \
                and not hasattr(value, "shape"):
            raise TypeError(f"For '{caller}', parameter_dict entries must be str -> "
                            f"Parameter, got {key!r}: {type(value).__name__}")


def load_params(params, parameter_dict, strict_load=False, file=None):
    """The match itself, on checked arguments (``check_dict``): ``params`` are objects with
    ``name``, ``shape``, ``get_value()`` and ``set_value()`` (Parameters, or
    ``nnx_interop.NnxTarget``); returns ``(param_not_load, ckpt_not_load)`` or raises one
    ``ParameterLoadError`` for every mismatch, assigning nothing."""
    plan = _Plan(strict_load, file)
    used = set()
    param_not_load = []
    for param in params:
        new = parameter_dict.get(param.name)
        if new is None:
            param_not_load.append(param.name)
            continue
        if isinstance(new, str):
            continue
        plan.take(param, new, param.name)
        used.add(param.name)
    if param_not_load and not strict_load:
        _load_by_prefix(params, parameter_dict, param_not_load, used, plan)
    if plan.problems:
        raise ParameterLoadError(items.problems_message(plan.problems))
    for param, value in plan.assign:
        param.set_value(value)
    return param_not_load, [n for n in parameter_dict if n not in used]


def _candidates(name, parameter_dict, used, plan):
    """Unused dict names that end with ``name``; more than one is a problem naming them (and
    none is taken)."""
    found = [d for d in parameter_dict
             if d not in used and d != name and d.endswith(name) and not isinstance(parameter_dict[d], str)]
    if len(found) > 1:
        plan.note(f"parameter {name!r} matches several checkpoint names by suffix: {found[0]!r} and "
                  f"{found[1]!r}{' (and more)' if len(found) > 2 else ''}; load with strict_load=True after "
                  f"renaming, or select one with specify_prefix/filter_prefix/choice_func")
        return []
    return found


def _load_by_prefix(params, parameter_dict, param_not_load, used, plan):
    """MindSpore's ``_load_dismatch_prefix_params`` with ambiguity reported instead of guessed."""
    tried = set()
    while param_not_load:
        prefix = None
        for name in param_not_load:
            found = _candidates(name, parameter_dict, used, plan)
            if found and found[0][:-len(name)] not in tried:
                prefix = found[0][:-len(name)]
                break
        if prefix is None:
            return
        tried.add(prefix)
        for param in params:
            dict_name = prefix + param.name
            if param.name in param_not_load and dict_name in parameter_dict:
                if not _candidates(param.name, parameter_dict, used, plan):
                    continue                                    # ambiguous: noted, not taken
                plan.take(param, parameter_dict[dict_name], dict_name)
                used.add(dict_name)
                param_not_load.remove(param.name)
