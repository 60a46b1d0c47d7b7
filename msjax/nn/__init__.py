"""``msjax.nn``: Cell, layers, losses, optimizers and wrapper cells, as MindSpore names them."""
from msjax.nn.cell import Cell
from msjax.nn.layer import *  # noqa: F401,F403  (each module lists its names in __all__)
from msjax.nn.loss import *  # noqa: F401,F403
from msjax.nn.optim import *  # noqa: F401,F403
from msjax.nn.wrap import *  # noqa: F401,F403
from msjax.nn.metrics import *  # noqa: F401,F403,E402  (nn.Accuracy, as MindSpore)
from exporters.graph_cell import GraphCell  # noqa: E402  (runs a loaded MINDIR in JAX)
