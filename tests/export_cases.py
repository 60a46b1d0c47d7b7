"""What the export tests share: the one-function Cell their rule cases are built from, the window
op builders, and the check that a format's rule cases cover its rule table.

A rule case is one line ``(primitive[:variant], fn, example inputs, ...)`` in a format's CASES;
``FnCell(fn)`` makes it a network whose graph inputs are the example inputs (``FnCell(fn, params)``
adds Parameters ``p0``, ``p1``... passed after them).
"""
from jax import lax

from msjax.common.tensor import Parameter
from msjax.nn.cell import Cell

NCHW = ("NCHW", "OIHW", "NCHW")


class FnCell(Cell):
    """A cell running one function; its example inputs are the graph inputs, then its parameters."""

    def __init__(self, fn, params=()):
        super().__init__()
        self.fn = fn
        self.param_count = len(params)
        for i, p in enumerate(params):
            setattr(self, f"p{i}", Parameter(p))

    def construct(self, *args):
        return self.fn(*args, *[getattr(self, f"p{i}").get_value() for i in range(self.param_count)])


def conv(stride, padding, dilation=(1, 1), groups=1):
    """An NCHW/OIHW ``conv_general_dilated`` of ``(x, w)``."""
    return lambda x, w: lax.conv_general_dilated(x, w, stride, padding, rhs_dilation=dilation,
                                                 dimension_numbers=NCHW, feature_group_count=groups)


def pool(op, init, k, s, padding):
    """A ``k`` x ``k`` NCHW ``reduce_window`` with stride ``s``."""
    return lambda x: lax.reduce_window(x, init, op, (1, 1, k, k), (1, 1, s, s), padding)


def primitives(graph):
    """The jaxpr primitives of a captured graph."""
    return {n.op for n in graph.nodes}


def uncovered(rules, case_keys):
    """The primitives of ``rules`` no case key ("primitive" or "primitive:variant") names."""
    return set(rules) - {key.split(":")[0] for key in case_keys}
