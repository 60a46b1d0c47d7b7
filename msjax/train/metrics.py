"""``msjax.train.metrics``: MindSpore 2.x's import path of the metrics, which live in
``msjax.nn.metrics`` (the layer below train, so ``nn`` never reaches up into ``train``)."""
from msjax.nn.metrics import *  # noqa: F403
from msjax.nn.metrics import __all__, __factory__  # noqa: F401
