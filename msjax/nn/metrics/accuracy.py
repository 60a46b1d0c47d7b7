"""``Accuracy`` and ``TopKCategoricalAccuracy`` (with its Top1 / Top5 specialisations)."""
from __future__ import annotations

import numpy as np

from msjax.nn.metrics.metric import EvaluationBase, Metric, is_onehot, rearrange_inputs, require_samples

__all__ = ["Accuracy", "TopKCategoricalAccuracy", "Top1CategoricalAccuracy", "Top5CategoricalAccuracy"]


class Accuracy(EvaluationBase):
    """Fraction of correct samples: the arg-max of ``y_pred`` (N, C, ...) equals the label (indices or
    one-hot) for ``'classification'``; every 0/1 entry matches for ``'multilabel'``.

    >>> m = Accuracy()
    >>> m.update(np.array([[0.2, 0.5], [0.3, 0.1], [0.9, 0.6]]), np.array([1, 0, 1]))
    >>> float(m.eval())
    0.6666666666666666
    """

    def __init__(self, eval_type="classification"):
        super().__init__(eval_type)
        self.clear()

    def clear(self):
        self._correct_num = 0
        self._total_num = 0
        self._class_num = 0

    @rearrange_inputs
    def update(self, *inputs):
        y_pred, y = self._prepare(inputs, "Accuracy")
        if self._type == "classification":
            result = (np.equal(y_pred.argmax(axis=1), y) * 1).reshape(-1)
        else:
            last = y_pred.ndim - 1
            y_pred = y_pred.swapaxes(1, last).reshape(-1, self._class_num)
            y = y.swapaxes(1, last).reshape(-1, self._class_num)
            result = np.equal(y_pred, y).all(axis=1) * 1
        self._correct_num += result.sum()
        self._total_num += result.shape[0]

    def eval(self):
        """The accuracy (``numpy.float64``); ``RuntimeError`` before any ``update``."""
        require_samples(self._total_num, "Accuracy")
        return self._correct_num / self._total_num


class TopKCategoricalAccuracy(Metric):
    """Fraction of samples whose label (index or one-hot) is among the ``k`` highest predictions."""

    def __init__(self, k):
        super().__init__()
        if not isinstance(k, int):
            raise TypeError(f"For 'TopKCategoricalAccuracy', the type of the argument 'k' should be int, "
                            f"but got 'k' type: {type(k)}.")
        if k < 1:
            raise ValueError(f"For 'TopKCategoricalAccuracy', the argument 'k' must be at least 1, "
                             f"but got 'k' value: {k}.")
        self.k = k
        self.clear()

    def clear(self):
        self._correct_num = 0
        self._samples_num = 0

    @rearrange_inputs
    def update(self, *inputs):
        if len(inputs) != 2:
            raise ValueError(f"For 'TopKCategoricalAccuracy.update', it needs 2 inputs (predicted value, "
                             f"true value), but got 'inputs' size: {len(inputs)}.")
        y_pred, y = self._convert_data(inputs[0]), self._convert_data(inputs[1])
        if y_pred.ndim == y.ndim and is_onehot(y):
            y = y.argmax(axis=1)
        top = np.argsort(-y_pred, axis=1)[:, :self.k]  # numpy's default sort, as MindSpore (ties: its order)
        labels = y.reshape(-1, 1).repeat(self.k, axis=1)
        try:
            correct = np.equal(top, labels)
        except ValueError as exc:  # MindSpore 2.10 fails the same way, e.g. for k > number of classes
            raise ValueError(f"For 'TopKCategoricalAccuracy.update', the top {self.k} of predicted value shaped "
                             f"{y_pred.shape} do not match true value shaped {y.shape} (k must not exceed the "
                             f"number of classes): {exc}") from exc
        self._correct_num += correct.sum(axis=1).sum()
        self._samples_num += labels.shape[0]

    def eval(self):
        """The top-k accuracy (``numpy.float64``); ``RuntimeError`` before any ``update``."""
        require_samples(self._samples_num, "TopKCategoricalAccuracy")
        return self._correct_num / self._samples_num


class Top1CategoricalAccuracy(TopKCategoricalAccuracy):
    """``TopKCategoricalAccuracy(1)``."""

    def __init__(self):
        super().__init__(1)


class Top5CategoricalAccuracy(TopKCategoricalAccuracy):
    """``TopKCategoricalAccuracy(5)``."""

    def __init__(self):
        super().__init__(5)
