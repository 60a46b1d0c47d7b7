"""``Precision``, ``Recall``, ``Fbeta`` and ``F1``: per-class (or, for multilabel, per-sample) scores."""
from __future__ import annotations

import numpy as np

from msjax.nn.metrics.metric import EPS, EvaluationBase, Metric, check_type, is_onehot, rearrange_inputs

__all__ = ["Precision", "Recall", "Fbeta", "F1"]


def _one_hot_pair(y_pred, y, class_num, who):
    """Index labels and arg-max predictions as (N, class_num) one-hot matrices."""
    if y.max() + 1 > class_num:
        raise ValueError(f"For '{who}.update', predicted value (input[0]) should have the same classes number as "
                         f"true value (input[1]), but got predicted value classes {class_num}, true value classes "
                         f"{y.max() + 1}.")
    return np.eye(class_num)[y_pred.argmax(axis=1).reshape(-1)], np.eye(class_num)[y.reshape(-1)]


class _PrecisionRecall(EvaluationBase):
    """``true_positives / (<denominator> + eps)``; the denominator is ``y_pred`` (precision) or ``y`` (recall).

    For ``'classification'`` the counts are per class, summed over batches. For ``'multilabel'`` the
    counts are per sample (MindSpore's reduction over the class axis), concatenated over batches;
    ``eval(average=True)`` then averages the per-batch sums.
    """

    _name = ""

    def __init__(self, eval_type="classification"):
        super().__init__(eval_type)
        self.eps = EPS
        self.clear()

    def clear(self):
        self._class_num = 0
        if self._type == "multilabel":
            self._tp, self._den = np.empty(0), np.empty(0)
            self._tp_average, self._den_average = 0, 0
        else:
            self._tp, self._den = 0, 0

    @staticmethod
    def _denominator(y_pred, y):
        raise NotImplementedError

    @rearrange_inputs
    def update(self, *inputs):
        y_pred, y = self._prepare(inputs, self._name)
        class_num = self._class_num
        if self._type == "classification":
            y_pred, y = _one_hot_pair(y_pred, y, class_num, self._name)
        else:
            y_pred = y_pred.swapaxes(1, 0).reshape(class_num, -1)
            y = y.swapaxes(1, 0).reshape(class_num, -1)
        denominator = self._denominator(y_pred, y).sum(axis=0)
        true_positives = (y * y_pred).sum(axis=0)
        if self._type == "multilabel":
            self._tp_average += np.sum(true_positives / (denominator + self.eps))
            self._den_average += len(denominator)
            self._tp = np.concatenate((self._tp, true_positives), axis=0)
            self._den = np.concatenate((self._den, denominator), axis=0)
        else:
            self._tp += true_positives
            self._den += denominator

    def eval(self, average=False):
        """The scores (``numpy.ndarray``) or their mean (``numpy.float64``) with ``average=True``."""
        if self._class_num == 0:
            raise RuntimeError(f"The '{self._name}' can not be calculated, because the number of samples is 0, "
                               f"please check whether your inputs (predicted value, true value) are empty, or has "
                               f"called update method before calling eval method.")
        check_type("average", average, [bool])
        result = self._tp / (self._den + self.eps)
        if average:
            if self._type == "multilabel":
                result = self._tp_average / (self._den_average + self.eps)
            return result.mean()
        return result


class Precision(_PrecisionRecall):
    """``true_positive / (true_positive + false_positive)`` for ``'classification'`` or ``'multilabel'``."""

    _name = "Precision"

    @staticmethod
    def _denominator(y_pred, y):
        return y_pred


class Recall(_PrecisionRecall):
    """``true_positive / (true_positive + false_negative)`` for ``'classification'`` or ``'multilabel'``."""

    _name = "Recall"

    @staticmethod
    def _denominator(y_pred, y):
        return y


class Fbeta(Metric):
    """Per-class ``(1 + beta**2) * tp / (beta**2 * actual_positives + predicted_positives)``; ``beta > 0``."""

    def __init__(self, beta):
        super().__init__()
        self.eps = EPS
        if not beta > 0:
            raise ValueError(f"For 'Fbeta', the argument 'beta' must be greater than 0, but got {beta}.")
        self.beta = beta
        self.clear()

    def clear(self):
        self._true_positives = 0
        self._actual_positives = 0
        self._positives = 0
        self._class_num = 0

    @rearrange_inputs
    def update(self, *inputs):
        if len(inputs) != 2:
            raise ValueError(f"For 'Fbeta.update', it needs 2 inputs (predicted value, true value), "
                             f"but got {len(inputs)}.")
        y_pred, y = self._convert_data(inputs[0]), self._convert_data(inputs[1])
        if y_pred.ndim == y.ndim and is_onehot(y):
            y = y.argmax(axis=1)
        EvaluationBase._check_class_num(self, y_pred, "Fbeta")
        y_pred, y = _one_hot_pair(y_pred, y, self._class_num, "Fbeta")
        self._true_positives += (y * y_pred).sum(axis=0)
        self._positives += y_pred.sum(axis=0)
        self._actual_positives += y.sum(axis=0)

    def eval(self, average=False):
        """Per-class scores (``numpy.ndarray``) or their mean (``numpy.float64``) with ``average=True``."""
        check_type("average", average, [bool])
        if self._class_num == 0:
            raise RuntimeError("The 'Fbeta' can not be calculated, because the number of samples is 0, please "
                               "check whether your inputs(predicted value, true value) are empty, or has called "
                               "update method before calling eval method.")
        beta2 = self.beta ** 2
        fbeta = (1.0 + beta2) * self._true_positives / (beta2 * self._actual_positives + self._positives + self.eps)
        return fbeta.mean() if average else fbeta


class F1(Fbeta):
    """``Fbeta(1.0)``."""

    def __init__(self):
        super().__init__(1.0)
