"""User-data sources: ``NumpySlicesDataset`` (arrays, lists, dicts) and ``GeneratorDataset``.

>>> ds = GeneratorDataset(lambda: ((np.array(i),) for i in range(3)), ["x"])
>>> [int(r[0]) for r in ds]
[0, 1, 2]
"""
from __future__ import annotations

import numpy as np

from msjax.common.warn_once import warn_ignored
from msjax.dataset.datasets import ArraySource, Dataset, SourceDataset
from msjax.errors import DatasetError

__all__ = ["NumpySlicesDataset", "GeneratorDataset"]


def _as_column(values, name):
    values = values.asnumpy() if hasattr(values, "asnumpy") else values
    array = np.asarray(values)
    if array.ndim == 0:
        raise DatasetError(f"NumpySlicesDataset: column {name!r} is a scalar; it needs a first "
                           "dimension to slice along")
    return array


def _names(column_names, count, what):
    if column_names is None:
        return [f"column_{i}" for i in range(count)]
    names = [column_names] if isinstance(column_names, str) else list(column_names)
    if len(names) != count:
        raise DatasetError(f"{what}: {len(names)} column_names {names} for {count} columns")
    return names


class NumpySlicesDataset(ArraySource):
    """Rows sliced along the first dimension of ``data``: an array or list (one column), a tuple
    (one column each) or a dict (its keys name the columns). Shuffled unless ``shuffle=False``.

    >>> ds = NumpySlicesDataset({"x": np.arange(4), "y": np.arange(4) * 2}, shuffle=False)
    >>> ds.get_col_names(), ds.get_dataset_size()
    (['x', 'y'], 4)
    """

    def __init__(self, data, column_names=None, num_samples=None, num_parallel_workers=1, shuffle=None,
                 sampler=None, num_shards=None, shard_id=None):
        """``num_parallel_workers`` is a performance hint (the rows are the same with any value)."""
        if isinstance(data, dict):
            names = list(data) if column_names is None else _names(column_names, len(data),
                                                                   "NumpySlicesDataset")
            columns = [_as_column(v, n) for v, n in zip(data.values(), names)]
        elif isinstance(data, tuple):
            names = _names(column_names, len(data), "NumpySlicesDataset")
            columns = [_as_column(v, n) for v, n in zip(data, names)]
        else:
            names = _names(column_names, 1, "NumpySlicesDataset")
            columns = [_as_column(data, names[0])]
        lengths = {len(c) for c in columns}
        if len(lengths) > 1:
            raise DatasetError(f"NumpySlicesDataset: columns {names} have different first dimensions "
                               f"{[len(c) for c in columns]}")
        super().__init__(columns, names, num_samples=num_samples, shuffle=shuffle, sampler=sampler,
                         num_shards=num_shards, shard_id=shard_id)


def _row(item, names):
    values = tuple(item) if isinstance(item, (tuple, list)) else (item,)
    if len(values) != len(names):
        raise DatasetError(f"GeneratorDataset: the source gave a row of {len(values)} values for "
                           f"column_names {names}")
    return tuple(np.asarray(v.asnumpy() if hasattr(v, "asnumpy") else v) for v in values)


class _RandomAccess(SourceDataset):
    def __init__(self, source, names, **kwargs):
        super().__init__(names, **kwargs)
        self.source = source

    def _num_rows(self):
        return len(self.source)

    def _get(self, index):
        return _row(self.source[index], self._column_names)


class _Iterable(Dataset):
    def __init__(self, source, names, num_samples=None):
        super().__init__()
        self.source, self._column_names, self.num_samples = source, names, num_samples or None

    def get_col_names(self):
        return list(self._column_names)

    def _size(self):
        return None

    def _rows(self, epoch):
        items = self.source() if callable(self.source) and not hasattr(self.source, "__iter__") else self.source
        for i, item in enumerate(items):
            if self.num_samples is not None and i >= self.num_samples:
                return
            yield _row(item, self._column_names)


class GeneratorDataset(Dataset):
    """Rows from Python: a random-access ``source`` (``__getitem__`` and ``__len__``; shuffled
    unless ``shuffle=False``), an iterable, or a callable returning an iterator (read in order).

    >>> class Squares:
    ...     def __getitem__(self, i): return (np.array(i * i),)
    ...     def __len__(self): return 4
    >>> [int(r[0]) for r in GeneratorDataset(Squares(), ["sq"], shuffle=False)]
    [0, 1, 4, 9]
    """

    def __init__(self, source, column_names=None, column_types=None, schema=None, num_samples=None,
                 num_parallel_workers=1, shuffle=None, sampler=None, num_shards=None, shard_id=None,
                 python_multiprocessing=True, max_rowsize=None):
        """``num_parallel_workers``, ``python_multiprocessing`` and ``max_rowsize`` are performance
        hints (msjax reads the source in the calling thread; the rows are the same). ``column_types``
        and ``schema`` warn once: msjax keeps the dtypes the source returns."""
        super().__init__()
        for name, value in (("column_types", column_types), ("schema", schema)):
            if value is not None:
                warn_ignored("GeneratorDataset", f"{name}=", "msjax keeps the dtypes the source returns")
        if column_names is None:
            raise ValueError("GeneratorDataset: column_names is required (e.g. ['data', 'label'])")
        names = [column_names] if isinstance(column_names, str) else list(column_names)
        if hasattr(source, "__getitem__") and hasattr(source, "__len__"):
            self._node = _RandomAccess(source, names, num_samples=num_samples, shuffle=shuffle,
                                       sampler=sampler, num_shards=num_shards, shard_id=shard_id)
        elif hasattr(source, "__iter__") or callable(source):
            if shuffle or sampler is not None or num_shards is not None:
                raise ValueError("GeneratorDataset: shuffle, sampler and num_shards need a random-access "
                                 "source (one with __getitem__ and __len__), not an iterable")
            self._node = _Iterable(source, names, num_samples)
        else:
            raise ValueError(f"GeneratorDataset: source {type(source).__name__} is neither random-access, "
                             "iterable nor callable")

    def get_col_names(self):
        return self._node.get_col_names()

    def _size(self):
        return self._node._size()

    def _rows(self, epoch):
        return self._node._rows(epoch)
