"""MindSpore's ``nn.dynamic_lr``: learning rates as plain Python lists, one float per step.

Each list is ``total_step`` long and is indexed by the optimizer's ``global_step`` (pass it as
``learning_rate``). ``current_epoch = floor(i / step_per_epoch)`` for step ``i``.

>>> exponential_decay_lr(0.1, 0.9, total_step=4, step_per_epoch=2, decay_epoch=1)
[0.1, 0.1, 0.09000000000000001, 0.09000000000000001]
"""
from __future__ import annotations

import math

from msjax.errors import LayerArgumentError

__all__ = ["piecewise_constant_lr", "exponential_decay_lr", "natural_exp_decay_lr", "inverse_decay_lr",
           "cosine_decay_lr", "polynomial_decay_lr", "warmup_lr"]


def _type(fn, name, value, kinds):
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        want = " or ".join(k.__name__ for k in kinds)
        raise TypeError(f"For '{fn}', '{name}' must be {want}, got {type(value).__name__}")
    return value


def _positive(fn, name, value, kinds=(float,), *, zero=False):
    _type(fn, name, value, kinds)
    if value < 0 or (value == 0 and not zero):
        raise LayerArgumentError(f"For '{fn}', '{name}' must be {'>= 0' if zero else '> 0'}, got {value}")
    return value


def _steps(fn, total_step, step_per_epoch, decay_epoch, decay_name="decay_epoch"):
    for name, value in (("total_step", total_step), ("step_per_epoch", step_per_epoch), (decay_name, decay_epoch)):
        _positive(fn, name, value, (int,))


def piecewise_constant_lr(milestone, learning_rates):
    """``learning_rates[t]`` for steps ``[milestone[t-1], milestone[t])``.

    >>> piecewise_constant_lr([2, 3], [0.1, 0.05])
    [0.1, 0.1, 0.05]
    """
    fn = "piecewise_constant_lr"
    _type(fn, "milestone", milestone, (tuple, list))
    _type(fn, "learning_rates", learning_rates, (tuple, list))
    if len(milestone) != len(learning_rates):
        raise LayerArgumentError(f"For '{fn}', 'milestone' and 'learning_rates' must have the same length, got "
                                 f"{len(milestone)} and {len(learning_rates)}")
    out, last = [], 0
    for i, (step, lr) in enumerate(zip(milestone, learning_rates)):
        _positive(fn, f"milestone[{i}]", step, (int,))
        _type(fn, f"learning_rates[{i}]", lr, (float,))
        if step <= last and i:
            raise LayerArgumentError(f"For '{fn}', 'milestone' must be strictly increasing, got {list(milestone)}")
        out += [lr] * (step - last)
        last = step
    return out


def _decay(fn, learning_rate, decay_rate, total_step, step_per_epoch, decay_epoch, is_stair, rule):
    """``rule(epoch)`` for each step; with ``is_stair`` the epoch is rounded down to whole blocks of
    ``decay_epoch`` (an int multiple of it, so ``epoch / decay_epoch`` is then an exact int)."""
    _positive(fn, "learning_rate", learning_rate)
    _positive(fn, "decay_rate", decay_rate)
    _steps(fn, total_step, step_per_epoch, decay_epoch)
    _type(fn, "is_stair", is_stair, (bool,))
    out = []
    for i in range(total_step):
        epoch = math.floor(i / step_per_epoch)
        if is_stair:
            epoch = math.floor(epoch / decay_epoch) * decay_epoch
        out.append(rule(epoch))
    return out


def exponential_decay_lr(learning_rate, decay_rate, total_step, step_per_epoch, decay_epoch, is_stair=False):
    """``learning_rate * decay_rate ** (current_epoch / decay_epoch)`` (floored with ``is_stair``)."""
    return _decay("exponential_decay_lr", learning_rate, decay_rate, total_step, step_per_epoch, decay_epoch,
                  is_stair, lambda epoch: learning_rate * decay_rate ** (epoch / decay_epoch))


def natural_exp_decay_lr(learning_rate, decay_rate, total_step, step_per_epoch, decay_epoch, is_stair=False):
    """``learning_rate * exp(-decay_rate * current_epoch)``; ``is_stair`` uses whole ``decay_epoch`` blocks."""
    return _decay("natural_exp_decay_lr", learning_rate, decay_rate, total_step, step_per_epoch, decay_epoch,
                  is_stair, lambda epoch: learning_rate * math.e ** (-decay_rate * epoch))


def inverse_decay_lr(learning_rate, decay_rate, total_step, step_per_epoch, decay_epoch, is_stair=False):
    """``learning_rate / (1 + decay_rate * current_epoch / decay_epoch)`` (floored with ``is_stair``)."""
    return _decay("inverse_decay_lr", learning_rate, decay_rate, total_step, step_per_epoch, decay_epoch,
                  is_stair, lambda epoch: learning_rate / (1 + decay_rate * (epoch / decay_epoch)))


def cosine_decay_lr(min_lr, max_lr, total_step, step_per_epoch, decay_epoch):
    """``min_lr + 0.5 * (max_lr - min_lr) * (1 + cos(pi * min(current_epoch, decay_epoch) / decay_epoch))``."""
    fn = "cosine_decay_lr"
    _positive(fn, "min_lr", min_lr, zero=True)
    _positive(fn, "max_lr", max_lr)
    if min_lr >= max_lr:
        raise LayerArgumentError(f"For '{fn}', 'max_lr' must be greater than 'min_lr', got {max_lr} <= {min_lr}")
    _steps(fn, total_step, step_per_epoch, decay_epoch)
    delta = 0.5 * (max_lr - min_lr)
    out = []
    for i in range(total_step):
        epoch = min(math.floor(i / step_per_epoch), decay_epoch)
        out.append(min_lr + delta * (1 + math.cos(math.pi * epoch / decay_epoch)))
    return out


def polynomial_decay_lr(learning_rate, end_learning_rate, total_step, step_per_epoch, decay_epoch, power,
                        update_decay_epoch=False):
    """``(learning_rate - end_learning_rate) * (1 - tmp_epoch / tmp_decay_epoch) ** power + end_learning_rate``."""
    fn = "polynomial_decay_lr"
    _positive(fn, "learning_rate", learning_rate)
    _type(fn, "end_learning_rate", end_learning_rate, (float,))
    _positive(fn, "power", power)
    _steps(fn, total_step, step_per_epoch, decay_epoch)
    _type(fn, "update_decay_epoch", update_decay_epoch, (bool,))
    out = []
    for i in range(total_step):
        epoch = math.floor(i / step_per_epoch)
        tmp_decay = decay_epoch
        if update_decay_epoch:
            tmp_decay = decay_epoch * max(math.ceil(epoch / decay_epoch), 1)
        else:
            epoch = min(epoch, decay_epoch)
        out.append((learning_rate - end_learning_rate) * (1 - epoch / tmp_decay) ** power + end_learning_rate)
    return out


def warmup_lr(learning_rate, total_step, step_per_epoch, warmup_epoch):
    """``learning_rate * min(current_epoch, warmup_epoch) / warmup_epoch``."""
    fn = "warmup_lr"
    _positive(fn, "learning_rate", learning_rate, zero=True)
    _steps(fn, total_step, step_per_epoch, warmup_epoch, "warmup_epoch")
    return [learning_rate * min(math.floor(i / step_per_epoch), warmup_epoch) / warmup_epoch
            for i in range(total_step)]
