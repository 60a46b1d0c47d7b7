"""``Loss`` (mean of the per-step losses), ``MAE`` and ``MSE``."""
from __future__ import annotations

import numpy as np

from msjax.nn.metrics.metric import Metric, rearrange_inputs, require_samples

__all__ = ["Loss", "MAE", "MSE"]


class Loss(Metric):
    """The average over ``update`` calls of each call's (0-d or 1-d, then averaged) loss.

    >>> m = Loss()
    >>> m.update(np.array([1.0, 3.0]))
    >>> float(m.eval())
    2.0
    """

    def __init__(self):
        super().__init__()
        self.clear()

    def clear(self):
        self._sum_loss = 0
        self._total_num = 0

    @rearrange_inputs
    def update(self, *inputs):
        if len(inputs) != 1:
            raise ValueError(f"For 'Loss.update', it needs 1 input (loss), but got {len(inputs)}")
        loss = self._convert_data(inputs[0])
        if loss.ndim == 0:
            loss = loss.reshape(1)
        if loss.ndim != 1:
            raise ValueError(f"For 'Loss.update', the dimension of your input (loss) must be 1, but got {loss.ndim}.")
        self._sum_loss += loss.mean(-1)
        self._total_num += 1

    def eval(self):
        """The mean loss (a numpy scalar of the loss's dtype); ``RuntimeError`` before any ``update``."""
        if self._total_num == 0:
            raise RuntimeError("The 'Loss' can not be calculated, because the number of samples is 0, please "
                               "check whether has called update method before calling eval method.")
        return self._sum_loss / self._total_num


class _ErrorSum(Metric):
    """Sum of ``_error(y_pred - y)`` over all elements, divided by the number of samples (axis 0)."""

    _name = ""

    def __init__(self):
        super().__init__()
        self.clear()

    def clear(self):
        self._error_sum = 0
        self._samples_num = 0

    @staticmethod
    def _error(diff):
        raise NotImplementedError

    @rearrange_inputs
    def update(self, *inputs):
        if len(inputs) != 2:
            raise ValueError(f"For '{self._name}.update', it needs 2 inputs (predicted value, true value), "
                             f"but got {len(inputs)}.")
        y_pred, y = self._convert_data(inputs[0]), self._convert_data(inputs[1])
        self._error_sum += self._error(y.reshape(y_pred.shape) - y_pred).sum()
        self._samples_num += y.shape[0]

    def eval(self):
        require_samples(self._samples_num, self._name)
        return self._error_sum / self._samples_num


class MAE(_ErrorSum):
    """Mean absolute error: ``sum |y_pred - y| / N`` (``y`` is reshaped to ``y_pred``'s shape)."""

    _name = "MAE"
    _error = staticmethod(np.abs)


class MSE(_ErrorSum):
    """Mean squared error: ``sum (y_pred - y)**2 / N`` (``y`` is reshaped to ``y_pred``'s shape)."""

    _name = "MSE"

    @staticmethod
    def _error(diff):
        return np.power(diff, 2)
