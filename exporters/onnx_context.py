"""The ONNX graph builder the rules of ``to_onnx`` write through: node and initializer lists, fresh
names, deduplicated constants, and shapes computed at run time for symbolic dims.

``Context.op(op_type, inputs, out)`` adds one node (named after the layer that made it) and returns
its output; ``const``/``ints`` add initializers; ``dims``/``reshape_target`` give a shape input,
constant when every dim is an int, else computed from the graph inputs' ``Shape``.

>>> ctx = Context(graph, opset=18, dynamic_batch=False); ctx.op("Exp", ["x"])   # doctest: +SKIP
'exp_1'
"""
from __future__ import annotations

import numpy as np
from onnx import helper, numpy_helper

from . import ir
from msjax.errors import ExportError

__all__ = ["Context", "onnx_type"]


def onnx_type(dtype):
    """The ONNX TensorProto data type of a numpy dtype."""
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


class Context:
    """Builds the node and initializer lists; names fresh values; knows opset and batch mode."""

    def __init__(self, graph, opset, dynamic_batch):
        self.graph = graph
        self.values = graph.values()
        self.opset = opset
        self.batch = graph.inputs[0].shape[0] if dynamic_batch and graph.inputs and graph.inputs[0].shape else None
        if isinstance(self.batch, ir.Dim):         # a symbolic batch is dynamic already
            self.batch = None
        self.nodes, self.initializers = [], []
        self._consts = {}
        self._sources = graph.symbol_sources()
        self._dims, self._shapes = {}, {}
        self._count = 0
        self.source = ""

    def fresh(self, hint="v"):
        self._count += 1
        return f"{hint}_{self._count}"

    def op(self, op_type, inputs, out=None, **attrs):
        """Add one ONNX node; return its output name (``out``: a name, a list of names, or fresh)."""
        out = out or self.fresh(op_type.lower())
        self._count += 1
        name = f"{self.source}/{op_type}_{self._count}" if self.source else f"{op_type}_{self._count}"
        outputs = list(out) if isinstance(out, list) else [out]
        self.nodes.append(helper.make_node(op_type, list(inputs), outputs, name=name, **attrs))
        return out

    def const(self, value, dtype=None):
        """An initializer holding ``value`` (deduplicated by dtype, shape and bytes)."""
        array = np.asarray(value, dtype=dtype)
        key = (array.dtype.str, array.shape, array.tobytes())
        if key not in self._consts:
            name = f"const_{len(self._consts)}"
            self.initializers.append(numpy_helper.from_array(array, name))
            self._consts[key] = name
        return self._consts[key]

    def ints(self, values):
        return self.const(np.asarray(list(values), np.int64))

    def shape(self, dims, kind):
        """A static target shape; with a dynamic batch, a leading batch-sized dim is left open."""
        dims = [int(d) for d in dims]
        if self.batch is not None and dims and dims[0] == self.batch:
            dims[0] = -1 if kind == "reshape" else 1
        return self.ints(dims)

    # symbolic dims: computed from the graph inputs' shapes at run time
    def dim(self, d):
        """A 1-D int64 tensor holding ``[d]``: a constant for an int, computed for an ``ir.Dim``."""
        if not isinstance(d, ir.Dim):
            return self.ints([int(d)])
        if d not in self._dims and d.name is not None:
            self._dims[d] = self._symbol(d.name)
        elif d not in self._dims:
            ops = {"add": "Add", "mul": "Mul", "floordiv": "Div", "mod": "Mod", "max": "Max", "min": "Min"}
            self._dims[d] = d.evaluate(lambda name: self.dim(ir.Dim.symbol(name)), lambda k: self.ints([k]),
                                       {k: (lambda a, b, t=t: self.op(t, [a, b])) for k, t in ops.items()})
        return self._dims[d]

    def _symbol(self, name):
        if name not in self._sources:
            raise ExportError(f"ONNX export of {self.graph.name}: symbolic dim {name!r} is not a dim of any input")
        value, axis = self._sources[name]
        if value not in self._shapes:
            self._shapes[value] = self.op("Shape", [value])
        return self.op("Gather", [self._shapes[value], self.ints([axis])])

    def dims(self, dims):
        """A 1-D int64 tensor of ``dims`` (ints and ``ir.Dim``s); constant when all are ints."""
        dims = list(dims)
        if ir.is_static(dims):
            return self.ints(dims)
        parts, run = [], []
        for d in dims:
            if isinstance(d, ir.Dim):
                if run:
                    parts.append(self.ints(run))
                    run = []
                parts.append(self.dim(d))
            else:
                run.append(int(d))
        if run:
            parts.append(self.ints(run))
        return self.op("Concat", parts, axis=0)

    def reshape_target(self, shape):
        """A Reshape's shape input: static as before; one unknown dim is -1; else computed."""
        if ir.is_static(shape):
            return self.shape(shape, "reshape")
        axes = ir.dynamic_axes(shape)
        if len(axes) == 1:
            return self.ints([-1 if i == axes[0] else int(d) for i, d in enumerate(shape)])
        return self.dims(shape)

    def reduce(self, op_type, x, axes, out, keepdims=0):
        if op_type == "ReduceSum" or self.opset >= 18:
            return self.op(op_type, [x, self.ints(axes)], out, keepdims=keepdims)
        return self.op(op_type, [x], out, axes=list(axes), keepdims=keepdims)
