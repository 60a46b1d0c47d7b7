"""``msjax.nn``: Cell, layers, losses, optimizers, wrapper cells and metrics, as MindSpore names them.

``GraphCell`` (runs a loaded MINDIR in JAX) lives with the exporters and is imported on first use.
"""
from msjax.nn.cell import Cell
from msjax.nn.dynamic_lr import *  # noqa: F403  (MindSpore exports the dynamic_lr lists from nn)
from msjax.nn.layer import *  # noqa: F403  (each module lists its names in __all__)
from msjax.nn.loss import *  # noqa: F403
from msjax.nn.metrics import *  # noqa: F403  (nn.Accuracy, as MindSpore)
from msjax.nn.optim import *  # noqa: F403
from msjax.nn.wrap import *  # noqa: F403


def __getattr__(name):
    if name == "GraphCell":
        from msjax._lazy import exporters

        return exporters("graph_cell").GraphCell
    raise AttributeError(f"module 'msjax.nn' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), "GraphCell"])
