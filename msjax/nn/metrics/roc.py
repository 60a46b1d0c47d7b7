"""``ROC`` (false/true positive rates per threshold, from the last ``update``) and ``auc``."""
from __future__ import annotations

import numpy as np

from msjax.nn.metrics.metric import Metric, binary_clf_curve, check_type, rearrange_inputs

__all__ = ["ROC", "auc"]


def _curve_inputs(y_pred, y, class_num, pos_label):
    """Flatten ``(y_pred, y)`` for a binary (same ndim) or a multi-class (``y_pred`` one more dim) curve."""
    if y_pred.ndim == y.ndim:
        if class_num is not None and class_num != 1:
            raise ValueError(f"For 'ROC', when predicted value (input[0]) and true value (input[1]) have the same "
                             f"shape, the 'class_num' must be 1, but got {class_num}.")
        return y_pred.flatten(), y.flatten(), 1, 1 if pos_label is None else pos_label
    if y_pred.ndim == y.ndim + 1:
        if pos_label is not None:
            raise ValueError(f"For 'ROC', when the dimension of predicted value (input[0]) equals the dimension of "
                             f"true value (input[1]) add 1, the 'pos_label' must be None, but got {pos_label}.")
        if class_num != y_pred.shape[1]:
            raise ValueError(f"For 'ROC', the 'class_num' must equal the number of classes from predicted value "
                             f"(input[0]), but got 'class_num' {class_num}, the number of classes from predicted "
                             f"value {y_pred.shape[1]}.")
        # MindSpore's torch-style transpose(0, 1) is numpy's identity permutation here
        return y_pred.transpose(0, 1).reshape(class_num, -1).transpose(0, 1), y.flatten(), class_num, pos_label
    raise ValueError(f"For 'ROC', predicted value (input[0]) and true value (input[1]) must have same dimensions, "
                     f"or the dimension of predicted value equal the dimension of true value add 1, but got "
                     f"predicted value ndim: {y_pred.ndim}, true value ndim: {y.ndim}.")


class ROC(Metric):
    """Receiver operating characteristic of the last ``update``.

    ``eval()`` returns ``(fpr, tpr, thresholds)``: three arrays for a binary curve (``y_pred`` and ``y``
    of the same ndim, positives are ``pos_label``, default 1), or three lists of ``class_num`` arrays
    (one-vs-rest) when ``y_pred`` has a class axis.
    """

    def __init__(self, class_num=None, pos_label=None):
        super().__init__()
        self.class_num = class_num if class_num is None else check_type("class_num", class_num, [int])
        self.pos_label = pos_label if pos_label is None else check_type("pos_label", pos_label, [int])
        self.clear()

    def clear(self):
        self.y_pred = 0
        self.y = 0
        self.sample_weights = None
        self._is_update = False

    @rearrange_inputs
    def update(self, *inputs):
        if len(inputs) != 2:
            raise ValueError(f"For 'ROC.update', it needs 2 inputs (predicted value, true value), "
                             f"but got {len(inputs)}")
        y_pred, y = self._convert_data(inputs[0]), self._convert_data(inputs[1])
        self.y_pred, self.y, self.class_num, self.pos_label = _curve_inputs(y_pred, y, self.class_num,
                                                                             self.pos_label)
        self._is_update = True

    def _roc_eval(self, y_pred, y, class_num, pos_label, sample_weights=None):
        if class_num == 1:
            fps, tps, thresholds = binary_clf_curve(y_pred, y, sample_weights=sample_weights, pos_label=pos_label)
            tps = np.squeeze(np.hstack([np.zeros(1, dtype=tps.dtype), tps]))
            fps = np.squeeze(np.hstack([np.zeros(1, dtype=fps.dtype), fps]))
            thresholds = np.hstack([thresholds[0][None] + 1, thresholds])
            if fps[-1] <= 0:
                raise ValueError("For 'ROC.eval', there is no negative samples in true value, false positive value "
                                 "is meaningless.")
            fpr = fps / fps[-1]
            if tps[-1] <= 0:
                raise ValueError("For 'ROC.eval', there is no positive samples in true value, true positive value "
                                 "is meaningless.")
            return fpr, tps / tps[-1], thresholds
        fpr, tpr, thresholds = [], [], []
        for c in range(class_num):
            preds_c, y_c, _, label = _curve_inputs(y_pred[:, c], y, 1, c)
            res = self._roc_eval(preds_c, y_c, 1, label, sample_weights)
            fpr.append(res[0])
            tpr.append(res[1])
            thresholds.append(res[2])
        return fpr, tpr, thresholds

    def eval(self):
        """``(fpr, tpr, thresholds)``; ``RuntimeError`` before any ``update``."""
        if self._is_update is False:
            raise RuntimeError("Please call the 'update' method before calling 'eval' method.")
        return self._roc_eval(np.squeeze(self.y_pred), np.squeeze(self.y), self.class_num, self.pos_label)


def _column_or_1d(a):
    shape = np.shape(a)
    if len(shape) == 1 or (len(shape) == 2 and shape[1] == 1):
        return np.ravel(a)
    raise ValueError(f"For 'auc', the input must be a 1-dimensional array, or a 2-dimensional array with the "
                     f"second dimension of 1, but got shape {shape}.")


def auc(x, y, reorder=False):
    """Area under the curve ``y(x)`` by the trapezoidal rule; ``x`` must be monotonic unless ``reorder``.

    >>> fpr, tpr, _ = ROC()(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
    >>> float(auc(fpr, tpr))
    0.75
    """
    if not isinstance(x, np.ndarray) or not isinstance(y, np.ndarray):
        raise TypeError(f"For 'auc', the argument 'x' and 'y' must all be np.ndarray, but got {type(x)}, {type(y)}")
    for a in (x, y):
        if a.ndim == 0:
            raise TypeError(f"Singleton array {a} cannot be considered as a valid collection.")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"Found input variables with inconsistent numbers of samples: {[x.shape[0], y.shape[0]]}.")
    x, y = _column_or_1d(x), _column_or_1d(y)
    if x.shape[0] < 2:
        raise ValueError(f"For 'auc', the shape of the argument 'x' in axis 0 must be greater than 2, "
                         f"but got {x.shape[0]}.")
    direction = 1
    if reorder:
        order = np.lexsort((y, x))
        x, y = x[order], y[order]
    else:
        dx = np.diff(x)
        if np.any(dx < 0):
            if not np.all(dx <= 0):
                raise ValueError(f"For 'auc', if the argument is False, the argument 'x' array must be increasing "
                                 f"or decreasing, but got 'x': {x}")
            direction = -1
    trapezoid = getattr(np, "trapezoid", None) or np.trapz
    area = direction * trapezoid(y, x)
    if isinstance(area, np.memmap):
        area = area.dtype.type(area)
    return area
