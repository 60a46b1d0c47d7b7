"""``FTRL``: MindSpore's ApplyFtrl as an optax chain, state ``moments.<param>`` (filled with
``initial_accum``) and ``linear.<param>`` (zeros), the names MindSpore 2.10 writes.

    accum_new = moments + g * g
    linear   += g - (accum_new ** -lr_power - moments ** -lr_power) / lr * param
    quadratic = accum_new ** -lr_power / lr + 2 * l2
    param     = (sign(linear) * l1 - linear) / quadratic  if |linear| > l1  else 0
    moments   = accum_new

Weight decay applies to every parameter (MindSpore's FTRL sets all ``decay_flags``), and the
learning rate must be one positive float (no schedule, no groups' own rates), as in MindSpore.

>>> opt = FTRL(net.trainable_params(), learning_rate=0.01, l1=0.001)
"""
from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
import optax

from msjax.errors import LayerArgumentError
from msjax.nn.optim._checks import check_bool, check_float, fill_states
from msjax.nn.optim.optimizer import Optimizer

__all__ = ["FTRL"]


class FtrlState(NamedTuple):
    moments: tuple
    linear: tuple


def _ftrl_op(initial, lr, l1, l2, lr_power):
    """ApplyFtrl; the update it returns is ``param - new_param`` (the chain then subtracts it)."""
    def init(params):
        return FtrlState(tuple(jnp.full_like(p, initial) for p in params), tuple(jnp.zeros_like(p) for p in params))

    def update(grads, state, params=None):
        steps, accums, linears = [], [], []
        for g, w, accum, linear in zip(grads, params, state.moments, state.linear):
            accum_new = accum + g * g
            pow_new, pow_old = jnp.power(accum_new, -lr_power), jnp.power(accum, -lr_power)
            linear = linear + g - (pow_new - pow_old) / lr * w
            quadratic = pow_new / lr + 2.0 * l2
            new_w = jnp.where(jnp.abs(linear) > l1, (jnp.sign(linear) * l1 - linear) / quadratic, 0.0)
            steps.append(w - new_w.astype(w.dtype))
            accums.append(accum_new)
            linears.append(linear)
        return tuple(steps), FtrlState(tuple(accums), tuple(linears))

    return optax.GradientTransformation(init, update)


class FTRL(Optimizer):
    """``FTRL(params, initial_accum=0.1, learning_rate=0.001, lr_power=-0.5, l1=0.0, l2=0.0,
    use_locking=False, loss_scale=1.0, weight_decay=0.0)``."""

    #: named optax state -> MindSpore's per-parameter state prefix
    STATE_TABLE = {"ftrl.moments": "moments", "ftrl.linear": "linear"}

    def __init__(self, params, initial_accum=0.1, learning_rate=0.001, lr_power=-0.5, l1=0.0, l2=0.0,
                 use_locking=False, loss_scale=1.0, weight_decay=0.0):
        super().__init__(learning_rate, params, weight_decay, loss_scale)
        if self.dynamic_lr or self.is_group_lr:
            raise LayerArgumentError(f"For 'FTRL', 'learning_rate' must be one float: a schedule or groups' own "
                                     f"'lr' is not supported (dynamic {self.dynamic_lr}, group {self.is_group_lr})")
        self._initial_accum = np.float32(check_float("FTRL", "initial_accum", initial_accum))
        self.lr = np.float32(check_float("FTRL", "learning_rate", learning_rate, positive=True))
        if isinstance(lr_power, bool) or not isinstance(lr_power, float):
            raise TypeError(f"For 'FTRL', 'lr_power' must be a float, got {type(lr_power).__name__}")
        if lr_power > 0.0:
            raise LayerArgumentError(f"For 'FTRL', 'lr_power' must be <= 0, got {lr_power}")
        self.lr_power = np.float32(lr_power)
        self.l1 = np.float32(check_float("FTRL", "l1", l1))
        self.l2 = np.float32(check_float("FTRL", "l2", l2))
        check_bool("FTRL", "use_locking", use_locking)
        if not self.is_group:  # MindSpore decays every parameter here, gamma and beta included
            self._weight_decays = (self._preprocess_weight_decay(weight_decay),) * len(self.parameters)
        self.moments = fill_states(self._clone_state("moments"), self._initial_accum)
        self.linear = self._clone_state("linear", "zeros")

    def _transform(self, lr):
        return self._chain(1.0, "ftrl", _ftrl_op(self._initial_accum, self.lr, self.l1, self.l2, self.lr_power))
