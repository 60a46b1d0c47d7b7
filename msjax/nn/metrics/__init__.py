"""Metrics, as ``mindspore.train`` 2.10 names them: ``names()`` lists what ``get_metric_fn(name, ...)``
and ``Model(metrics={...})`` accept.

Each metric keeps its state on the host (numpy): ``clear()``, ``update(*inputs)``, ``eval()``; inputs
may be msjax Tensors, ``jax.Array``s, numpy arrays or lists. ``eval()`` before any ``update`` raises
``RuntimeError``. Values, return types and errors follow MindSpore 2.10.

>>> m = get_metric_fn("accuracy")
>>> m.update(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([1, 1]))
>>> float(m.eval())
0.5
"""
from __future__ import annotations

import numpy as np  # noqa: F401  (the doctests)

from msjax.nn.metrics.accuracy import (
    Accuracy,
    Top1CategoricalAccuracy,
    Top5CategoricalAccuracy,
    TopKCategoricalAccuracy,
)
from msjax.nn.metrics.classification import F1, Fbeta, Precision, Recall
from msjax.nn.metrics.confusion_matrix import ConfusionMatrix, ConfusionMatrixMetric
from msjax.nn.metrics.error import MAE, MSE, Loss
from msjax.nn.metrics.metric import Metric, rearrange_inputs
from msjax.nn.metrics.occlusion import OcclusionSensitivity
from msjax.nn.metrics.roc import ROC, auc
from msjax.nn.metrics.similarity import CosineSimilarity, Dice
from msjax.nn.metrics.surface_distance import HausdorffDistance, MeanSurfaceDistance, RootMeanSquareDistance
from msjax.nn.metrics.text import BleuScore, Perplexity

__all__ = ["names", "get_metric_fn", "get_metrics", "Metric", "rearrange_inputs", "Accuracy", "MAE", "MSE",
           "Precision", "Recall", "Fbeta", "F1", "Dice", "ROC", "auc", "HausdorffDistance", "BleuScore",
           "CosineSimilarity", "OcclusionSensitivity", "TopKCategoricalAccuracy", "Top1CategoricalAccuracy",
           "Top5CategoricalAccuracy", "Loss", "MeanSurfaceDistance", "RootMeanSquareDistance", "Perplexity",
           "ConfusionMatrix", "ConfusionMatrixMetric"]

__factory__ = {
    "accuracy": Accuracy,
    "acc": Accuracy,
    "precision": Precision,
    "recall": Recall,
    "F1": F1,
    "dice": Dice,
    "roc": ROC,
    "auc": auc,  # a function, as in MindSpore: get_metric_fn('auc', x, y) returns the area
    "bleu_score": BleuScore,
    "cosine_similarity": CosineSimilarity,
    "occlusion_sensitivity": OcclusionSensitivity,
    "topk": TopKCategoricalAccuracy,
    "hausdorff_distance": HausdorffDistance,
    "top_1_accuracy": Top1CategoricalAccuracy,
    "top_5_accuracy": Top5CategoricalAccuracy,
    "mae": MAE,
    "mse": MSE,
    "loss": Loss,
    "mean_surface_distance": MeanSurfaceDistance,
    "root_mean_square_distance": RootMeanSquareDistance,
    "perplexity": Perplexity,
    "confusion_matrix": ConfusionMatrix,
    "confusion_matrix_metric": ConfusionMatrixMetric,
}


def names():
    """The sorted metric names ``get_metric_fn`` and ``Model(metrics={...})`` understand."""
    return sorted(__factory__)


def get_metric_fn(name, *args, **kwargs):
    """The metric ``name`` built with ``args``/``kwargs``, e.g. ``get_metric_fn('precision', 'multilabel')``.

    ``KeyError`` for a name not in :func:`names`.
    """
    if name not in __factory__:
        raise KeyError(f"For 'get_metric_fn', unknown metric {name!r} (unsupported by MindSpore 2.10); "
                       f"supported: {names()}")
    return __factory__[name](*args, **kwargs)


def get_metrics(metrics):
    """``{name: Metric}`` from ``None``, a ``{str: Metric}`` dict, or a set of names (MindSpore's rules)."""
    if metrics is None:
        return metrics
    if isinstance(metrics, dict):
        for name, metric in metrics.items():
            if not isinstance(name, str) or not isinstance(metric, Metric):
                raise TypeError(f"For 'get_metrics', if 'metrics' is dict, the key in 'metrics' must be string and "
                                f"value in 'metrics' must be Metric, but got key:{type(name)}, "
                                f"value:{type(metric)}.")
        return metrics
    if isinstance(metrics, set):
        return {name: get_metric_fn(name) for name in metrics}
    raise TypeError(f"For 'get_metrics', the argument 'metrics' must be None, dict or set, but got {metrics}")
