"""The two moment estimates AdamWeightDecay and Lamb keep per parameter, as one optax transform.

    m = beta1 * m + (1 - beta1) * g;   v = beta2 * v + (1 - beta2) * g * g

Each optimizer gives only its own rule turning ``(m, v, param, weight_decay)`` into the step that
the learning rate then scales; the state is ``Moments(m, v)``, which their ``STATE_TABLE`` names.
"""
from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import optax

__all__ = ["Moments", "scale_by_moments"]


class Moments(NamedTuple):
    m: tuple
    v: tuple


def scale_by_moments(beta1, beta2, weight_decays, rule):
    """An optax transform keeping ``Moments`` and returning ``rule(m, v, param, weight_decay)`` per
    parameter (``weight_decays``: one per parameter, in order)."""
    def init(params):
        return Moments(tuple(jnp.zeros_like(p) for p in params), tuple(jnp.zeros_like(p) for p in params))

    def update(grads, state, params=None):
        steps, ms, vs = [], [], []
        for g, w, m, v, wd in zip(grads, params, state.m, state.v, weight_decays):
            m = beta1 * m + (1.0 - beta1) * g
            v = beta2 * v + (1.0 - beta2) * g * g
            steps.append(rule(m, v, w, wd))
            ms.append(m)
            vs.append(v)
        return tuple(steps), Moments(tuple(ms), tuple(vs))

    return optax.GradientTransformation(init, update)
