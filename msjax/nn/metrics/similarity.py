"""``Dice`` (mean per-batch Dice coefficient) and ``CosineSimilarity`` (pairwise similarity matrix)."""
from __future__ import annotations

import numpy as np

from msjax.nn.metrics.metric import Metric, check_positive_float, check_string, check_type, rearrange_inputs

__all__ = ["Dice", "CosineSimilarity"]


class Dice(Metric):
    """``2 * |y_pred . y| / (|y_pred|^2 + |y|^2 + smooth)`` per ``update``, summed, divided by the samples.

    As in MindSpore the samples are counted before the shape check, so a refused batch still counts.
    """

    def __init__(self, smooth=1e-5):
        super().__init__()
        self.smooth = check_positive_float("smooth", smooth)
        self.clear()

    def clear(self):
        self._dice_coeff_sum = 0
        self._samples_num = 0

    @rearrange_inputs
    def update(self, *inputs):
        if len(inputs) != 2:
            raise ValueError(f"For 'Dice.update', it needs 2 inputs (predicted value, true value), "
                             f"but got {len(inputs)}.")
        y_pred, y = self._convert_data(inputs[0]), self._convert_data(inputs[1])
        self._samples_num += y.shape[0]
        if y_pred.shape != y.shape:
            raise ValueError(f"For 'Dice.update', predicted value (input[0]) and true value (input[1]) should have "
                             f"same shape, but got predicted value shape: {y_pred.shape}, true value shape: "
                             f"{y.shape}.")
        p, t = y_pred.flatten(), y.flatten()
        intersection = np.dot(p, t)
        union = np.dot(p, p) + np.dot(t, t)
        self._dice_coeff_sum += 2 * float(intersection) / float(union + self.smooth)

    def eval(self):
        """The Dice coefficient (a Python float); ``RuntimeError`` before any ``update``."""
        if self._samples_num == 0:
            raise RuntimeError("The 'Dice coefficient' can not be calculated, because the number of samples is 0, "
                               "please check whether your inputs(predicted value, true value) are empty, or has "
                               "called update method before calling eval method.")
        return self._dice_coeff_sum / float(self._samples_num)


class CosineSimilarity(Metric):
    """The (N, N) similarity of the rows of the last ``update``'s (N, D) input: ``'cosine'`` or ``'dot'``.

    ``eval`` zeroes the diagonal (``zero_diagonal``) and reduces each row (``reduction``: ``'none'``,
    ``'sum'``, ``'mean'``) in place, as MindSpore does, so a second ``eval`` works on its result.
    """

    def __init__(self, similarity="cosine", reduction="none", zero_diagonal=True):
        super().__init__()
        self.similarity = check_string("similarity", check_type("similarity", similarity, [str]), ("dot", "cosine"))
        self.reduction = check_string("reduction", check_type("reduction", reduction, [str]),
                                      ("none", "sum", "mean"))
        self.zero_diagonal = check_type("zero_diagonal", zero_diagonal, [bool])
        self.clear()
        self._is_update = None

    def clear(self):
        self.sqr_mtx_res = 0
        self._is_update = False

    @rearrange_inputs
    def update(self, inputs):
        data = self._convert_data(inputs)
        if self.similarity == "cosine":
            data = data / np.expand_dims(np.linalg.norm(data, ord=2, axis=1), 1)
        self.sqr_mtx_res = np.dot(data, data.transpose(1, 0))
        self._is_update = True

    def eval(self):
        """The similarity matrix (or its row sums/means); ``RuntimeError`` before any ``update``."""
        if not self._is_update:
            raise RuntimeError("Please call the 'update' method before calling 'eval' method.")
        if self.zero_diagonal:
            np.fill_diagonal(self.sqr_mtx_res, 0)
        if self.reduction == "mean":
            self.sqr_mtx_res = np.mean(self.sqr_mtx_res, axis=-1)
        elif self.reduction == "sum":
            self.sqr_mtx_res = np.sum(self.sqr_mtx_res, axis=-1)
        return self.sqr_mtx_res
