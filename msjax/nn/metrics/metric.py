"""``Metric`` (MindSpore's abstract base), ``rearrange_inputs`` and the helpers the metrics share.

A metric runs on the host: ``update`` turns its inputs (msjax ``Tensor``, ``jax.Array``, numpy array
or list) into numpy arrays and accumulates; ``eval`` computes the result; ``clear`` resets. As in
MindSpore, ``eval`` before any ``update`` raises ``RuntimeError``.
"""
from __future__ import annotations

import functools
import sys
from abc import ABCMeta, abstractmethod

import numpy as np

_EVAL_TYPES = ("classification", "multilabel")
EPS = sys.float_info.min


def rearrange_inputs(func):
    """Decorate ``update`` so that ``set_indexes([i, j, ...])`` picks and orders its inputs.

    >>> class Pick(Metric):
    ...     clear = eval = lambda self: None
    ...     @rearrange_inputs
    ...     def update(self, *inputs):
    ...         return inputs
    >>> Pick().set_indexes([1, 0]).update(5, 9)
    (9, 5)
    """
    @functools.wraps(func)
    def wrapper(self, *inputs):
        indexes = self.indexes
        if indexes:
            inputs = [inputs[i] for i in indexes]
        return func(self, *inputs)
    return wrapper


def check_type(name, value, types):
    """MindSpore's ``check_value_type``: ``TypeError`` unless ``value`` is one of ``types`` (bool is no int)."""
    if (isinstance(value, bool) and bool not in types) or not isinstance(value, tuple(types)):
        names = [t.__name__ for t in types]
        raise TypeError(f"The type of '{name}' should be {names if len(names) > 1 else repr(names[0])}, "
                        f"but got type '{type(value).__name__}'.")
    return value


def check_string(name, value, valid):
    """``ValueError`` unless ``value`` is a str in ``valid``."""
    if not (isinstance(value, str) and value in valid):
        raise ValueError(f"The '{name}' must be str and must be in '{list(valid)}', but got '{value}'.")
    return value


def check_positive_float(name, value):
    """A float > 0 (``TypeError`` for other types, bool and int included; ``ValueError`` for <= 0, inf, nan)."""
    if isinstance(value, bool) or not isinstance(value, float):
        raise TypeError(f"The '{name}' must be float, but got '{type(value).__name__}'")
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"The '{name}' must be float and must > 0, but got '{value}'.")
    return value


class Metric(metaclass=ABCMeta):
    """Base class of metrics: subclasses override ``clear``, ``update`` and ``eval``.

    Decorate ``update`` with :func:`rearrange_inputs` for :meth:`set_indexes` to take effect.
    """

    def __init__(self):
        self._indexes = None

    def _convert_data(self, data):
        """The input as a numpy array: a Tensor/Parameter, ``jax.Array``, numpy array or list."""
        if isinstance(data, np.ndarray):
            return data
        if isinstance(data, list):
            return np.array(data)
        if hasattr(data, "asnumpy"):
            return np.asarray(data.asnumpy())
        if hasattr(data, "__jax_array__") or type(data).__module__.startswith(("jax", "jaxlib")):
            return np.asarray(data)
        if isinstance(data, np.generic):  # msjax leniency: MindSpore refuses numpy scalars
            return np.asarray(data)
        raise TypeError(f"For 'Metric' and its derived classes, the input data type must be tensor, list or "
                        f"numpy.ndarray, but got {type(data)}.")

    @property
    def indexes(self):
        """The ``update`` input order set by :meth:`set_indexes` (``None``: as given)."""
        return getattr(self, "_indexes", None)

    def set_indexes(self, indexes):
        """Use ``update`` inputs ``indexes`` (a list of ints), in that order; returns ``self``."""
        if not isinstance(indexes, list) or not all(isinstance(i, int) for i in indexes):
            raise ValueError("For 'set_indexes', the argument 'indexes' must be a list and all its elements must "
                             "be int, please check whether it is correct.")
        self._indexes = indexes
        return self

    def __call__(self, *inputs):
        """``clear()``, ``update(*inputs)``, then ``eval()``."""
        self.clear()
        self.update(*inputs)
        return self.eval()

    @abstractmethod
    def clear(self):
        """Reset the accumulated state."""

    @abstractmethod
    def eval(self):
        """The result over everything passed to ``update`` since ``clear``."""

    @abstractmethod
    def update(self, *inputs):
        """Accumulate one batch (usually ``y_pred, y``)."""


class EvaluationBase(Metric):
    """A metric with ``eval_type`` ``'classification'`` or ``'multilabel'`` and its shape/value checks."""

    def __init__(self, eval_type):
        super().__init__()
        if eval_type not in _EVAL_TYPES:
            raise TypeError(f"The argument 'eval_type' must be in {set(_EVAL_TYPES)}, but got {eval_type}")
        self._type = eval_type

    def _check_shape(self, y_pred, y):
        if self._type == "classification":
            if y_pred.ndim != y.ndim + 1:
                raise ValueError(f"In classification case, the dimension of y_pred (predicted value) should equal "
                                 f"to the dimension of y (true value) add 1, but got y_pred dimension: {y_pred.ndim} "
                                 f"and y dimension: {y.ndim}.")
            if y.shape != (y_pred.shape[0],) + y_pred.shape[2:]:
                raise ValueError(f"In classification case, y shape should be y_pred shape without its index 1, "
                                 f"but got y_pred shape {y_pred.shape} and y shape {y.shape}")
        elif y_pred.ndim != y.ndim or y_pred.shape != y.shape:
            raise ValueError(f"In {self._type} case, the shape of y_pred (predicted value) should equal to the shape "
                             f"of y (true value), but got y_pred shape: {y_pred.shape} and y shape: {y.shape}.")

    def _check_value(self, y_pred, y):
        if self._type != "classification" and not (np.equal(y_pred ** 2, y_pred).all()
                                                   and np.equal(y ** 2, y).all()):
            raise ValueError("In multilabel case, all elements in y_pred (predicted value) and y (true value) "
                             "should be 0 or 1.")

    def _check_class_num(self, y_pred, who):
        if self._class_num == 0:
            self._class_num = y_pred.shape[1]
        elif y_pred.shape[1] != self._class_num:
            raise ValueError(f"For '{who}.update', class number not match, last input predicted data contain "
                             f"{self._class_num} classes, but current predicted data contain {y_pred.shape[1]} "
                             f"classes, please check your predicted value(inputs[0]).")

    def _prepare(self, inputs, who):
        """The checked ``(y_pred, y)`` of an ``update``; one-hot labels become indices."""
        if len(inputs) != 2:
            raise ValueError(f"For '{who}.update', it needs 2 inputs (predicted value, true value), "
                             f"but got {len(inputs)}")
        y_pred, y = self._convert_data(inputs[0]), self._convert_data(inputs[1])
        if self._type == "classification" and y_pred.ndim == y.ndim and is_onehot(y):
            y = y.argmax(axis=1)
        self._check_shape(y_pred, y)
        self._check_value(y_pred, y)
        self._check_class_num(y_pred, who)
        return y_pred, y


def is_onehot(data):
    """True when ``data`` (N, C, ...) holds only 0/1 and each sample sums to 1 over axis 1."""
    if data.ndim > 1 and np.equal(data ** 2, data).all():
        return bool(np.equal(np.ones((data.shape[0],) + data.shape[2:]), data.sum(axis=1)).all())
    return False


def require_samples(count, who):
    """``RuntimeError`` when nothing was passed to ``update`` (MindSpore's message)."""
    if count == 0:
        raise RuntimeError(f"The '{who}' can not be calculated, because the number of samples is 0, please check "
                           f"whether your inputs(predicted value, true value) are empty, or has called update "
                           f"method before calling eval method.")


def binary_clf_curve(preds, target, sample_weights=None, pos_label=1):
    """False and true positives at each distinct threshold, scores sorted descending (for ROC)."""
    if sample_weights is not None and not isinstance(sample_weights, np.ndarray):
        sample_weights = np.array(sample_weights)
    if preds.ndim > target.ndim:
        preds = preds[:, 0]
    order = np.argsort(-preds)
    preds, target = preds[order], target[order]
    weight = 1. if sample_weights is None else sample_weights[order]
    distinct = np.where(preds[1:] - preds[:-1])[0]
    threshold_idxs = np.pad(distinct, (0, 1), constant_values=target.shape[0] - 1)
    target = np.array(target == pos_label).astype(np.int64)
    tps = np.cumsum(target * weight, axis=0)[threshold_idxs]
    if sample_weights is None:
        fps = 1 + threshold_idxs - tps
    else:
        fps = np.cumsum((1 - target) * weight, axis=0)[threshold_idxs]
    return fps, tps, preds[threshold_idxs]
