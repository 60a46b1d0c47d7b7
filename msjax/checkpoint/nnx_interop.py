"""MindSpore checkpoints for any plain ``flax.nnx.Module`` (one that is not an msjax Cell).

Each nnx Variable (``nnx.Param``, ``nnx.BatchStat`` and other state; rng state, caches and sown
intermediates are left out) gets a MindSpore name: by default its nnx path joined by "."
(``blocks.0.conv.kernel``; ``nnx.List`` indices and ``nnx.Dict`` keys are parts, as in a
``SequentialCell``/``CellList``), its last part renamed and its value re-laid out where MindSpore's
layer of the same kind differs (MindSpore 2.10's names and layouts):

=================  ==========================================  =========================================
nnx layer          nnx names                                   MindSpore names (layout)
=================  ==========================================  =========================================
``Linear``         kernel (in, out), bias                      ``nn.Dense`` weight (out, in), bias
``Conv`` 2d / 3d   kernel (*k, in/g, out), bias                ``nn.Conv2d/3d`` weight (out, in/g, *k)
``Conv`` 1d        kernel (k, in/g, out), bias                 ``nn.Conv1d`` weight (out, in/g, 1, k)
``BatchNorm``      scale, bias, mean, var                      gamma, beta, moving_mean, moving_variance
``LayerNorm``      scale, bias                                 gamma, beta
``GroupNorm``      scale, bias                                 gamma, beta
``Embed``          embedding (num, features)                   ``nn.Embedding`` embedding_table
``ConvTranspose``  kernel (kh, kw, in, out), bias              ``nn.Conv2dTranspose`` weight (in, out,
2d                 (``transpose_kernel=True``: (kh, kw, out,   kh, kw), bias; flax's kernel flipped in
                   in), not flipped)                           space, as MindSpore's is the conv gradient
=================  ==========================================  =========================================

A BatchNorm that is the root module is saved as MindSpore saves a lone ``nn.BatchNorm2d``: mean,
variance, gamma, beta. ``name_fn(path) -> str | None`` replaces the default name: ``path`` is the
nnx path as a tuple of str/int keys (``("blocks", 0, "bn", "scale")``), None leaves the variable
out of saves and loads; the layouts above still apply. Entries come in nnx's path order (sorted:
nnx transforms rebuild a module's attributes sorted, so the order they were set in is lost), each
layer's in MindSpore's order; MindSpore loads by name. Other layers (1d/3d ``ConvTranspose``,
``LinearGeneral``, ...) keep their nnx names and layouts, so a strict MindSpore load reports them.

>>> msjax.save_checkpoint(model, "model.ckpt")            # model: a plain nnx.Module
>>> load_param_into_nnx(model, msjax.load_checkpoint("model.ckpt"), strict_load=True)
([], [])
"""
from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from msjax.checkpoint import items, matching
from msjax.common.tensor import Parameter
from msjax.errors import ParameterLoadError

__all__ = ["is_plain_module", "nnx_parameters", "load_param_into_nnx"]

_SKIPPED = (nnx.RngState, nnx.Intermediate, nnx.Cache)      # not model state MindSpore would keep


class Layout(NamedTuple):
    """How one value is laid out in MindSpore: ``to_ms`` and its inverse ``from_ms`` (array methods
    only, so they serve numpy and jax arrays and jax.eval_shape alike)."""
    to_ms: object
    from_ms: object


_SAME = Layout(lambda a: a, lambda a: a)
_DENSE = Layout(lambda a: a.T, lambda a: a.T)


def _conv(kernel_ndim):
    """(*k, in, out) <-> (out, in, *k); a 1d kernel is (out, in, 1, k) in MindSpore's Conv1d."""
    n = kernel_ndim - 2
    perm = (n + 1, n, *range(n))
    back = tuple(int(i) for i in np.argsort(perm))
    if n == 1:
        return Layout(lambda a: a.transpose(perm)[:, :, None, :], lambda a: a[:, :, 0, :].transpose(back))
    return Layout(lambda a: a.transpose(perm), lambda a: a.transpose(back))


def _conv_transpose(owner):
    """flax's ConvTranspose (a dilated conv, kernel unflipped) <-> MindSpore's Conv2dTranspose (the
    gradient of a conv): spatial flip, unless ``transpose_kernel`` already does it."""
    if owner.transpose_kernel:
        return Layout(lambda a: a.transpose(3, 2, 0, 1), lambda a: a.transpose(2, 3, 1, 0))
    return Layout(lambda a: a[::-1, ::-1].transpose(2, 3, 0, 1), lambda a: a.transpose(2, 3, 0, 1)[::-1, ::-1])


#: nnx layer -> {nnx attribute: MindSpore name}, in MindSpore's order; the first class that fits wins
RULES = (
    (nnx.Linear, {"kernel": "weight", "bias": "bias"}),
    (nnx.Conv, {"kernel": "weight", "bias": "bias"}),
    (nnx.BatchNorm, {"mean": "moving_mean", "var": "moving_variance", "scale": "gamma", "bias": "beta"}),
    (nnx.LayerNorm, {"scale": "gamma", "bias": "beta"}),
    (nnx.GroupNorm, {"scale": "gamma", "bias": "beta"}),
    (nnx.Embed, {"embedding": "embedding_table"}),
    (nnx.ConvTranspose, {"kernel": "weight", "bias": "bias"}),
)
_ROOT_BATCHNORM = {"moving_mean": "mean", "moving_variance": "variance"}


def _rule(owner):
    if isinstance(owner, nnx.ConvTranspose) and owner.kernel.get_value().ndim != 4:
        return {}                                          # 1d/3d: not checked against MindSpore
    return next((names for cls, names in RULES if isinstance(owner, cls)), {})


def _layout(owner, attr, ndim):
    if isinstance(owner, nnx.Linear) and attr == "kernel":
        return _DENSE
    if isinstance(owner, nnx.Conv) and attr == "kernel":
        return _conv(ndim)
    if isinstance(owner, nnx.ConvTranspose) and attr == "kernel" and ndim == 4:
        return _conv_transpose(owner)
    return _SAME


def is_plain_module(obj) -> bool:
    """True for an ``nnx.Module`` that is not an msjax Cell (Cells keep their own names)."""
    return isinstance(obj, nnx.Module) and not items._is_cell(obj)


class NnxTarget:
    """One nnx Variable under its MindSpore name and layout: what ``load_param_into_net``'s
    matching reads (``name``, ``shape``, ``get_value``) and writes (``set_value``)."""

    def __init__(self, name, path, variable, layout):
        self.name, self.path, self.variable, self.layout = name, path, variable, layout

    @property
    def shape(self):
        value = self.variable.get_value()
        return tuple(jax.eval_shape(self.layout.to_ms, jax.ShapeDtypeStruct(value.shape, value.dtype)).shape)

    def get_value(self):
        return self.layout.to_ms(self.variable.get_value())

    def set_value(self, value):
        self.variable.set_value(jnp.asarray(self.layout.from_ms(np.asarray(value))))

    def __repr__(self):
        return f"NnxTarget(name={self.name!r}, path={self.path!r}, shape={self.shape})"


def _default_name(path, owner, attr, rule):
    name = rule.get(attr, attr)
    if not path[:-1] and isinstance(owner, nnx.BatchNorm):
        name = _ROOT_BATCHNORM.get(name, name)
    return ".".join(str(part) for part in (*path[:-1], name))


def nnx_targets(module, name_fn=None) -> list[NnxTarget]:
    """The ``NnxTarget`` of each saved Variable of ``module``, in save order (see the module doc).

    Two variables given one name are a ParameterLoadError naming both paths."""
    if not isinstance(module, nnx.Module):
        raise TypeError(f"expected a flax.nnx.Module, got {type(module).__name__}")
    if name_fn is not None and not callable(name_fn):
        raise TypeError(f"'name_fn' must be a callable path -> str | None, got {type(name_fn).__name__}")
    nodes, found = {}, []
    for path, node in nnx.iter_graph(module):
        nodes[tuple(path)] = node
        if isinstance(node, nnx.Variable) and not isinstance(node, _SKIPPED):
            found.append((tuple(path), node))
    targets, seen = [], {}
    for path, variable in found:
        owner, attr = nodes.get(path[:-1]), str(path[-1])
        rule = _rule(owner)
        name = _default_name(path, owner, attr, rule) if name_fn is None else name_fn(path)
        if name is None:
            continue
        if not isinstance(name, str) or not name:
            raise TypeError(f"name_fn must return a non-empty str or None, got {name!r} for nnx path {path}")
        if name in seen:
            raise ParameterLoadError(f"nnx paths {seen[name]} and {path} both map to the checkpoint name "
                                     f"{name!r}; give them apart with name_fn")
        seen[name] = path
        order = list(rule).index(attr) if attr in rule else len(rule)
        targets.append((path[:-1], order, NnxTarget(name, path, variable,
                                                    _layout(owner, attr, variable.get_value().ndim))))
    # each layer's entries in MindSpore's order, the layers in nnx's path order (a stable sort)
    first = {}
    for owner_path, _, _ in targets:
        first.setdefault(owner_path, len(first))
    return [t for _, _, t in sorted(targets, key=lambda t: (first[t[0]], t[1]))]


def nnx_parameters(module, name_fn=None) -> OrderedDict:
    """``OrderedDict`` MindSpore name -> ``Parameter`` (MindSpore's layout) of a plain nnx module:
    the param-dict form ``save_checkpoint`` takes, as MindSpore's ``Cell.parameters_dict()``.
    ``nnx.Param`` variables have ``requires_grad=True``, the rest (BatchStat, ...) False.

    >>> msjax.save_checkpoint(nnx_parameters(model, name_fn=lambda p: "backbone." + ".".join(map(str, p))),
    ...                       "model.ckpt")
    """
    return OrderedDict((t.name, Parameter(t.get_value(), name=t.name,
                                          requires_grad=isinstance(t.variable, nnx.Param)))
                       for t in nnx_targets(module, name_fn))


def load_param_into_nnx(module, parameter_dict, strict_load=False, name_fn=None):
    """``load_param_into_net`` for a plain ``flax.nnx.Module``, its variables named by ``name_fn``
    (default: the MindSpore names in the module doc): returns ``(param_not_load, ckpt_not_load)``,
    with MindSpore's ``strict_load`` rules (exact names, no dtype conversion; otherwise the prefix
    rule and float<->float / int<->int conversion). Values are converted back to nnx's layouts;
    every mismatch is one ``ParameterLoadError`` and then nothing is assigned.

    >>> param_not_load, ckpt_not_load = load_param_into_nnx(model, msjax.load_checkpoint("m.ckpt"))
    """
    targets = nnx_targets(module, name_fn)
    matching.check_dict(parameter_dict, strict_load, "load_param_into_nnx")
    return matching.load_params(targets, parameter_dict, strict_load)
