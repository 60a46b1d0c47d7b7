"""The small graph IR every exporter reads: what the capture step makes of a Cell.

A Graph is a jaxpr flattened to one level (nested jit/pjit, custom_jvp and custom_vjp calls are
inlined), with the Cell's parameters as named inputs (MindSpore dotted names) and literals as
named constants. Emitters walk ``graph.nodes`` in order and look each ``node.op`` (a jaxpr
primitive name such as "conv_general_dilated") up in their own rule table.

Made by ``exporters.capture.capture``: ``stop_gradient`` is dropped (identity at inference),
nodes nothing reads are removed, graph inputs are named after ``construct``'s arguments ("x"),
and an output that is a graph input, parameter or constant (or repeats an earlier output) comes
from a ``copy`` node (the jaxpr ``copy`` primitive: identity), so every output is a node output.
"""
from __future__ import annotations

import dataclasses
from collections import OrderedDict

import numpy as np


@dataclasses.dataclass(frozen=True)
class Value:
    """A named tensor flowing through the graph."""

    name: str
    shape: tuple
    dtype: np.dtype


@dataclasses.dataclass
class Node:
    """One jaxpr equation: ``outputs = op(*inputs, **params)``.

    ``inputs`` are value names: graph inputs, parameter names, constant names or earlier outputs.
    ``params`` are the equation's jaxpr params (dimension numbers, strides, shapes ...).
    ``source`` is the dotted path of the Cell whose construct produced it ("layer1.0.conv1"),
    for error messages; "" for the top-level cell.
    """

    op: str
    inputs: list
    outputs: list
    params: dict
    source: str = ""


@dataclasses.dataclass
class Graph:
    name: str
    inputs: list                      # [Value] in call order
    outputs: list                     # [Value] in return order
    parameters: OrderedDict           # dotted name -> np.ndarray, in MindSpore's parameter order
    constants: OrderedDict            # constant name -> np.ndarray (literals the jaxpr closed over)
    nodes: list                       # [Node] in execution order

    def values(self):
        """Every Value by name: inputs, parameters, constants and node outputs."""
        table = {v.name: v for v in self.inputs}
        for name, array in list(self.parameters.items()) + list(self.constants.items()):
            table[name] = Value(name, tuple(array.shape), array.dtype)
        for node in self.nodes:
            table.update((v.name, v) for v in node.outputs)
        return table
