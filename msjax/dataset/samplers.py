"""Samplers: which row indices a random-access source reads, per epoch (MindSpore's names).

>>> SequentialSampler(num_samples=3).indices(10, epoch=0, seed=0).tolist()
[0, 1, 2]
"""
from __future__ import annotations

import numpy as np

__all__ = ["Sampler", "SequentialSampler", "RandomSampler", "DistributedSampler", "SubsetSampler",
           "SubsetRandomSampler"]


def _rng(seed, epoch):
    return np.random.default_rng([seed, epoch])


class Sampler:
    """Base class: ``indices(num_rows, epoch, seed)`` returns the row indices of one epoch."""

    def __init__(self, num_samples=None):
        if num_samples is not None and (not isinstance(num_samples, int) or num_samples < 0):
            raise ValueError(f"num_samples must be a non-negative int or None, got {num_samples!r}")
        self.num_samples = num_samples or None

    def _limit(self, idx):
        return idx if self.num_samples is None else idx[:self.num_samples]

    def indices(self, num_rows, epoch, seed):
        raise NotImplementedError

    def count(self, num_rows):
        """Rows per epoch for a source of ``num_rows`` rows."""
        return len(self.indices(num_rows, 0, 0))


class SequentialSampler(Sampler):
    """Rows in order from ``start_index``."""

    def __init__(self, start_index=None, num_samples=None):
        super().__init__(num_samples)
        self.start_index = start_index or 0

    def indices(self, num_rows, epoch, seed):
        return self._limit(np.arange(self.start_index, num_rows))


class RandomSampler(Sampler):
    """A fresh permutation each epoch (or draws with ``replacement``)."""

    def __init__(self, replacement=False, num_samples=None):
        super().__init__(num_samples)
        self.replacement = replacement

    def indices(self, num_rows, epoch, seed):
        rng = _rng(seed, epoch)
        if self.replacement:
            return rng.integers(0, num_rows, self.num_samples or num_rows)
        return self._limit(rng.permutation(num_rows))


class DistributedSampler(Sampler):
    """Shard ``shard_id`` of ``num_shards``: rows ``shard_id, shard_id + num_shards, ...``,
    wrapping around so every shard has ``ceil(num_rows / num_shards)`` rows (as MindSpore)."""

    def __init__(self, num_shards, shard_id, shuffle=True, num_samples=None, offset=-1):
        super().__init__(num_samples)
        if not isinstance(num_shards, int) or num_shards < 1:
            raise ValueError(f"num_shards must be a positive int, got {num_shards!r}")
        if not isinstance(shard_id, int) or not 0 <= shard_id < num_shards:
            raise ValueError(f"shard_id must be in [0, {num_shards - 1}], got {shard_id!r}")
        self.num_shards, self.shard_id, self.shuffle = num_shards, shard_id, shuffle

    def indices(self, num_rows, epoch, seed):
        per_shard = -(-num_rows // self.num_shards)
        order = _rng(seed, epoch).permutation(num_rows) if self.shuffle else np.arange(num_rows)
        picks = (self.shard_id + self.num_shards * np.arange(per_shard)) % max(num_rows, 1)
        return self._limit(order[picks] if num_rows else order)


class SubsetSampler(Sampler):
    """The given ``indices``, in order."""

    def __init__(self, indices, num_samples=None):
        super().__init__(num_samples)
        self.subset = np.asarray(indices, dtype=np.int64)

    def indices(self, num_rows, epoch, seed):
        bad = self.subset[(self.subset < 0) | (self.subset >= num_rows)]
        if bad.size:
            raise ValueError(f"sampler indices {bad[:5].tolist()} are outside [0, {num_rows})")
        return self._limit(self.subset)


class SubsetRandomSampler(SubsetSampler):
    """The given ``indices`` in a fresh random order each epoch."""

    def indices(self, num_rows, epoch, seed):
        return _rng(seed, epoch).permutation(super().indices(num_rows, epoch, seed))


def select(sampler, shuffle, num_samples, num_shards, shard_id, shuffle_default=True):
    """The sampler that a source's ``sampler``/``shuffle``/``num_shards`` arguments describe."""
    if sampler is not None:
        if shuffle is not None or num_shards is not None:
            raise ValueError("sampler cannot be combined with shuffle or num_shards/shard_id")
        if not isinstance(sampler, Sampler):
            sampler = SubsetSampler(sampler)
        return sampler
    shuffle = shuffle_default if shuffle is None else bool(shuffle)
    if (num_shards is None) != (shard_id is None):
        raise ValueError("num_shards and shard_id must be given together")
    if num_shards is not None:
        return DistributedSampler(num_shards, shard_id, shuffle=shuffle, num_samples=num_samples)
    return RandomSampler(num_samples=num_samples) if shuffle else SequentialSampler(num_samples=num_samples)
