"""``GraphCell``: a Cell that runs a loaded MINDIR graph with JAX (MindSpore's ``nn.GraphCell``).

The graph's parameters become msjax Parameters named by their ``ref_key`` ("conv1.weight"), so
``parameters_dict()`` and ``load_param_into_net`` work on them; the graph itself is static, and
``construct`` interprets it with jax ops, so a GRAPH_MODE call compiles it once per input shape.

>>> net = GraphCell(msjax.load("lenet5.mindir"))    # doctest: +SKIP
>>> net(Tensor(x)).shape
(4, 10)
"""
from __future__ import annotations

from exporters.from_mindir import MindIRGraph, read, run
from msjax.common.tensor import Parameter
from msjax.errors import ExportError
from msjax.nn.cell import Cell

__all__ = ["GraphCell"]


class GraphCell(Cell):
    """Run a MINDIR graph: ``GraphCell(graph, params_init=None, obf_random_seed=None)``.

    ``graph`` is what ``msjax.load`` returns (a GraphCell), a decoded graph, or a file name.
    ``params_init`` optionally maps parameter names to new values (arrays, Tensors, Parameters).
    """

    def __init__(self, graph, params_init=None, obf_random_seed=None):
        super().__init__()
        if obf_random_seed is not None:
            raise ExportError("GraphCell: obfuscated MINDIR graphs (obf_random_seed) are not supported")
        if isinstance(graph, GraphCell):
            source = graph
            graph = graph._graph
            values = {name: p.get_value() for name, p in source.parameters_dict().items()}
        elif isinstance(graph, MindIRGraph):
            values = dict(graph.parameters)
        elif isinstance(graph, (str, bytes)) or hasattr(graph, "__fspath__"):
            graph = read(graph)
            values = dict(graph.parameters)
        else:
            raise ExportError(f"GraphCell needs a loaded MINDIR graph, got {type(graph).__name__}")
        object.__setattr__(self, "_graph", graph)
        for name, value in (params_init or {}).items():
            if name not in values:
                raise ExportError(f"GraphCell: params_init names {name!r}, which {graph.file_name} "
                                  f"does not have")
            new = Parameter(value).get_value()
            if tuple(new.shape) != tuple(values[name].shape):
                raise ExportError(f"GraphCell: params_init[{name!r}] has shape {list(new.shape)}, "
                                  f"the graph needs {list(values[name].shape)}")
            values[name] = new
        for name, value in values.items():
            setattr(self, name, Parameter(value, name=name))

    def construct(self, *inputs):
        params = {key: getattr(self, key).get_value() for key in self._graph.parameters}
        return run(self._graph, params, *inputs)

    def __repr__(self):
        return f"GraphCell<{self._graph.name}>"
