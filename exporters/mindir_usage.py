"""Which MINDIR tensors a loaded graph trains: derived from how the graph uses each one.

A MINDIR file keeps no ``requires_grad`` flag, so ``trainable(graph)`` reads it off the node list.
A parameter is trained when it is a floating-point tensor that some node reads as data. These
reads do not count (``NOT_TRAINED``):

* inputs 3 and 4 of BatchNorm (``moving_mean``/``moving_variance``: statistics, not weights),
* an index or a mask: Gather's indices, Select's condition, MaskedFill's mask, OneHot's indices...,
* reads that carry no gradient: StopGradient, Shape, ZerosLike, comparisons.

Integer and bool tensors are never trained. Reads pass through views (``Load``, ``Depend``'s first
input, Cast, Reshape, ExpandDims, Squeeze, Transpose), so ``Gather(Reshape(index))`` is an index
use; MindSpore's side-effect plumbing (``UpdateState``, the ``MakeTuple`` of Loads that feeds it,
``Depend``'s later inputs, an Assign's target) is no use at all. A float tensor the graph never
reads is trained, as a MindSpore Parameter is by default.

An additive mask (Swin's ``attn_mask``: a float added to the logits) reads like a bias; set its
``requires_grad = False`` on the GraphCell.

>>> trainable(read("resnet18.mindir"))["bn1.moving_mean"]     # doctest: +SKIP
False
"""
from __future__ import annotations

import numpy as np

__all__ = ["trainable", "NOT_TRAINED", "resolve"]

_ALL = None      # every input position
#: primitive -> input positions (``_ALL``: every one) whose read is not a training use
NOT_TRAINED = {
    "BatchNorm": {3, 4}, "BatchNormExt": {3, 4}, "BatchNormGradWithActivation": {3, 4},
    "Gather": {1}, "GatherD": {2}, "GatherNd": {1}, "EmbeddingLookup": {1}, "Embedding": {0},
    "OneHot": {0}, "OneHotExt": {0}, "Select": {0}, "MaskedFill": {1}, "MaskedSelect": {1},
    "ScatterNd": {0}, "TensorScatterUpdate": {1}, "TensorScatterAdd": {1}, "ScatterUpdate": {1},
    "StopGradient": _ALL, "Shape": _ALL, "TensorShape": _ALL, "DType": _ALL, "Rank": _ALL,
    "ZerosLike": _ALL, "OnesLike": _ALL, "Size": _ALL,
    "Equal": _ALL, "NotEqual": _ALL, "Less": _ALL, "LessEqual": _ALL, "Greater": _ALL,
    "GreaterEqual": _ALL, "LogicalAnd": _ALL, "LogicalOr": _ALL, "LogicalNot": _ALL,
}
#: primitives whose output is (a view of) their first input
_VIEWS = frozenset({"Load", "Depend", "Cast", "Reshape", "ExpandDims", "Squeeze", "Transpose",
                    "Flatten", "Identity"})
#: primitives whose inputs are ordering plumbing, never data
_PLUMBING = frozenset({"UpdateState"})
#: primitives whose first input is the parameter they write (a write is not a read)
_WRITES = frozenset({"Assign", "AssignAdd", "AssignSub", "InplaceAddExt", "InplaceSubExt", "InplaceMul"})


def resolve(graph):
    """Node output -> the full parameter name it is a view of (parameters map to themselves)."""
    alias = {full: full for full in graph.param_refs}
    for op in graph.ops:
        if op.prim in _VIEWS and op.inputs and op.inputs[0] in alias:
            alias[op.output] = alias[op.inputs[0]]
    return alias


def trainable(graph):
    """ref_key -> whether the graph trains that parameter (see the module docstring)."""
    alias = resolve(graph)
    consumers = {}
    for op in graph.ops:
        for name in op.inputs:
            consumers.setdefault(name, []).append(op.prim)
    plumbing_tuples = {op.output for op in graph.ops if op.prim == "MakeTuple"
                       and all(p in _PLUMBING for p in consumers.get(op.output, ()))}
    read, as_data = set(), set()
    for op in graph.ops:
        if op.prim in _PLUMBING or op.output in plumbing_tuples:
            continue
        skip = NOT_TRAINED.get(op.prim, ())
        for pos, name in enumerate(op.inputs):
            full = alias.get(name)
            if full is None or _is_view_link(op, pos):
                continue
            if (pos == 0 and op.prim in _WRITES) or (pos > 0 and op.prim == "Depend"):
                continue
            read.add(full)
            if skip is not _ALL and pos not in skip:
                as_data.add(full)
    result = {}
    for full, key in graph.param_refs.items():
        floating = np.dtype(graph.parameters[key].dtype).kind in "fc" or _is_bfloat16(graph.parameters[key])
        result[key] = bool(floating and (full in as_data or full not in read))
    return result


def _is_view_link(op, pos):
    """The first input of a view: its use is judged at the view's own consumers."""
    return pos == 0 and op.prim in _VIEWS


def _is_bfloat16(array):
    return str(array.dtype) == "bfloat16"
