"""Segmentation distances between the borders of two label maps: ``HausdorffDistance``,
``MeanSurfaceDistance`` and ``RootMeanSquareDistance`` (scipy.ndimage distance transforms).

Each ``update(y_pred, y, label_idx)`` replaces the previous one; ``eval`` measures the last.
"""
from __future__ import annotations

import numpy as np

from msjax.nn.metrics.metric import Metric, check_string, check_type, rearrange_inputs

__all__ = ["HausdorffDistance", "MeanSurfaceDistance", "RootMeanSquareDistance"]

_DISTANCES = ("euclidean", "chessboard", "taxicab")


def _ndimage():
    from scipy import ndimage  # jax depends on scipy; imported on first use
    return ndimage


def _edges(mask):
    """The border of a boolean mask: the mask minus its binary erosion."""
    return _ndimage().binary_erosion(mask) ^ mask


def _surface_distance(from_edges, to_edges, distance_metric):
    """Distance from each ``from_edges`` point to the nearest ``to_edges`` point (inf if there is none)."""
    if not np.any(from_edges):
        return np.array([])
    if not np.any(to_edges):
        dis = np.full(to_edges.shape, np.inf)
    elif distance_metric == "euclidean":
        dis = _ndimage().distance_transform_edt(~to_edges)
    else:
        dis = _ndimage().distance_transform_cdt(~to_edges, metric=distance_metric)
    return dis[from_edges]


def _check_inputs(metric, inputs, who, label_error=ValueError):
    """``(y_pred, y, label_idx)`` of an ``update``, checked as MindSpore does."""
    if len(inputs) != 3:
        raise ValueError(f"For '{who}.update', it needs 3 inputs (predicted value, true value, label index), "
                         f"but got {len(inputs)}.")
    y_pred, y = metric._convert_data(inputs[0]), metric._convert_data(inputs[1])
    label_idx = inputs[2]
    if not isinstance(label_idx, (int, float)):
        raise label_error(f"For '{who}.update', the label index (input[2]) must be int or float, "
                          f"but got {type(label_idx)}.")
    if label_idx not in y_pred and label_idx not in y:
        raise ValueError(f"For '{who}.update', the label index (input[2]) must be in predicted value (input[0]) "
                         f"or true value (input[1]), but {label_idx} is not.")
    if y_pred.size == 0 or y_pred.shape != y.shape:
        raise ValueError(f"For '{who}.update', the size of predicted value (input[0]) and true value (input[1]) "
                         f"must be greater than 0 and their shapes equal, but got predicted value size: "
                         f"{y_pred.size}, shape: {y_pred.shape}, true value size: {y.size}, shape: {y.shape}.")
    return y_pred, y, label_idx


def _bounding_box(mask):
    """``(start, end)`` per spatial dim of the True entries of ``mask`` (1, *spatial)."""
    data = np.any(mask > 0, axis=0)
    nonzero = np.nonzero(data)
    start, end = [], []
    for i in range(data.ndim):
        if nonzero[i].size <= 0:
            raise ValueError(f"Did not find nonzero index at the spatial dim {i}")
        start.append(max(0, np.min(nonzero[i])))
        end.append(min(data.shape[i], np.max(nonzero[i]) + 1))
    return start, end


class HausdorffDistance(Metric):
    """The (``percentile``-th, default max) distance between the borders of ``y_pred == label_idx`` and
    ``y == label_idx``; the larger of both directions unless ``directed``. ``crop`` first cuts both masks
    to their joint bounding box. No predicted border: ``inf``.
    """

    def __init__(self, distance_metric="euclidean", percentile=None, directed=False, crop=True):
        super().__init__()
        self.distance_metric = check_string("distance_metric", check_type("distance_metric", distance_metric,
                                                                          [str]), _DISTANCES)
        self.percentile = None if percentile is None else check_type("percentile", percentile, [float])
        self.directed = directed if directed is None else check_type("directed", directed, [bool])
        self.crop = crop if crop is None else check_type("crop", crop, [bool])
        self.clear()

    def clear(self):
        self.y_pred_edges = 0
        self.y_edges = 0
        self._is_update = False

    def _percent_distance(self, from_edges, to_edges):
        distances = _surface_distance(from_edges, to_edges, self.distance_metric)
        if distances.shape == (0,):
            return np.inf
        if not self.percentile:
            return distances.max()
        if 0 <= self.percentile <= 100:
            return np.percentile(distances, self.percentile)
        raise ValueError(f"For 'HausdorffDistance', the value of the argument 'percentile' must be [0, 100], "
                         f"but got {self.percentile}.")

    @rearrange_inputs
    def update(self, *inputs):
        self._is_update = True  # set before the checks, as in MindSpore
        y_pred, y, label_idx = _check_inputs(self, inputs, "HausdorffDistance")
        y_pred, y = y_pred == label_idx, y == label_idx
        if self.crop:
            y_pred, y = np.expand_dims(y_pred, 0), np.expand_dims(y, 0)
            start, end = _bounding_box(y_pred | y)
            box = (slice(None),) + tuple(slice(s, e) for s, e in zip(start, end))
            y_pred, y = np.squeeze(y_pred[box]), np.squeeze(y[box])
        self.y_pred_edges, self.y_edges = _edges(y_pred), _edges(y)

    def eval(self):
        """The distance (a numpy float, or ``inf``); ``RuntimeError`` before any ``update``."""
        if self._is_update is False:
            raise RuntimeError("Please call the 'update' method before calling 'eval' method.")
        hd = self._percent_distance(self.y_pred_edges, self.y_edges)
        if self.directed:
            return hd
        return max(hd, self._percent_distance(self.y_edges, self.y_pred_edges))


class _SurfaceDistance(Metric):
    """Shared by the mean and root-mean-square surface distances."""

    _name = ""
    _label_error = ValueError

    def __init__(self, symmetric=False, distance_metric="euclidean"):
        super().__init__()
        self.distance_metric_list = list(_DISTANCES)
        self.distance_metric = check_string("distance_metric", check_type("distance_metric", distance_metric,
                                                                          [str]), _DISTANCES)
        self.symmetric = check_type("symmetric", symmetric, [bool])
        self.clear()
        # MindSpore 2.10 leaves these None (not False) until the first clear(): an eval() before any update
        # finds no edges and returns inf instead of raising
        self._is_update, self._y_pred_edges, self._y_edges = None, None, None

    def clear(self):
        self._y_pred_edges = 0
        self._y_edges = 0
        self._is_update = False

    @rearrange_inputs
    def update(self, *inputs):
        y_pred, y, label_idx = _check_inputs(self, inputs, self._name, self._label_error)
        if y_pred.dtype != bool:
            y_pred = y_pred == label_idx
        if y.dtype != bool:
            y = y == label_idx
        self._y_pred_edges, self._y_edges = _edges(y_pred), _edges(y)
        self._is_update = True

    def _distances(self, reverse=False):
        edges = (self._y_edges, self._y_pred_edges) if reverse else (self._y_pred_edges, self._y_edges)
        return _surface_distance(*edges, self.distance_metric)

    def eval(self):
        raise NotImplementedError


class MeanSurfaceDistance(_SurfaceDistance):
    """Mean distance from the predicted border to the true border (``symmetric``: mean of both ways)."""

    _name = "MeanSurfaceDistance"

    def eval(self):
        """The distance (a numpy float, or ``inf``); ``RuntimeError`` before any ``update``."""
        if self._is_update is False:
            raise RuntimeError("Please call the 'update' method before calling 'eval' method.")
        distances = self._distances()
        if distances.shape == (0,):
            return np.inf
        if not self.symmetric:
            return distances.mean()
        back = self._distances(reverse=True)
        if back.shape == (0,):
            return np.inf
        return np.mean((distances.mean(), back.mean()))


class RootMeanSquareDistance(_SurfaceDistance):
    """Mean squared distance from the predicted border to the true border; ``symmetric``: the root of
    the mean of both ways' mean squares (MindSpore 2.10 takes no root in the one-way case)."""

    _name = "RootMeanSquareDistance"
    _label_error = TypeError

    def eval(self):
        """The distance (a numpy float, or ``inf``); ``RuntimeError`` before any ``update``."""
        if self._is_update is False:
            raise RuntimeError("Please call the 'update' method before calling 'eval' method.")
        distances = self._distances()
        if distances.shape == (0,):
            return np.inf
        rms = (distances ** 2).mean()
        if not self.symmetric:
            return rms
        back = self._distances(reverse=True)
        if back.shape == (0,):
            return np.inf
        return np.sqrt(np.mean((rms, (back ** 2).mean())))
