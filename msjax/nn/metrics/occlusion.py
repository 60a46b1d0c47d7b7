"""``OcclusionSensitivity``: how much a model's score for the label drops when each patch is occluded."""
from __future__ import annotations

import numpy as np

from msjax.common.tensor import Tensor
from msjax.nn.cell import Cell
from msjax.nn.metrics.metric import Metric, check_type, rearrange_inputs

__all__ = ["OcclusionSensitivity"]


def _bounding_box(b_box, im_shape):
    """``(min, max)`` corners of ``b_box = [min1, max1, min2, max2, ...]`` (negatives: whole extent)."""
    if b_box is None:
        return None, None
    if len(b_box) != 2 * len(im_shape):
        raise ValueError(f"For 'OcclusionSensitivity', the length of 'b_box' must be twice the number of "
                         f"predicted value's dims (except batch number), but got 'b_box' length {len(b_box)}, "
                         f"dims {len(im_shape)}.")
    b_min, b_max = np.array(b_box[::2]), np.array(b_box[1::2])
    b_min[b_min < 0] = 0
    b_max[b_max < 0] = im_shape[b_max < 0] - 1
    if np.any(b_max >= im_shape):
        raise ValueError("For 'OcclusionSensitivity', maximum bounding box must be smaller than image size for "
                         "all values.")
    if np.any(b_min > b_max):
        raise ValueError("For 'OcclusionSensitivity', minimum bounding box must be smaller than maximum bounding "
                         "box for all values.")
    return b_min, b_max


def _append_scores(model, images, ids, sensitivity):
    """``sensitivity`` with the model's scores for ``ids`` on the stacked occluded ``images`` below it."""
    ids = np.expand_dims(ids, 1)
    out = model(Tensor(np.vstack(images))).asnumpy()
    scores = out[np.arange(ids.shape[0])[:, None], ids]
    return np.vstack(scores) if sensitivity.size == 0 else np.vstack((sensitivity, scores))


class OcclusionSensitivity(Metric):
    """``update(model, x, label)`` with one image ``x`` (1, ...): occlude a cube of ``margin`` around each
    position with ``pad_val``, run ``model`` in batches of ``n_batch``; ``eval()`` is the baseline score
    of ``label`` minus each occluded score, shaped like the image (or its ``b_box`` crop).
    """

    def __init__(self, pad_val=0.0, margin=2, n_batch=128, b_box=None):
        super().__init__()
        self.pad_val = check_type("pad_val", pad_val, [float])
        self.margin = check_type("margin", margin, [int, list])
        self.n_batch = check_type("n_batch", n_batch, [int])
        self.b_box = b_box if b_box is None else check_type("b_box", b_box, [list])
        self.clear()

    def clear(self):
        self._baseline = 0
        self._sensitivity_im = 0
        self._is_update = False

    @rearrange_inputs
    def update(self, *inputs):
        if len(inputs) != 3:
            raise ValueError(f"For 'OcclusionSensitivity.update', it needs 3 inputs (classification model, "
                             f"predicted value, label), but got {len(inputs)}.")
        model = inputs[0]
        y_pred, label = self._convert_data(inputs[1]), self._convert_data(inputs[2])
        model = check_type("model", model, [Cell])
        if y_pred.shape[0] > 1:
            raise RuntimeError(f"For 'OcclusionSensitivity.update', the shape at index 0 of the predicted value "
                               f"(input[1]) must be 1, but got {y_pred.shape[0]}.")
        if np.prod(label.shape) != y_pred.shape[0]:
            raise RuntimeError(f"For 'OcclusionSensitivity.update', the number of the label (input[2]) must be "
                               f"same as the batches, but got the label number {np.prod(label.shape)}, and "
                               f"batches {y_pred.shape[0]}.")
        im_shape = np.array(y_pred.shape[1:])
        b_min, b_max = _bounding_box(self.b_box, im_shape)
        self._baseline = model(Tensor(y_pred)).asnumpy()[0, label].item()
        out_shape = im_shape if self.b_box is None else b_max - b_min + 1
        total = np.prod(out_shape)
        sensitivity, images, ids = np.empty(0, dtype=float), [], []
        for i in range(total):
            idx = np.unravel_index(i, out_shape)
            if b_min is not None:
                idx = np.asarray(idx) + b_min
            lows = [max(0, k - self.margin) for k in idx]
            highs = [min(n, k + self.margin) for k, n in zip(idx, im_shape)]
            occluded = y_pred.copy()
            occluded[(...,) + tuple(slice(a, b) for a, b in zip(lows, highs))] = self.pad_val
            images.append(occluded)
            ids.append(label)
            if len(images) == self.n_batch or i == total - 1:
                sensitivity = _append_scores(model, images, ids, sensitivity)
                images, ids = [], []
        self._sensitivity_im = sensitivity.reshape(out_shape)
        self._is_update = True

    def eval(self):
        """The sensitivity map (``numpy.ndarray``); ``RuntimeError`` before any ``update``."""
        if not self._is_update:
            raise RuntimeError("Please call the 'update' method before calling 'eval' method.")
        return self._baseline - np.squeeze(self._sensitivity_im)
