"""The dataset pipeline's global settings (``msjax.dataset.config``), as MindSpore's.

Until ``set_seed`` is called, shuffles draw a fresh random seed on every pipeline launch (as
MindSpore does while its seed is the default 5489); after it, every shuffle is reproducible.

>>> from msjax.dataset import config
>>> config.set_seed(1); config.get_seed()
1
"""
from __future__ import annotations

import secrets

__all__ = ["set_seed", "get_seed"]

_DEFAULT_SEED = 5489  # std::mt19937::default_seed, MindSpore's "no seed set" value
_seed = _DEFAULT_SEED


def set_seed(seed):
    """Seed every dataset shuffle and random sampler created after this call."""
    global _seed
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= 2**32 - 1:
        raise ValueError(f"seed must be an int in [0, 2**32 - 1], got {seed!r}")
    _seed = seed


def get_seed():
    """The seed set by ``set_seed`` (5489 when none was set)."""
    return _seed


def new_seed():
    """A seed for one shuffling step: the set seed, or a random one while none is set."""
    return secrets.randbits(32) if _seed == _DEFAULT_SEED else _seed
