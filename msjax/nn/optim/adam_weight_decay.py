"""``AdamWeightDecay``: MindSpore's decoupled-weight-decay Adam, state ``adam_m.*`` and ``adam_v.*``.

No bias correction, and the decay is added to the step rather than to the gradient:

    adam_m = beta1 * adam_m + (1 - beta1) * g
    adam_v = beta2 * adam_v + (1 - beta2) * g * g
    param -= lr * (adam_m / (sqrt(adam_v) + eps) + weight_decay * param)

``weight_decay`` skips parameters whose names hold 'beta' or 'gamma' unless groups say otherwise.

>>> opt = AdamWeightDecay(net.trainable_params(), learning_rate=1e-3, weight_decay=0.01)
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optax

from msjax.nn.optim._checks import check_float, check_range
from msjax.nn.optim._moments import scale_by_moments
from msjax.nn.optim.optimizer import Optimizer, scale_by_learning_rate_per_param

__all__ = ["AdamWeightDecay"]


def _adam_weight_decay_rule(eps):
    def rule(m, v, w, wd):
        step = m / (eps + jnp.sqrt(v))
        return step + wd * w if wd else step

    return rule


class AdamWeightDecay(Optimizer):
    """``AdamWeightDecay(params, learning_rate=1e-3, beta1=0.9, beta2=0.999, eps=1e-6, weight_decay=0.0)``."""

    #: named optax state -> MindSpore's per-parameter state prefix
    STATE_TABLE = {"adam_weight_decay.m": "adam_m", "adam_weight_decay.v": "adam_v"}

    def __init__(self, params, learning_rate=1e-3, beta1=0.9, beta2=0.999, eps=1e-6, weight_decay=0.0):
        super().__init__(learning_rate, params, weight_decay)
        self.beta1 = np.float32(check_range("AdamWeightDecay", "beta1", beta1, 0.0, 1.0))
        self.beta2 = np.float32(check_range("AdamWeightDecay", "beta2", beta2, 0.0, 1.0))
        self.eps = np.float32(check_float("AdamWeightDecay", "eps", eps, positive=True))
        self.adam_m = self._clone_state("adam_m", "zeros")
        self.adam_v = self._clone_state("adam_v", "zeros")

    def _transform(self, lr):
        # no `weight_decay` step on the gradient: the decay is decoupled, inside the rule
        return optax.named_chain(
            ("adam_weight_decay", scale_by_moments(self.beta1, self.beta2, self._weight_decays,
                                                   _adam_weight_decay_rule(self.eps))),
            ("learning_rate", scale_by_learning_rate_per_param(lr)))
