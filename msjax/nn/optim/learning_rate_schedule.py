"""Learning-rate schedules: Cells whose ``construct(global_step)`` returns the step's learning rate.

>>> sched = ExponentialDecayLR(0.1, 0.9, 4)
>>> float(sched(Tensor(np.array(4, np.int32))))  # 0.1 * 0.9 ** (4 / 4)
0.09
"""
from __future__ import annotations

import math

import jax.numpy as jnp

from msjax.nn.cell import Cell

__all__ = ["LearningRateSchedule", "ExponentialDecayLR", "NaturalExpDecayLR", "InverseDecayLR",
           "CosineDecayLR", "PolynomialDecayLR", "WarmUpLR"]


class LearningRateSchedule(Cell):
    """Base class: override ``construct(global_step)``; the optimizer calls it every step."""

    def construct(self, global_step):
        raise NotImplementedError(f"{type(self).__name__} must define construct(global_step)")


def _p(step, decay_steps, is_stair):
    p = jnp.asarray(step, jnp.float32) / decay_steps
    return jnp.floor(p) if is_stair else p


class ExponentialDecayLR(LearningRateSchedule):
    """``learning_rate * decay_rate ** (step / decay_steps)``."""

    def __init__(self, learning_rate, decay_rate, decay_steps, is_stair=False):
        super().__init__()
        self.learning_rate, self.decay_rate = float(learning_rate), float(decay_rate)
        self.decay_steps, self.is_stair = decay_steps, is_stair

    def construct(self, global_step):
        return self.learning_rate * jnp.power(jnp.float32(self.decay_rate), _p(global_step, self.decay_steps, self.is_stair))


class NaturalExpDecayLR(ExponentialDecayLR):
    """``learning_rate * exp(-decay_rate * step / decay_steps)``."""

    def construct(self, global_step):
        return self.learning_rate * jnp.exp(-self.decay_rate * _p(global_step, self.decay_steps, self.is_stair))


class InverseDecayLR(ExponentialDecayLR):
    """``learning_rate / (1 + decay_rate * step / decay_steps)``."""

    def construct(self, global_step):
        return self.learning_rate / (1 + self.decay_rate * _p(global_step, self.decay_steps, self.is_stair))


class CosineDecayLR(LearningRateSchedule):
    """``min_lr + 0.5 * (max_lr - min_lr) * (1 + cos(pi * min(step, decay_steps) / decay_steps))``."""

    def __init__(self, min_lr, max_lr, decay_steps):
        super().__init__()
        self.min_lr, self.max_lr, self.decay_steps = float(min_lr), float(max_lr), decay_steps

    def construct(self, global_step):
        p = jnp.minimum(jnp.asarray(global_step, jnp.float32), self.decay_steps) / self.decay_steps
        return self.min_lr + 0.5 * (self.max_lr - self.min_lr) * (1 + jnp.cos(math.pi * p))


class PolynomialDecayLR(LearningRateSchedule):
    """``(lr - end_lr) * (1 - min(step, decay_steps) / decay_steps) ** power + end_lr``."""

    def __init__(self, learning_rate, end_learning_rate, decay_steps, power, update_decay_steps=False):
        super().__init__()
        self.learning_rate, self.end_learning_rate = float(learning_rate), float(end_learning_rate)
        self.decay_steps, self.power, self.update_decay_steps = decay_steps, float(power), update_decay_steps

    def construct(self, global_step):
        step = jnp.asarray(global_step, jnp.float32)
        if self.update_decay_steps:
            steps = self.decay_steps * jnp.maximum(jnp.ceil(step / self.decay_steps), 1.0)
        else:
            steps, step = self.decay_steps, jnp.minimum(step, self.decay_steps)
        return (self.learning_rate - self.end_learning_rate) * jnp.power(1 - step / steps, self.power) \
            + self.end_learning_rate


class WarmUpLR(LearningRateSchedule):
    """``learning_rate * min(step, warmup_steps) / warmup_steps``."""

    def __init__(self, learning_rate, warmup_steps):
        super().__init__()
        self.learning_rate, self.warmup_steps = float(learning_rate), warmup_steps

    def construct(self, global_step):
        return self.learning_rate * jnp.minimum(jnp.asarray(global_step, jnp.float32), self.warmup_steps) / self.warmup_steps
