"""``RMSProp``: MindSpore's ApplyRMSProp / ApplyCenteredRMSProp as optax chains.

State ``mean_square.<param>`` (ones), ``moment.<param>`` (zeros) and, with ``centered=True``,
``mean_grad.<param>`` (zeros), as MindSpore 2.10 writes them. The learning rate sits inside the
moment, as in MindSpore's kernels, so the chain's last step only flips the sign:

    mean_square = decay * mean_square + (1 - decay) * g * g
    mean_grad   = decay * mean_grad + (1 - decay) * g                      (centered)
    moment      = momentum * moment + lr * g / sqrt(mean_square [- mean_grad ** 2] + epsilon)
    param      -= moment

>>> opt = RMSProp(net.trainable_params(), learning_rate=0.01, centered=True)
"""
from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
import optax

from msjax.nn.optim._checks import check_bool, check_float
from msjax.nn.optim.optimizer import Optimizer

__all__ = ["RMSProp"]


class RMSPropState(NamedTuple):
    mean_grad: tuple
    mean_square: tuple
    moment: tuple


def _lr_at(lr, i):
    return lr[i] if isinstance(lr, tuple) else lr


def _rmsprop_op(lr, decay, momentum, epsilon, centered):
    """MindSpore's RMSProp kernels (the step includes ``lr``) as an optax transform."""
    def init(params):
        zeros = tuple(jnp.zeros_like(p) for p in params)
        return RMSPropState(zeros if centered else (), tuple(jnp.ones_like(p) for p in params), zeros)

    def update(grads, state, params=None):
        steps, mgs, mss, moms = [], [], [], []
        for i, (g, ms, mom) in enumerate(zip(grads, state.mean_square, state.moment)):
            ms = decay * ms + (1.0 - decay) * g * g
            denom = ms + epsilon
            if centered:
                mg = decay * state.mean_grad[i] + (1.0 - decay) * g
                denom = ms - mg * mg + epsilon
                mgs.append(mg)
            mom = momentum * mom + _lr_at(lr, i) * g / jnp.sqrt(denom)
            steps.append(mom)
            mss.append(ms)
            moms.append(mom)
        return tuple(steps), RMSPropState(tuple(mgs), tuple(mss), tuple(moms))

    return optax.GradientTransformation(init, update)


class RMSProp(Optimizer):
    """``RMSProp(params, learning_rate=0.1, decay=0.9, momentum=0.0, epsilon=1e-10, use_locking=False,
    centered=False, loss_scale=1.0, weight_decay=0.0)``."""

    #: named optax state -> MindSpore's per-parameter state prefix
    STATE_TABLE = {"rmsprop.mean_grad": "mean_grad", "rmsprop.mean_square": "mean_square",
                   "rmsprop.moment": "moment"}

    def __init__(self, params, learning_rate=0.1, decay=0.9, momentum=0.0, epsilon=1e-10, use_locking=False,
                 centered=False, loss_scale=1.0, weight_decay=0.0):
        super().__init__(learning_rate, params, weight_decay, loss_scale)
        self.decay = np.float32(check_float("RMSProp", "decay", decay))
        self.momentum = np.float32(check_float("RMSProp", "momentum", momentum))
        self.epsilon = np.float32(check_float("RMSProp", "epsilon", epsilon, positive=True))
        check_bool("RMSProp", "use_locking", use_locking)
        self.centered = check_bool("RMSProp", "centered", centered)
        if centered:
            self.mean_grad = self._clone_state("mean_grad", "zeros")
        self.mean_square = self._clone_state("mean_square", "ones")
        self.moment = self._clone_state("moment", "zeros")

    def _transform(self, lr):
        # the kernel applies lr itself; the chain's learning_rate step is -1 (param -= moment)
        return self._chain(1.0, "rmsprop", _rmsprop_op(lr, self.decay, self.momentum, self.epsilon,
                                                       self.centered))
