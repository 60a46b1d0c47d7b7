"""``Momentum``: MindSpore's ApplyMomentum as an optax chain, state named ``moments.<param>``.

    moments = momentum * moments + grad
    param  -= lr * moments                        (use_nesterov=False)
    param  -= lr * grad + lr * momentum * moments (use_nesterov=True)

``grad`` first gets ``weight_decay * param`` added (parameters without 'beta' or 'gamma' in their
names unless groups say otherwise) and is divided by ``loss_scale``, as MindSpore does.

>>> opt = Momentum(net.trainable_params(), learning_rate=0.01, momentum=0.9)
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optax

from msjax.common.tensor import Parameter
from msjax.nn.optim.optimizer import Optimizer

__all__ = ["Momentum"]


class Momentum(Optimizer):
    """``Momentum(params, learning_rate, momentum, weight_decay=0.0, loss_scale=1.0, use_nesterov=False)``."""

    #: the named optax state that holds MindSpore's per-parameter state -> its name (``moments.<param>``)
    STATE_TABLE = {"moments.trace": "moments"}

    def __init__(self, params, learning_rate, momentum, weight_decay=0.0, loss_scale=1.0, use_nesterov=False):
        super().__init__(learning_rate, params, weight_decay, loss_scale)
        if isinstance(momentum, bool) or not isinstance(momentum, float):
            raise TypeError(f"For 'Momentum', 'momentum' must be a float, got {type(momentum).__name__}")
        if momentum < 0.0:
            raise ValueError(f"For 'Momentum', 'momentum' must be at least 0.0, got {momentum}")
        if not isinstance(use_nesterov, bool):
            raise TypeError(f"For 'Momentum', 'use_nesterov' must be a bool, got {type(use_nesterov).__name__}")
        self.momentum = Parameter(np.asarray(momentum, np.float32), name="momentum")
        self.use_nesterov = use_nesterov
        self.moments = self._clone_state("moments", "zeros")

    def _transform(self, lr):
        return self._chain(lr, "moments", optax.trace(decay=jnp.asarray(self.momentum.get_value()),
                                                   nesterov=self.use_nesterov))
