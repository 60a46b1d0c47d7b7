"""``Adagrad``: MindSpore's ApplyAdagrad as an optax chain, state ``accum.<param>`` (filled with ``accum``).

    accum += g * g                     (only with update_slots=True)
    param -= lr * g / sqrt(accum)

>>> opt = Adagrad(net.trainable_params(), accum=0.1, learning_rate=0.01)
"""
from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
import optax

from msjax.nn.optim._checks import check_bool, check_float, fill_states
from msjax.nn.optim.optimizer import Optimizer

__all__ = ["Adagrad"]


class AdagradState(NamedTuple):
    accum: tuple


def _adagrad_op(initial, update_slots):
    def init(params):
        return AdagradState(tuple(jnp.full_like(p, initial) for p in params))

    def update(grads, state, params=None):
        accums = tuple(a + g * g if update_slots else a for g, a in zip(grads, state.accum))
        return tuple(g / jnp.sqrt(a) for g, a in zip(grads, accums)), AdagradState(accums)

    return optax.GradientTransformation(init, update)


class Adagrad(Optimizer):
    """``Adagrad(params, accum=0.1, learning_rate=0.001, update_slots=True, loss_scale=1.0, weight_decay=0.0)``."""

    #: named optax state -> MindSpore's per-parameter state prefix
    STATE_TABLE = {"adagrad.accum": "accum"}

    def __init__(self, params, accum=0.1, learning_rate=0.001, update_slots=True, loss_scale=1.0, weight_decay=0.0):
        super().__init__(learning_rate, params, weight_decay, loss_scale)
        self._initial_accum = np.float32(check_float("Adagrad", "accum", accum))
        self.update_slots = check_bool("Adagrad", "update_slots", update_slots)
        self.accum = fill_states(self._clone_state("accum"), self._initial_accum)

    def _transform(self, lr):
        return self._chain(lr, "adagrad", _adagrad_op(self._initial_accum, self.update_slots))
