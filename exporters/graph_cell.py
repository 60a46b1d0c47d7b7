"""``GraphCell``: a Cell that runs a loaded MINDIR graph with JAX (MindSpore's ``nn.GraphCell``).

The graph's parameters become msjax Parameters named by their ``ref_key`` ("conv1.weight", as
MindSpore names a GraphCell's parameters), so ``parameters_dict()`` and ``load_param_into_net``
work on them; the graph itself is static, and ``construct`` interprets it with jax ops, so a
GRAPH_MODE call compiles it once per input shape.

Parameters come in the file's order. The file keeps no ``requires_grad`` flag; MindSpore 2.10's
GraphCell marks every tensor trainable, msjax derives the flag from how the graph uses each one
(``mindir_usage``): BatchNorm's moving statistics, integer and bool tensors, indices and masks
are not trained, so ``trainable_params()`` names what the original network trains, and setting
``p.requires_grad`` overrides it. ``set_train(True)`` runs BatchNorm on batch statistics and
updates the moving statistics as MindSpore's BatchNorm does in train mode (MindSpore's GraphCell
keeps its graph's eval BatchNorm); ``set_train(False)`` (the default) runs the graph as exported. ``params_init`` follows MindSpore's rules: a dict (else TypeError) from str names to
Tensors or Parameters (else TypeError); a value for a graph parameter must have its shape and
dtype (else ValueError) and is copied into it; a name the graph does not have is ignored.

A graph that updates parameters in place (``Assign``/``AssignAdd``/``AssignSub`` nodes, what
``ops.assign`` or ``self.p = value`` in construct export to) leaves each updated Parameter
holding its new value after the call, in PYNATIVE and GRAPH_MODE, as MindSpore's GraphCell does.

>>> net = GraphCell(msjax.load("lenet5.mindir"))    # doctest: +SKIP
>>> net(Tensor(x)).shape
(4, 10)
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np

from .from_mindir import MindIRGraph, Op, read, run
from .mindir_crypto import load_options
from .mindir_usage import resolve, trainable
from msjax.common import dtype as mstype
from msjax.common.tensor import Parameter, Tensor
from msjax.common.untrusted import reading
from msjax.common.validator import NOT_GIVEN
from msjax.errors import ExportError
from msjax.nn.cell import Cell

__all__ = ["GraphCell", "load"]

#: primitives that write a parameter (``from_mindir.run`` reports their new values)
_WRITES = frozenset({"Assign", "AssignAdd", "AssignSub", "InplaceAddExt", "InplaceSubExt", "InplaceMul"})


class GraphCell(Cell):
    """Run a MINDIR graph: ``GraphCell(graph, params_init=None, obf_random_seed=None)``.

    ``graph`` is what ``msjax.load`` returns (a GraphCell; its current parameter values are
    copied), a decoded graph, or a file name. ``params_init`` maps parameter names (the graph's
    ``ref_key`` names, "fc3.bias") to new values, Tensors or Parameters of the parameter's
    shape and dtype; names the graph does not have are ignored, as in MindSpore.
    """

    def __init__(self, graph, params_init=None, obf_random_seed=None):
        super().__init__()
        if obf_random_seed is not None:
            raise NotImplementedError("Dynamic structure obfuscation is not supported now.")
        if not isinstance(graph, (GraphCell, MindIRGraph, str, bytes)) and not hasattr(graph, "__fspath__"):
            raise TypeError(f"For 'GraphCell', the argument 'graph' must be a FuncGraph loaded from MindIR, "
                            f"but got type {type(graph)}.")
        params_init = {} if params_init is None else params_init
        if not isinstance(params_init, dict):
            raise TypeError(f"For 'GraphCell', the argument 'params_init' must be a dict, but got "
                            f"{type(params_init)}.")
        for name, value in params_init.items():
            if not isinstance(name, str) or not isinstance(value, (Tensor, Parameter)):
                raise TypeError("For 'GraphCell', the key of the 'params_init' must be str, "
                                "and the value must be Tensor or Parameter, "
                                f"but got the key type: {type(name)}, and the value type: {type(value)}")
        if isinstance(graph, GraphCell):       # msjax.load's cell: its graph, values and flags
            source = graph
            graph, train_graph = graph._graph, graph._train_graph
            values = {name: p.get_value() for name, p in source.parameters_dict().items()}
            flags = {name: p.requires_grad for name, p in source.parameters_dict().items()}
        else:
            graph = graph if isinstance(graph, MindIRGraph) else read(graph)
            values, flags, train_graph = dict(graph.parameters), trainable(graph), _train_graph(graph)
        object.__setattr__(self, "_graph", graph)
        object.__setattr__(self, "_train_graph", train_graph)
        object.__setattr__(self, "_writes", any(op.prim in _WRITES for op in graph.ops))
        for name, old in values.items():            # the graph's order, as MindSpore checks them
            if name in params_init:
                values[name] = _checked_value(name, old, params_init[name])
        _set_parameters(self, {name: Parameter(value, name=name, requires_grad=flags[name])
                               for name, value in values.items()})

    def construct(self, *inputs):
        graph = self._train_graph if self.training else self._graph
        params = {key: getattr(self, key).get_value() for key in graph.parameters}
        if not (self._writes or graph is not self._graph):
            return run(graph, params, *inputs)
        updates = {}
        out = run(graph, params, *inputs, updates=updates)
        for key, value in updates.items():       # Assign nodes: the parameter keeps the new value
            getattr(self, key).set_value(value)
        return out

    def __repr__(self):
        graph = vars(self).get("_graph")
        return f"GraphCell<{graph.name}>" if graph is not None else "GraphCell<>"


def _set_parameters(cell, params):
    """Set ``params`` (name -> Parameter, in order) on a new ``cell`` in one go. One ``setattr``
    per Parameter would make nnx check the whole ``_cell_order`` tuple each time: quadratic
    (~370k checks for 600 tensors). The attributes are what ``Cell.__setattr__`` would leave."""
    nodes = cell._pytree__nodes.update(dict.fromkeys(params, True))
    object.__setattr__(cell, "_pytree__nodes", nodes)
    for name, param in params.items():
        object.__setattr__(cell, name, param)
    cell._cell_order = tuple(vars(cell).get("_cell_order", ())) + tuple(params)   # one check, one version bump


def _train_graph(graph):
    """``graph`` as ``set_train(True)`` runs it: each BatchNorm on batch statistics
    (is_training=True), followed by Assigns of its moving statistics (outputs 5 and 6 of
    ``mindir_ops._batch_norm_train``) to the parameters it read them from. ``graph`` itself when
    it has no BatchNorm whose statistics are parameters."""
    alias = resolve(graph)
    ops, constants = [], dict(graph.constants)
    for op in graph.ops:
        stats = [alias.get(name) for name in op.inputs[3:5]] if op.prim == "BatchNorm" else []
        if len(stats) != 2 or None in stats:
            ops.append(op)
            continue
        inputs = list(op.inputs) + [None] * (6 - len(op.inputs))
        inputs[5] = "msjax:is_training"
        constants["msjax:is_training"] = True
        ops.append(dataclasses.replace(op, inputs=tuple(inputs)))
        for index, full in zip((5, 6), stats):
            constants[f"msjax:output{index}"] = index
            item = f"{op.output}:msjax_moving{index}"
            ops.append(Op("TupleGetItem", (op.output, f"msjax:output{index}"), item, {}, op.scope))
            ops.append(Op("Assign", (full, item), f"{item}:assigned", {}, op.scope))
    if len(ops) == len(graph.ops):
        return graph
    return dataclasses.replace(graph, constants=constants, ops=ops)


def _checked_value(name, old, value):
    """``value``'s array (a copy: the GraphCell keeps its own Parameter), when it has the shape
    and dtype of the graph parameter ``name`` (``old``); else MindSpore's ValueError."""
    new = value._array()
    old_shape, new_shape = tuple(np.shape(old)), tuple(np.shape(new))
    if old_shape != new_shape or np.dtype(old.dtype) != np.dtype(new.dtype):
        raise ExportError(
            "Only support update parameter by Tensor or Parameter with same shape and dtype as it. "
            f"The parameter {name!r} has shape {list(old_shape)} and dtype "
            f"{mstype.from_numpy(np.dtype(old.dtype))}, but got the update value with shape "
            f"{list(new_shape)} and dtype {mstype.from_numpy(np.dtype(new.dtype))}.")
    return np.array(new, copy=True)


def load(file_name, *, dec_key=NOT_GIVEN, dec_mode=NOT_GIVEN):
    """Read a MINDIR file into a ``GraphCell`` (``msjax.load``'s MINDIR path)."""
    file_name = os.fspath(file_name)
    keyed = load_options(dec_key, dec_mode, file_name)    # dec_key/dec_mode, checked as mindspore.load does
    graph = read(file_name, *(keyed or (None,)))
    with reading(file_name, ExportError, "MINDIR file"):
        return GraphCell(graph)
