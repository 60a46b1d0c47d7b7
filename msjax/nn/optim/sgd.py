"""``SGD``: MindSpore's SGD op (PyTorch-style momentum with dampening) as an optax chain.

State: ``accum.<param>`` (zeros) and ``stat.<param>`` (ones: "first step" flags). With
``momentum > 0``: on the first step ``accum = grad``, afterwards
``accum = momentum * accum + (1 - dampening) * grad``; the step is ``accum`` (or
``grad + momentum * accum`` with ``nesterov``); ``param -= lr * step``.

>>> opt = SGD(net.trainable_params(), learning_rate=0.1, momentum=0.9)
"""
from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
import optax

from msjax.common.tensor import Parameter
from msjax.nn.optim.optimizer import Optimizer

__all__ = ["SGD"]


class SGDState(NamedTuple):
    accum: tuple
    stat: tuple


def _sgd_op(momentum, dampening, nesterov):
    """The MindSpore SGD kernel (weight decay already applied) as an optax transform."""
    def init(params):
        return SGDState(tuple(jnp.zeros_like(p) for p in params), tuple(jnp.ones_like(p) for p in params))

    def update(grads, state, params=None):
        steps, accums, stats = [], [], []
        for g, acc, st in zip(grads, state.accum, state.stat):
            new_acc = jnp.where(st > 0, g, acc * momentum + (1.0 - dampening) * g)
            new_acc = jnp.where(momentum > 0, new_acc, acc)
            step = g + new_acc * momentum if nesterov else new_acc
            steps.append(jnp.where(momentum > 0, step, g))
            accums.append(new_acc)
            stats.append(jnp.where(momentum > 0, jnp.zeros_like(st), st))
        return tuple(steps), SGDState(tuple(accums), tuple(stats))

    return optax.GradientTransformation(init, update)


class SGD(Optimizer):
    """``SGD(params, learning_rate=0.1, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, loss_scale=1.0)``."""

    #: the named optax state that holds MindSpore's per-parameter state -> its name (``accum.<param>``, ...)
    STATE_TABLE = {"sgd.accum": "accum", "sgd.stat": "stat"}

    def __init__(self, params, learning_rate=0.1, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
                 loss_scale=1.0):
        super().__init__(learning_rate, params, weight_decay, loss_scale)
        momentum = float(momentum) if isinstance(momentum, int) and not isinstance(momentum, bool) else momentum
        dampening = float(dampening) if isinstance(dampening, int) and not isinstance(dampening, bool) else dampening
        if not isinstance(momentum, float) or momentum < 0.0:
            raise ValueError(f"For 'SGD', 'momentum' must be a float >= 0.0, got {momentum!r}")
        if not isinstance(dampening, float) or dampening < 0.0:
            raise ValueError(f"For 'SGD', 'dampening' must be a float >= 0.0, got {dampening!r}")
        if not isinstance(nesterov, bool):
            raise TypeError(f"For 'SGD', 'nesterov' must be a bool, got {type(nesterov).__name__}")
        if nesterov and (momentum <= 0.0 or dampening != 0.0):
            raise ValueError(f"For 'SGD', nesterov needs momentum > 0.0 and dampening == 0.0, got momentum "
                             f"{momentum}, dampening {dampening}")
        self.dampening, self.nesterov = dampening, nesterov
        self.momentum = Parameter(np.asarray(momentum, np.float32), name="momentum")
        self.accum = self._clone_state("accum", "zeros")
        self.stat = self._clone_state("stat", "ones")

    def _transform(self, lr):
        return self._chain(lr, "sgd", _sgd_op(jnp.asarray(self.momentum.get_value()), self.dampening, self.nesterov))
