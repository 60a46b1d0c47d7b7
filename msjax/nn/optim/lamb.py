"""``Lamb``: layer-wise adaptive moments (MindSpore's Lamb kernel), state ``lamb_m.*`` and ``lamb_v.*``.

With ``t`` the step number (``global_step`` after its increment, 1 on the first step):

    lamb_m = beta1 * lamb_m + (1 - beta1) * g;   lamb_v = beta2 * lamb_v + (1 - beta2) * g * g
    r      = (lamb_m / (1 - beta1 ** t)) / (sqrt(lamb_v / (1 - beta2 ** t)) + eps) + weight_decay * param
    ratio  = ||param|| / ||r||  (1 where either norm is 0)
    param -= lr * ratio * r

MindSpore 2.10 has no CPU kernel for Lamb; tests check this rule in numpy and the state names
against MindSpore.

>>> opt = Lamb(net.trainable_params(), learning_rate=0.1, weight_decay=0.01)
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optax

from msjax.nn.optim._checks import check_float, check_range
from msjax.nn.optim._moments import scale_by_moments
from msjax.nn.optim.optimizer import Optimizer, scale_by_learning_rate_per_param

__all__ = ["Lamb"]


def _lamb_rule(beta1, beta2, eps, step):
    t = jnp.asarray(step, jnp.float32)

    def rule(m, v, w, wd):
        r = (m / (1.0 - beta1 ** t)) / (jnp.sqrt(v / (1.0 - beta2 ** t)) + eps) + wd * w
        w_norm, r_norm = jnp.linalg.norm(w), jnp.linalg.norm(r)
        ratio = jnp.where((w_norm > 0) & (r_norm > 0), w_norm / jnp.where(r_norm > 0, r_norm, 1.0), 1.0)
        return ratio * r

    return rule


class Lamb(Optimizer):
    """``Lamb(params, learning_rate, beta1=0.9, beta2=0.999, eps=1e-6, weight_decay=0.0)``."""

    #: named optax state -> MindSpore's per-parameter state prefix
    STATE_TABLE = {"lamb.m": "lamb_m", "lamb.v": "lamb_v"}

    def __init__(self, params, learning_rate, beta1=0.9, beta2=0.999, eps=1e-6, weight_decay=0.0):
        super().__init__(learning_rate, params, weight_decay)
        self.beta1 = np.float32(check_range("Lamb", "beta1", beta1, 0.0, 1.0))
        self.beta2 = np.float32(check_range("Lamb", "beta2", beta2, 0.0, 1.0))
        self.eps = np.float32(check_float("Lamb", "eps", eps, positive=True))
        self.lamb_m = self._clone_state("lamb_m", "zeros")
        self.lamb_v = self._clone_state("lamb_v", "zeros")

    def _transform(self, lr):
        # construct() has already counted this step into global_step; the decay is inside the rule
        step = jnp.asarray(self.global_step.get_value()).reshape(())
        rule = _lamb_rule(self.beta1, self.beta2, self.eps, step)
        return optax.named_chain(("lamb", scale_by_moments(self.beta1, self.beta2, self._weight_decays, rule)),
                                 ("learning_rate", scale_by_learning_rate_per_param(lr)))
