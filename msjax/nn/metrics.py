"""``msjax.nn.metrics``: the metrics under MindSpore's older import path (the classes of
``msjax.train.metrics``, plus ``names``, ``get_metric_fn`` and ``get_metrics`` as ``mindspore.nn.metrics``)."""
from msjax.train.metrics import *  # noqa: F401,F403
from msjax.train.metrics import __all__  # noqa: F401
