"""``ConfusionMatrix`` (class counts) and ``ConfusionMatrixMetric`` (tpr, ppv, f1, mcc, ... from tp/fp/tn/fn)."""
from __future__ import annotations

import numpy as np

from msjax.nn.metrics.metric import Metric, check_string, check_type, rearrange_inputs

__all__ = ["ConfusionMatrix", "ConfusionMatrixMetric"]

_NORMALIZE = ("target", "prediction", "all", "no_norm")
_DECREASE = ("none", "mean", "sum", "mean_batch", "sum_batch", "mean_channel", "sum_channel")


class ConfusionMatrix(Metric):
    """``num_classes x num_classes`` counts, rows true class, columns predicted class.

    ``y_pred`` is either logits with a class axis (arg-max taken), or class indices shaped like ``y``
    (float predictions are binarised with ``>= threshold``). ``normalize``: ``'no_norm'``, ``'target'``
    (rows sum to 1), ``'prediction'`` (columns) or ``'all'``; empty rows/columns give 0.
    """

    def __init__(self, num_classes, normalize="no_norm", threshold=0.5):
        super().__init__()
        self.num_classes = check_type("num_classes", num_classes, [int])
        if normalize not in _NORMALIZE:
            raise ValueError(f"For 'ConfusionMatrix', the argument 'normalize' must be in ['all', 'prediction', "
                             f"'label', 'no_norm'(None)], but got {normalize}.")
        self.normalize = normalize
        self.threshold = check_type("threshold", threshold, [float])
        self.clear()

    def clear(self):
        self.confusion_matrix = np.zeros((self.num_classes, self.num_classes))
        self._is_update = False

    @rearrange_inputs
    def update(self, *inputs):
        if len(inputs) != 2:
            raise ValueError(f"For 'ConfusionMatrix.update', it needs 2 inputs (predicted value, true value), "
                             f"but got {len(inputs)}.")
        y_pred, y = self._convert_data(inputs[0]), self._convert_data(inputs[1])
        if y_pred.ndim not in (y.ndim, y.ndim + 1):
            raise ValueError(f"For 'ConfusionMatrix.update', predicted value (input[0]) and true value (input[1]) "
                             f"should have same dimensions, or the dimension of predicted value equals the "
                             f"dimension of true value add 1, but got predicted value ndim: {y_pred.ndim}, true "
                             f"value ndim: {y.ndim}.")
        if y_pred.ndim == y.ndim + 1:
            y_pred = np.argmax(y_pred, axis=1)
        if y_pred.ndim == y.ndim and y_pred.dtype in (np.float16, np.float32, np.float64):
            y_pred = (y_pred >= self.threshold).astype(int)
        n = self.num_classes
        cells = (y.reshape(-1) * n + y_pred.reshape(-1)).astype(int)
        self.confusion_matrix += np.bincount(cells, minlength=n ** 2).reshape(n, n)
        self._is_update = True

    def eval(self):
        """The (optionally normalised) matrix, ``float64``; ``RuntimeError`` before any ``update``."""
        if not self._is_update:
            raise RuntimeError("Please call the 'update' method before calling 'eval' method.")
        matrix = self.confusion_matrix.astype(float)
        if self.normalize == "no_norm":
            return matrix
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.normalize == "target":
                matrix = matrix / matrix.sum(axis=1, keepdims=True)
            elif self.normalize == "prediction":
                matrix = matrix / matrix.sum(axis=0, keepdims=True)
            else:
                matrix = matrix / matrix.sum()
        matrix[np.isnan(matrix)] = 0
        return matrix


# metric name (spaces become '_', any case) -> short name
_ALIASES = {
    "tpr": ("sensitivity", "recall", "hit_rate", "true_positive_rate", "tpr"),
    "tnr": ("specificity", "selectivity", "true_negative_rate", "tnr"),
    "ppv": ("precision", "positive_predictive_value", "ppv"),
    "npv": ("negative_predictive_value", "npv"),
    "fnr": ("miss_rate", "false_negative_rate", "fnr"),
    "fpr": ("fall_out", "false_positive_rate", "fpr"),
    "fdr": ("false_discovery_rate", "fdr"),
    "for": ("false_omission_rate", "for"),
    "pt": ("prevalence_threshold", "pt"),
    "ts": ("threat_score", "critical_success_index", "ts", "csi"),
    "acc": ("accuracy", "acc"),
    "ba": ("balanced_accuracy", "ba"),
    "f1": ("f1_score", "f1"),
    "mcc": ("matthews_correlation_coefficient", "mcc"),
    "fm": ("fowlkes_mallows_index", "fm"),
    "bm": ("informedness", "bookmaker_informedness", "bm"),
    "mk": ("markedness", "deltap", "mk"),
}
_METRIC_NAMES = {alias: short for short, aliases in _ALIASES.items() for alias in aliases}


def _rate(num, den):
    return np.where(den > 0, num / den, np.array(float("nan")))


def _fraction(short, tp, fp, tn, fn):
    """(numerator, denominator) of metric ``short``."""
    p, n = tp + fn, fp + tn
    if short in ("pt", "ba", "bm"):
        tpr, tnr = _rate(tp, p), _rate(tn, n)
        if short == "pt":
            return np.sqrt(tpr * (1.0 - tnr)) + tnr - 1.0, tpr + tnr - 1.0
        return (tpr + tnr, 2.0) if short == "ba" else (tpr + tnr - 1.0, 1.0)
    if short == "fm":
        return np.sqrt(_rate(tp, tp + fp) * _rate(tp, p)), 1.0
    if short == "mk":
        return _rate(tp, tp + fp) + tn / (tn + fn) - 1.0, 1.0
    if short == "mcc":
        return tp * tn - fp * fn, np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return {"tpr": (tp, p), "tnr": (tn, n), "ppv": (tp, tp + fp), "npv": (tn, tn + fn), "fnr": (fn, p),
            "fpr": (fp, n), "fdr": (fp, fp + tp), "for": (fn, fn + tn), "ts": (tp, tp + fn + fp),
            "acc": (tp + tn, p + n), "f1": (tp * 2.0, tp * 2.0 + fn + fp)}[short]


def _compute_metric(metric_name, confusion_matrix):
    """The metric from ``[..., 4]`` (tp, fp, tn, fn) counts; 0 denominators give nan."""
    short = _METRIC_NAMES.get(metric_name.replace(" ", "_").lower())
    if short is None:
        raise NotImplementedError("The metric is not implemented.")
    if confusion_matrix.ndim == 1:
        confusion_matrix = np.expand_dims(confusion_matrix, 0)
    if confusion_matrix.shape[-1] != 4:
        raise ValueError(f"For 'ConfusionMatrix', the size of the last dimension of confusion_matrix must be 4, "
                         f"but got {confusion_matrix.shape[-1]}.")
    with np.errstate(divide="ignore", invalid="ignore"):
        numerator, denominator = _fraction(short, *(confusion_matrix[..., i] for i in range(4)))
        if isinstance(denominator, np.ndarray):
            return np.where(denominator != 0, numerator / denominator, np.array(float("nan")))
        return numerator / denominator


def _reduce(chart, decrease):
    """``(reduced chart, count of non-nan entries)`` of a (batch, class) chart; nan entries become 0."""
    nans = np.isnan(chart)
    not_nans = (~nans).astype(float)
    chart[nans] = 0
    zero = np.zeros(1, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        if decrease == "mean":
            per_batch = not_nans.sum(axis=1)
            chart = np.where(per_batch > 0, chart.sum(axis=1) / per_batch, zero)
            not_nans = (per_batch > 0).astype(float).sum(axis=0)
            return np.where(not_nans > 0, chart.sum(axis=0) / not_nans, zero), not_nans
        if decrease == "sum":
            return np.sum(chart, axis=(0, 1)), not_nans.sum(axis=(0, 1))
        if decrease in ("sum_batch", "sum_channel"):
            axis = 0 if decrease == "sum_batch" else 1
            return chart.sum(axis=axis), not_nans.sum(axis=axis)
        if decrease == "mean_channel":
            not_nans = not_nans.sum(axis=1)
            return np.where(not_nans > 0, chart.sum(axis=1) / not_nans, zero), not_nans
        if decrease == "mean_batch":
            raise TypeError("cannot unpack non-iterable function object: MindSpore 2.10 cannot reduce with "
                            "decrease='mean_batch' (its table holds the function, not its result)")
    return chart, not_nans


def _batch_counts(y_pred, y, skip_channel):
    """(batch, class, 4) tp/fp/tn/fn over the spatial positions; ``skip_channel=False`` drops channel 0."""
    if not skip_channel:
        y = y[:, 1:] if y.shape[1] > 1 else y
        y_pred = y_pred[:, 1:] if y_pred.shape[1] > 1 else y_pred
    y, y_pred = y.astype(float), y_pred.astype(float)
    if y.shape != y_pred.shape:
        raise ValueError(f"The 'y_shape' should be equal to y_pred_shape: {y_pred.shape}, but got {y.shape}.")
    batch_size, n_class = y_pred.shape[:2]
    y_pred, y = y_pred.reshape(batch_size, n_class, -1), y.reshape(batch_size, n_class, -1)
    tp = (y_pred + y == 2).astype(float).sum(axis=2)
    tn = (y_pred + y == 0).astype(float).sum(axis=2)
    p = y.sum(axis=2)
    return np.stack([tp, y.shape[-1] - p - tn, tn, p - tp], axis=-1)


class _BatchMetric:
    """One batch's counts, or (with ``calculation_method``) its reduced metric and non-nan count.

    Like MindSpore it turns its own ``calculation_method`` off for 2-D inputs (or 3-D ending in 1),
    and keeps it off for later batches.
    """

    def __init__(self, skip_channel, metric_name, calculation_method, decrease):
        self.skip_channel, self.metric_name = skip_channel, metric_name
        self.calculation_method, self.decrease = calculation_method, decrease

    def __call__(self, y_pred, y):
        if not np.all(y.astype(np.uint8) == y):
            raise ValueError("For 'ConfusionMatrix.update', the true value (input[1]) must be a binarized ndarray.")
        if y_pred.ndim < 2:
            raise ValueError(f"For 'ConfusionMatrix.update', the predicted value (input[0]) must have at least "
                             f"2 dimensions, but got {y_pred.ndim}.")
        if y_pred.ndim == 2 or (y_pred.ndim == 3 and y_pred.shape[-1] == 1):
            self.calculation_method = False
        counts = _batch_counts(y_pred, y, self.skip_channel)
        if self.calculation_method:
            return _reduce(_compute_metric(self.metric_name, counts), self.decrease)
        return counts


class ConfusionMatrixMetric(Metric):
    """A confusion-matrix metric (``metric_name``: 'sensitivity', 'precision', 'f1 score', 'mcc', ...) for
    binarised ``y_pred``/``y`` shaped (batch, channel, ...).

    ``calculation_method=False``: counts summed over all batches, the metric computed once (an array of
    shape (1,)). ``True``: the metric per batch, reduced by ``decrease``, averaged over non-nan entries.
    """

    def __init__(self, skip_channel=True, metric_name="sensitivity", calculation_method=False, decrease="mean"):
        super().__init__()
        self.confusion_matrix = _BatchMetric(skip_channel, metric_name, calculation_method, decrease)
        self.skip_channel = check_type("skip_channel", skip_channel, [bool])
        self.calculation_method = check_type("calculation_method", calculation_method, [bool])
        self.metric_name = check_type("metric_name", metric_name, [str])
        self.decrease = check_string("decrease", check_type("decrease", decrease, [str]), _DECREASE)
        self.clear()

    def clear(self):
        self._total_num = 0
        self._class_num = 0
        self._total_tp = self._total_fp = self._total_tn = self._total_fn = 0.0

    @rearrange_inputs
    def update(self, *inputs):
        if len(inputs) != 2:
            raise ValueError(f"For 'ConfusionMatrixMetric.update', it needs 2 inputs (predicted value, true value), "
                             f"but got {len(inputs)}.")
        y_pred, y = self._convert_data(inputs[0]), self._convert_data(inputs[1])
        if self.calculation_method:
            score, not_nans = self.confusion_matrix(y_pred, y)
            not_nans = int(not_nans.item())
            self._total_num += score.item() * not_nans
            self._class_num += not_nans
        else:
            counts, _ = _reduce(self.confusion_matrix(y_pred, y), "sum")
            self._total_tp += counts[0].item()
            self._total_fp += counts[1].item()
            self._total_tn += counts[2].item()
            self._total_fn += counts[3].item()

    def eval(self):
        """The metric: a float (``calculation_method=True``) or an array of shape (1,)."""
        if self.calculation_method:
            if self._class_num == 0:
                raise RuntimeError("The 'ConfusionMatrixMetric' can not be calculated, because the number of "
                                   "samples is 0, please check whether your inputs(predicted value, true value) are "
                                   "empty, or has called update method before calling eval method.")
            return self._total_num / self._class_num
        counts = np.array([self._total_tp, self._total_fp, self._total_tn, self._total_fn])
        return _compute_metric(self.metric_name, counts)
