"""``msjax.train``: ``Model``, callbacks, ``ModelCheckpoint`` and metrics (MindSpore's ``mindspore.train``)."""
from msjax.train import metrics
from msjax.train.callback import *  # noqa: F401,F403
from msjax.train.callback import __all__ as _callback_all
from msjax.train.metrics import (Accuracy, Loss, Metric, Top1CategoricalAccuracy, Top5CategoricalAccuracy,
                                 TopKCategoricalAccuracy)
from msjax.train.model import Model

__all__ = ["Model", "metrics", *_callback_all, "Metric", "Accuracy", "Loss", "TopKCategoricalAccuracy",
           "Top1CategoricalAccuracy", "Top5CategoricalAccuracy"]
