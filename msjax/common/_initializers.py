"""MindSpore's initializer classes and the seeded generator they draw from, as arrays.

Random values come from one numpy Generator seeded by ``set_seed``; MindSpore's own random streams
cannot be reproduced, so weights that must match MindSpore are loaded from a checkpoint. This
module makes numpy arrays only, so ``Tensor(shape=..., dtype=..., init=...)`` can use it from
below; ``msjax.common.initializer`` is the public face that returns Tensors.
"""
from __future__ import annotations

import math

import numpy as np

from msjax.common import dtype as mstype

_rng = np.random.default_rng(0)


def set_seed(seed):
    """Seed every msjax initializer (MindSpore's ``set_seed``)."""
    global _rng
    _rng = np.random.default_rng(seed)


def draw_seed():
    """A seed for a layer's own random stream (nn.Dropout), drawn from the ``set_seed`` stream."""
    return int(_rng.integers(2 ** 31))


def _fans(shape):
    if len(shape) < 2:
        raise ValueError(f"fan in/out needs at least 2 dimensions, got shape {tuple(shape)}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def _gain(nonlinearity, param=None):
    if nonlinearity in ("linear", "conv1d", "conv2d", "conv3d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope ** 2))
    raise ValueError(f"unsupported nonlinearity {nonlinearity!r}")


class Initializer:
    """Base class: ``init(shape) -> np.ndarray`` (float64 before the cast)."""

    def __call__(self, shape):
        return self.sample(tuple(shape))

    def sample(self, shape):
        raise NotImplementedError


class Constant(Initializer):
    def __init__(self, value):
        self.value = value

    def sample(self, shape):
        return np.full(shape, self.value)


class Zero(Constant):
    def __init__(self):
        super().__init__(0)


class One(Constant):
    def __init__(self):
        super().__init__(1)


class Normal(Initializer):
    def __init__(self, sigma=0.01, mean=0.0):
        self.sigma, self.mean = sigma, mean

    def sample(self, shape):
        return _rng.normal(self.mean, self.sigma, shape)


class TruncatedNormal(Initializer):
    """Normal(mean, sigma) redrawn until inside ``[a, b]``; as in MindSpore 2.10, ``a`` and ``b`` are
    absolute bounds, not multiples of sigma (checked against the real initializer)."""

    def __init__(self, sigma=0.01, mean=0.0, a=-2.0, b=2.0):
        self.sigma, self.mean, self.a, self.b = sigma, mean, a, b

    def sample(self, shape):
        out = _rng.normal(self.mean, self.sigma, shape)
        low, high = self.a, self.b
        bad = (out < low) | (out > high)
        while bad.any():
            out[bad] = _rng.normal(self.mean, self.sigma, int(bad.sum()))
            bad = (out < low) | (out > high)
        return out


class Uniform(Initializer):
    def __init__(self, scale=0.07):
        self.scale = scale

    def sample(self, shape):
        return _rng.uniform(-self.scale, self.scale, shape)


class HeUniform(Initializer):
    def __init__(self, negative_slope=0, mode="fan_in", nonlinearity="leaky_relu"):
        self.negative_slope, self.mode, self.nonlinearity = negative_slope, mode, nonlinearity

    def sample(self, shape):
        fan_in, fan_out = _fans(shape)
        fan = fan_in if self.mode == "fan_in" else fan_out
        bound = math.sqrt(3.0) * _gain(self.nonlinearity, self.negative_slope) / math.sqrt(fan)
        return _rng.uniform(-bound, bound, shape)


class HeNormal(HeUniform):
    def sample(self, shape):
        fan_in, fan_out = _fans(shape)
        fan = fan_in if self.mode == "fan_in" else fan_out
        return _rng.normal(0.0, _gain(self.nonlinearity, self.negative_slope) / math.sqrt(fan), shape)


class XavierUniform(Initializer):
    def __init__(self, gain=1):
        self.gain = gain

    def sample(self, shape):
        fan_in, fan_out = _fans(shape)
        bound = self.gain * math.sqrt(6.0 / (fan_in + fan_out))
        return _rng.uniform(-bound, bound, shape)


class XavierNormal(XavierUniform):
    def sample(self, shape):
        fan_in, fan_out = _fans(shape)
        return _rng.normal(0.0, self.gain * math.sqrt(2.0 / (fan_in + fan_out)), shape)


_BY_NAME = {
    "zeros": Zero, "zero": Zero, "ones": One, "one": One,
    "normal": Normal, "uniform": Uniform, "truncatednormal": TruncatedNormal,
    "he_uniform": HeUniform, "heuniform": HeUniform, "he_normal": HeNormal, "henormal": HeNormal,
    "xavier_uniform": XavierUniform, "xavieruniform": XavierUniform,
    "xavier_normal": XavierNormal, "xaviernormal": XavierNormal,
}


def initial_array(init, shape=None, dtype=mstype.float32):
    """The numpy array ``initializer(init, shape, dtype)`` holds: from an Initializer, a name, a
    number, a Tensor or an array (checked against ``shape``)."""
    np_dtype = mstype.to_numpy(dtype)
    if isinstance(init, str):
        try:
            init = _BY_NAME[init.lower()]()
        except KeyError:
            raise ValueError(f"unknown initializer name {init!r}; known: {sorted(_BY_NAME)}") from None
    if isinstance(init, (int, float, bool)) and not isinstance(init, Initializer):
        init = Constant(init)
    if isinstance(init, Initializer):
        return np.asarray(init(shape)).astype(np_dtype)
    array = np.asarray(init)
    if shape is not None and tuple(array.shape) != tuple(shape):
        raise ValueError(f"initial value has shape {array.shape}, the parameter needs {tuple(shape)}")
    return array.astype(np_dtype)
