"""Loss cells: ``SoftmaxCrossEntropyWithLogits``, ``CrossEntropyLoss``, ``MSELoss`` (MindSpore's math).

>>> loss = SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
>>> float(loss(Tensor(np.zeros((2, 3), np.float32)), Tensor(np.array([0, 1], np.int32))))  # ln 3
1.0986123...
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from msjax.errors import LayerArgumentError
from msjax.nn.cell import Cell

__all__ = ["LossBase", "SoftmaxCrossEntropyWithLogits", "CrossEntropyLoss", "MSELoss", "L1Loss", "SmoothL1Loss",
           "BCEWithLogitsLoss", "NLLLoss", "KLDivLoss"]

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction, cls):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"For '{cls}', 'reduction' must be one of {list(_REDUCTIONS)}, got {reduction!r}")
    return reduction


class LossBase(Cell):
    """Base of loss cells: ``get_loss(x, weights=1.0)`` applies ``reduction``."""

    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = _check_reduction(reduction, type(self).__name__)

    def get_loss(self, x, weights=1.0):
        x = jnp.asarray(x) * weights
        if self.reduction == "mean":
            return jnp.mean(x)
        if self.reduction == "sum":
            return jnp.sum(x)
        return x


class SoftmaxCrossEntropyWithLogits(LossBase):
    """Cross entropy of ``softmax(logits)`` against one-hot labels (``sparse=True``: class indices)."""

    def __init__(self, sparse=False, reduction="none"):
        super().__init__(reduction)
        self.sparse = bool(sparse)

    def construct(self, logits, labels):
        logits = jnp.asarray(logits)
        if self.sparse:
            labels = jax.nn.one_hot(jnp.asarray(labels), logits.shape[-1], dtype=logits.dtype)
        loss = -jnp.sum(jnp.asarray(labels, logits.dtype) * jax.nn.log_softmax(logits, axis=-1), axis=-1)
        return self.get_loss(loss)


class CrossEntropyLoss(LossBase):
    """``CrossEntropyLoss(weight=None, ignore_index=-100, reduction='mean', label_smoothing=0.0)``.

    Targets are class indices (shape ``(N,)``) or class probabilities (same shape as logits).
    """

    def __init__(self, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        super().__init__(reduction)
        self.class_weight = None if weight is None else jnp.asarray(weight, jnp.float32)
        self.ignore_index = int(ignore_index)
        self.label_smoothing = float(label_smoothing)

    def construct(self, logits, labels):
        logits, labels = jnp.asarray(logits), jnp.asarray(labels)
        n_classes = logits.shape[1] if logits.ndim > 1 else logits.shape[0]
        logp = jax.nn.log_softmax(logits, axis=1 if logits.ndim > 1 else 0)
        w = jnp.ones((n_classes,), logits.dtype) if self.class_weight is None else self.class_weight.astype(logits.dtype)
        shape = [1] * logits.ndim
        shape[1 if logits.ndim > 1 else 0] = n_classes
        wb = w.reshape(shape)
        eps = self.label_smoothing
        if jnp.issubdtype(labels.dtype, jnp.integer):
            valid = labels != self.ignore_index
            safe = jnp.where(valid, labels, 0)
            onehot = jnp.moveaxis(jax.nn.one_hot(safe, n_classes, dtype=logits.dtype), -1, 1 if logits.ndim > 1 else 0)
            target = onehot * (1 - eps) + eps / n_classes
            axis = 1 if logits.ndim > 1 else 0
            loss = -jnp.sum(target * logp * wb, axis=axis) * valid
            if self.reduction == "mean":
                denom = jnp.sum(jnp.take(w, safe) * valid)
                return jnp.sum(loss) / denom
            return self.get_loss(loss)
        target = labels.astype(logits.dtype) * (1 - eps) + eps / n_classes
        loss = -jnp.sum(target * logp * wb, axis=1 if logits.ndim > 1 else 0)
        if self.reduction == "mean":
            return jnp.sum(loss) / (loss.size if loss.ndim else 1)
        return self.get_loss(loss)


class MSELoss(LossBase):
    """Mean squared error ``(logits - labels) ** 2`` with ``reduction`` (default ``'mean'``)."""

    def __init__(self, reduction="mean"):
        super().__init__(reduction)

    def construct(self, logits, labels):
        return self.get_loss(jnp.square(jnp.asarray(logits) - jnp.asarray(labels)))


def _reduce(loss, reduction):
    if reduction == "mean":
        return jnp.mean(loss)
    if reduction == "sum":
        return jnp.sum(loss)
    return loss


class L1Loss(LossBase):
    """Mean absolute error ``|logits - labels|`` with ``reduction`` (default ``'mean'``)."""

    def __init__(self, reduction="mean"):
        super().__init__(reduction)

    def construct(self, logits, labels):
        return self.get_loss(jnp.abs(jnp.asarray(logits) - jnp.asarray(labels)))


class SmoothL1Loss(LossBase):
    """``0.5 * d ** 2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 * beta`` (default ``reduction='none'``)."""

    def __init__(self, beta=1.0, reduction="none"):
        super().__init__(reduction)
        if isinstance(beta, bool) or not isinstance(beta, (int, float)):
            raise TypeError(f"For 'SmoothL1Loss', 'beta' must be a float, got {type(beta).__name__}")
        if beta <= 0:
            raise LayerArgumentError(f"For 'SmoothL1Loss', 'beta' must be > 0, got {beta}")
        self.beta = float(beta)

    def construct(self, logits, labels):
        d = jnp.abs(jnp.asarray(logits) - jnp.asarray(labels))
        return self.get_loss(jnp.where(d < self.beta, 0.5 * d * d / self.beta, d - 0.5 * self.beta))


class BCEWithLogitsLoss(LossBase):
    """``-weight * (pos_weight * y * log(sigmoid(x)) + (1 - y) * log(1 - sigmoid(x)))``, computed stably."""

    def __init__(self, reduction="mean", weight=None, pos_weight=None):
        super().__init__(reduction)
        self.weight = None if weight is None else jnp.asarray(weight, jnp.float32)
        self.pos_weight = None if pos_weight is None else jnp.asarray(pos_weight, jnp.float32)

    def construct(self, logits, labels):
        x, y = jnp.asarray(logits), jnp.asarray(labels, jnp.asarray(logits).dtype)
        log_p, log_not_p = jax.nn.log_sigmoid(x), jax.nn.log_sigmoid(-x)
        pos = y * log_p if self.pos_weight is None else self.pos_weight.astype(x.dtype) * y * log_p
        loss = -(pos + (1 - y) * log_not_p)
        if self.weight is not None:
            loss = loss * self.weight.astype(x.dtype)
        return self.get_loss(loss)


class NLLLoss(LossBase):
    """``-weight[t] * logits[n, t]`` for class indices ``t``; ``'mean'`` divides by the kept weights."""

    def __init__(self, weight=None, ignore_index=-100, reduction="mean"):
        super().__init__(reduction)
        self.class_weight = None if weight is None else jnp.asarray(weight, jnp.float32)
        self.ignore_index = int(ignore_index)

    def construct(self, logits, labels):
        x, t = jnp.asarray(logits), jnp.asarray(labels)
        valid = t != self.ignore_index
        safe = jnp.where(valid, t, 0)
        picked = jnp.take_along_axis(x, jnp.expand_dims(safe, 1), axis=1).squeeze(1)
        w = jnp.ones((x.shape[1],), x.dtype) if self.class_weight is None else self.class_weight.astype(x.dtype)
        wt = jnp.take(w, safe) * valid
        loss = -picked * wt
        if self.reduction == "mean":
            return jnp.sum(loss) / jnp.sum(wt)
        return _reduce(loss, self.reduction)


class KLDivLoss(LossBase):
    """``labels * (log(labels) - logits)`` (0 where ``labels`` is 0); ``reduction`` adds ``'batchmean'``."""

    def __init__(self, reduction="mean"):
        if reduction not in ("batchmean", *_REDUCTIONS):
            raise ValueError(f"For 'KLDivLoss', 'reduction' must be one of ['batchmean', 'mean', 'sum', 'none'], "
                             f"got {reduction!r}")
        super().__init__("none")
        self.reduction = reduction

    def construct(self, logits, labels):
        x, y = jnp.asarray(logits), jnp.asarray(labels)
        loss = jax.scipy.special.xlogy(y, y) - y * x
        if self.reduction == "batchmean":
            return jnp.sum(loss) / x.shape[0]
        return _reduce(loss, self.reduction)
