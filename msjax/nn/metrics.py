"""``msjax.nn.metrics``: the metrics under MindSpore's older import path (same classes as ``msjax.train.metrics``)."""
from msjax.train.metrics import *  # noqa: F401,F403
from msjax.train.metrics import __all__  # noqa: F401
