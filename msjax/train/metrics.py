"""Metrics: ``Accuracy``, ``Loss``, ``Top1CategoricalAccuracy``, ``Top5CategoricalAccuracy``.

Each keeps running sums on the host: ``clear()``, ``update(*inputs)``, ``eval()``.

>>> m = Accuracy()
>>> m.update(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([1, 1]))
>>> m.eval()
0.5
"""
from __future__ import annotations

import numpy as np

__all__ = ["Metric", "Accuracy", "Loss", "TopKCategoricalAccuracy", "Top1CategoricalAccuracy",
           "Top5CategoricalAccuracy", "get_metric_fn", "names"]


def _np(x):
    return np.asarray(x.asnumpy() if hasattr(x, "asnumpy") else x)


class Metric:
    """Base class: subclasses define ``clear``, ``update`` and ``eval``."""

    def __init__(self):
        self._indexes = None

    def set_indexes(self, indexes):
        self._indexes = indexes
        return self

    @property
    def indexes(self):
        return self._indexes

    def __call__(self, *inputs):
        self.clear()
        self.update(*inputs)
        return self.eval()

    def clear(self):
        raise NotImplementedError

    def update(self, *inputs):
        raise NotImplementedError

    def eval(self):
        raise NotImplementedError


class Accuracy(Metric):
    """Fraction of samples whose arg-max prediction equals the label (index or one-hot)."""

    def __init__(self, eval_type="classification"):
        super().__init__()
        if eval_type not in ("classification", "multilabel"):
            raise ValueError(f"Accuracy: eval_type must be 'classification' or 'multilabel', got {eval_type!r}")
        self.eval_type = eval_type
        self.clear()

    def clear(self):
        self._correct_num, self._total_num = 0, 0

    def update(self, *inputs):
        if len(inputs) != 2:
            raise ValueError(f"Accuracy.update needs 2 inputs (y_pred, y), got {len(inputs)}")
        y_pred, y = _np(inputs[0]), _np(inputs[1])
        if self.eval_type == "multilabel":
            correct = np.all(np.round(y_pred) == y, axis=tuple(range(1, y.ndim))) if y.ndim > 1 else np.round(y_pred) == y
        else:
            if y.ndim == y_pred.ndim and y.shape == y_pred.shape:
                y = y.argmax(axis=1)
            correct = y_pred.argmax(axis=1) == y.reshape(-1)
        self._correct_num += int(np.sum(correct))
        self._total_num += int(correct.shape[0])

    def eval(self):
        if self._total_num == 0:
            raise RuntimeError("Accuracy can not be calculated, because the number of samples is 0.")
        return self._correct_num / self._total_num


class Loss(Metric):
    """The mean of the loss values passed to ``update``."""

    def __init__(self):
        super().__init__()
        self.clear()

    def clear(self):
        self._sum_loss, self._total_num = 0.0, 0

    def update(self, *inputs):
        if len(inputs) != 1:
            raise ValueError(f"Loss.update needs 1 input (loss), got {len(inputs)}")
        loss = _np(inputs[0])
        if loss.ndim > 1:
            raise ValueError(f"Loss.update needs a 0-d or 1-d loss, got shape {loss.shape}")
        self._sum_loss += float(np.mean(loss)) if loss.ndim else float(loss)
        self._total_num += 1

    def eval(self):
        if self._total_num == 0:
            raise RuntimeError("Loss can not be calculated, because the number of samples is 0.")
        return self._sum_loss / self._total_num


class TopKCategoricalAccuracy(Metric):
    """Fraction of samples whose label is among the ``k`` highest predictions."""

    def __init__(self, k):
        super().__init__()
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"TopKCategoricalAccuracy: k must be an int >= 1, got {k!r}")
        self.k = k
        self.clear()

    def clear(self):
        self._correct_num, self._samples_num = 0, 0

    def update(self, *inputs):
        if len(inputs) != 2:
            raise ValueError(f"TopKCategoricalAccuracy.update needs 2 inputs (y_pred, y), got {len(inputs)}")
        y_pred, y = _np(inputs[0]), _np(inputs[1])
        if y.ndim == y_pred.ndim and y.shape == y_pred.shape:
            y = y.argmax(axis=1)
        indices = np.argsort(-y_pred, axis=1, kind="stable")[:, :self.k]
        correct = np.any(indices == y.reshape(-1, 1), axis=1)
        self._correct_num += int(np.sum(correct))
        self._samples_num += int(y.shape[0])

    def eval(self):
        if self._samples_num == 0:
            raise RuntimeError("TopKCategoricalAccuracy can not be calculated, because the number of samples is 0.")
        return self._correct_num / self._samples_num


class Top1CategoricalAccuracy(TopKCategoricalAccuracy):
    def __init__(self):
        super().__init__(1)


class Top5CategoricalAccuracy(TopKCategoricalAccuracy):
    def __init__(self):
        super().__init__(5)


_METRICS = {
    "accuracy": Accuracy, "acc": Accuracy, "loss": Loss,
    "top_1_accuracy": Top1CategoricalAccuracy, "top_5_accuracy": Top5CategoricalAccuracy,
}


def names():
    """The metric names ``Model(metrics={...})`` understands."""
    return sorted(_METRICS)


def get_metric_fn(name, *args, **kwargs):
    """A metric instance by name (``'accuracy'``, ``'loss'``, ``'top_1_accuracy'``, ...)."""
    if name not in _METRICS:
        raise KeyError(f"unknown metric {name!r}; known: {names()}")
    return _METRICS[name](*args, **kwargs)
