"""``Adam``: MindSpore's Adam op as an optax chain, state ``moment1.*``, ``moment2.*``, ``beta{1,2}_power``.

    beta1_power *= beta1; beta2_power *= beta2            (before the update, as MindSpore)
    m += (g - m) * (1 - beta1);  v += (g * g - v) * (1 - beta2)
    param -= lr * sqrt(1 - beta2_power) / (1 - beta1_power) * m / (sqrt(v) + eps)
    (use_nesterov: m is replaced by m * beta1 + (1 - beta1) * g in the last line)

>>> opt = Adam(net.trainable_params(), learning_rate=1e-3)
"""
from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
import optax

from msjax.common.tensor import Parameter
from msjax.nn.optim.optimizer import Optimizer

__all__ = ["Adam"]


class AdamState(NamedTuple):
    mu: tuple
    nu: tuple


def _adam_op(beta1, beta2, eps, beta1_power, beta2_power, use_nesterov):
    """MindSpore's Adam kernel without the learning rate, as an optax transform."""
    def init(params):
        return AdamState(tuple(jnp.zeros_like(p) for p in params), tuple(jnp.zeros_like(p) for p in params))

    def update(grads, state, params=None):
        scale = jnp.sqrt(1.0 - beta2_power) / (1.0 - beta1_power)
        steps, mus, nus = [], [], []
        for g, m, v in zip(grads, state.mu, state.nu):
            m = m + (g - m) * (1.0 - beta1)
            v = v + (g * g - v) * (1.0 - beta2)
            num = m * beta1 + (1.0 - beta1) * g if use_nesterov else m
            steps.append(scale * num / (jnp.sqrt(v) + eps))
            mus.append(m)
            nus.append(v)
        return tuple(steps), AdamState(tuple(mus), tuple(nus))

    return optax.GradientTransformation(init, update)


class Adam(Optimizer):
    """``Adam(params, learning_rate=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, use_locking=False,
    use_nesterov=False, weight_decay=0.0, loss_scale=1.0, use_amsgrad=False)`` (amsgrad unsupported)."""

    #: the named optax state that holds MindSpore's per-parameter state -> its name (``moment1.<param>``, ...)
    STATE_TABLE = {"adam.mu": "moment1", "adam.nu": "moment2"}

    def __init__(self, params, learning_rate=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, use_locking=False,
                 use_nesterov=False, weight_decay=0.0, loss_scale=1.0, use_amsgrad=False, **kwargs):
        super().__init__(learning_rate, params, weight_decay, loss_scale)
        for name, value, low, high in (("beta1", beta1, 0.0, 1.0), ("beta2", beta2, 0.0, 1.0)):
            if not isinstance(value, float) or not low < value < high:
                raise ValueError(f"For 'Adam', '{name}' must be a float in (0.0, 1.0), got {value!r}")
        if not isinstance(eps, float) or eps <= 0:
            raise ValueError(f"For 'Adam', 'eps' must be a float > 0, got {eps!r}")
        if use_amsgrad:
            raise NotImplementedError("Adam(use_amsgrad=True) is not supported by msjax yet")
        self.beta1, self.beta2, self.eps = np.float32(beta1), np.float32(beta2), np.float32(eps)
        self.use_nesterov = bool(use_nesterov)
        self.beta1_power = Parameter(np.asarray(1, np.float32), name="beta1_power")
        self.beta2_power = Parameter(np.asarray(1, np.float32), name="beta2_power")
        self.moment1 = self._clone_state("moment1", "zeros")
        self.moment2 = self._clone_state("moment2", "zeros")

    def construct(self, gradients):
        self.beta1_power.set_value(self.beta1_power.get_value() * self.beta1)
        self.beta2_power.set_value(self.beta2_power.get_value() * self.beta2)
        return super().construct(gradients)

    def _transform(self, lr):
        return self._chain(lr, "adam", _adam_op(self.beta1, self.beta2, self.eps,
                                             jnp.asarray(self.beta1_power.get_value()),
                                             jnp.asarray(self.beta2_power.get_value()), self.use_nesterov))
