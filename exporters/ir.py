"""The small graph IR every exporter reads: what the capture step makes of a Cell.

A Graph is a jaxpr flattened to one level (nested jit/pjit, custom_jvp and custom_vjp calls are
inlined), with the Cell's parameters as named inputs (MindSpore dotted names) and literals as
named constants. Emitters walk ``graph.nodes`` in order and look each ``node.op`` (a jaxpr
primitive name such as "conv_general_dilated") up in their own rule table.

Made by ``msjax_exporters.capture.capture``: ``stop_gradient`` is dropped (identity at inference),
nodes nothing reads are removed, graph inputs are named after ``construct``'s arguments ("x"),
and an output that is a graph input, parameter or constant (or repeats an earlier output) comes
from a ``copy`` node (the jaxpr ``copy`` primitive: identity), so every output is a node output.

Dynamic shapes: an export input with unknown dims (``Tensor(shape=[None, 3], dtype=...)``) is
traced with one JAX symbolic dimension per unknown dim ("batch" for dim 0 of every input,
"<input>_dim<i>" for the others). A shape in the graph is then a tuple of ints and ``Dim``s;
``Dim`` is JAX-free (capture converts JAX's dimension expressions), so emitters compare them
(``==`` is structural), name them (``str``) and compute them at run time (``Dim.evaluate``).
``symbol_sources`` says where each symbol can be read: which graph input, which axis.
"""
from __future__ import annotations

import dataclasses
import functools
from collections import OrderedDict

import numpy as np

from msjax.errors import ExportError


@dataclasses.dataclass(frozen=True)
class Dim:
    """A symbolic dimension: a named size or an integer expression over named sizes.

    ``op`` is "sym" (``args == (name,)``), "add" or "mul" (two or more operands), "floordiv",
    "mod", "max" or "min" (two operands); operands are ints or Dims. Sizes are >= 1, as JAX
    assumes for its symbolic dimensions.

    >>> str(Dim("mul", (4, Dim("sym", ("batch",)))))
    '4*batch'
    """

    op: str
    args: tuple

    OPS = ("sym", "add", "mul", "floordiv", "mod", "max", "min")

    def __post_init__(self):
        if self.op not in self.OPS:
            raise ValueError(f"Dim op {self.op!r} is not one of {self.OPS}")

    @classmethod
    def symbol(cls, name):
        return cls("sym", (str(name),))

    @property
    def name(self):
        """The symbol's name, or None when this Dim is an expression."""
        return self.args[0] if self.op == "sym" else None

    def symbols(self):
        """The names of the symbols this Dim depends on."""
        if self.op == "sym":
            return {self.args[0]}
        return set().union(*(a.symbols() for a in self.args if isinstance(a, Dim)))

    def evaluate(self, symbol, const, ops):
        """Compute this Dim with an emitter's values: ``symbol(name)`` gives a symbol's value,
        ``const(int)`` an integer's, ``ops[op](a, b)`` combines two values ("add", "mul", ...)."""
        if self.op == "sym":
            return symbol(self.args[0])
        values = [a.evaluate(symbol, const, ops) if isinstance(a, Dim) else const(int(a)) for a in self.args]
        return functools.reduce(ops[self.op], values)

    def __str__(self):
        def part(a, outer):
            text = str(a)
            return f"({text})" if isinstance(a, Dim) and a.op == "add" and outer == "mul" else text
        if self.op == "sym":
            return self.args[0]
        if self.op == "add":
            return " + ".join(part(a, "add") for a in self.args)
        if self.op == "mul":
            return "*".join(part(a, "mul") for a in self.args)
        if self.op in ("floordiv", "mod"):
            return f"{self.op}({self.args[0]}, {self.args[1]})"
        return f"{self.op}({', '.join(str(a) for a in self.args)})"

    def __repr__(self):
        return f"Dim({str(self)!r})"

    def __int__(self):
        # an emitter that needs a static size here: a clear error, not int()'s TypeError
        raise ExportError(f"the dim {self} is symbolic (a dynamic-shape input), but this export "
                          f"needs its size; give the input a static shape")

    __index__ = __int__


def is_static(shape):
    """True when every dim of ``shape`` is an int (no symbolic ``Dim``)."""
    return not any(isinstance(d, Dim) for d in shape)


def dynamic_axes(shape):
    """The axes of ``shape`` that are symbolic."""
    return [i for i, d in enumerate(shape) if isinstance(d, Dim)]


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
    #: parameter name -> the value name it holds after the call: construct updated it in place
    #: (``ops.assign``, ``self.p = ...``); emitters that cannot write state refuse such graphs
    updates: OrderedDict = dataclasses.field(default_factory=OrderedDict)

    @property
    def is_dynamic(self):
        """True when some graph input has a symbolic dim."""
        return any(not is_static(v.shape) for v in self.inputs)

    def symbol_sources(self):
        """symbol name -> (graph input name, axis): the first input dim that is that symbol."""
        sources = {}
        for value in self.inputs:
            for axis, dim in enumerate(value.shape):
                if isinstance(dim, Dim) and dim.name is not None:
                    sources.setdefault(dim.name, (value.name, axis))
        return sources

    def values(self):
        """Every Value by name: inputs, parameters, constants and node outputs."""
        table = {v.name: v for v in self.inputs}
        for name, array in list(self.parameters.items()) + list(self.constants.items()):
            table[name] = Value(name, tuple(array.shape), array.dtype)
        for node in self.nodes:
            table.update((v.name, v) for v in node.outputs)
        return table
