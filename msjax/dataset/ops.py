"""Pipeline operations: batch, shuffle, map, repeat, take, skip, project, rename.

Each is a ``Dataset`` node over one child; ``Dataset.batch(...)`` and friends build them.

>>> ds = NumpySlicesDataset({"a": np.arange(4)}, shuffle=False)
>>> ds.map(lambda a: (a, a * 2), output_columns=["a", "b"]).get_col_names()
['a', 'b']
"""
from __future__ import annotations

import math

import numpy as np

from msjax.common.warn_once import warn_ignored
from msjax.dataset import config
from msjax.dataset.datasets import Dataset, operation
from msjax.dataset.iterators import _columns
from msjax.errors import DatasetError

__all__ = ["BatchDataset", "ShuffleDataset", "MapDataset", "RepeatDataset", "TakeDataset", "SkipDataset",
           "ProjectDataset", "RenameDataset"]


@operation("batch")
class BatchDataset(Dataset):
    def __init__(self, child, batch_size, drop_remainder=False, per_batch_map=None, input_columns=None,
                 output_columns=None, python_multiprocessing=False, max_rowsize=None, pad_info=None):
        super().__init__([child])
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if per_batch_map is not None or pad_info is not None:
            raise NotImplementedError("batch(per_batch_map=..., pad_info=...) is not supported; "
                                      "map the rows before batching instead")
        self.batch_size, self.drop_remainder = batch_size, bool(drop_remainder)

    def get_batch_size(self):
        return self.batch_size

    def _size(self):
        n = self.children[0]._size()
        if n is None:
            return None
        if n == math.inf:
            return n
        return n // self.batch_size if self.drop_remainder else -(-n // self.batch_size)

    def _stack(self, rows):
        names = self.get_col_names()
        out = []
        for j, name in enumerate(names):
            column = [r[j] for r in rows]
            shapes = {np.shape(c) for c in column}
            if len(shapes) > 1:
                raise DatasetError(f"batch: column {name!r} has rows of different shapes {sorted(shapes)}; "
                                   "resize or pad them to one shape before batch()")
            out.append(np.stack(column))
        return tuple(out)

    def _rows(self, epoch):
        rows = []
        for row in self.children[0]._rows(epoch):
            rows.append(row)
            if len(rows) == self.batch_size:
                yield self._stack(rows)
                rows = []
        if rows and not self.drop_remainder:
            yield self._stack(rows)


@operation("shuffle")
class ShuffleDataset(Dataset):
    def __init__(self, child, buffer_size):
        super().__init__([child])
        if not isinstance(buffer_size, int) or buffer_size < 2:
            raise ValueError(f"shuffle: buffer_size must be an int >= 2, got {buffer_size!r}")
        self.buffer_size = buffer_size
        self._seed = config.new_seed()

    def _rows(self, epoch):
        rng = np.random.default_rng([self._seed, epoch, 1])
        buffer = []
        for row in self.children[0]._rows(epoch):
            if len(buffer) < self.buffer_size:
                buffer.append(row)
                continue
            j = int(rng.integers(self.buffer_size))
            yield buffer[j]
            buffer[j] = row
        for j in rng.permutation(len(buffer)):
            yield buffer[j]


@operation("map")
class MapDataset(Dataset):
    def __init__(self, child, operations, input_columns=None, output_columns=None, *, python_multiprocessing=False,
                 max_rowsize=None, cache=None, callbacks=None, offload=None):
        """MindSpore's ``map`` options: ``python_multiprocessing``, ``max_rowsize``, ``cache`` and
        ``offload`` are performance hints (the rows are the same); ``callbacks`` (DSCallback) warn
        once, since msjax calls none."""
        super().__init__([child])
        if callbacks is not None:
            warn_ignored("Dataset.map", "callbacks=", "msjax datasets call no DSCallback")
        ops = list(operations) if isinstance(operations, (list, tuple)) else [operations]
        for op in ops:
            if not callable(op):
                raise ValueError(f"map: operation {op!r} is not callable")
        self.operations = ops
        names = child.get_col_names()
        self.input_columns = _columns(input_columns) or names[:1]
        missing = [c for c in self.input_columns if c not in names]
        if missing:
            raise DatasetError(f"map: input_columns {missing} are not in the dataset (its columns: {names})")
        self.output_columns = _columns(output_columns, "output_columns") or list(self.input_columns)
        self._in = [names.index(c) for c in self.input_columns]
        self._inplace = self.output_columns == self.input_columns
        if self._inplace:  # in place, as MindSpore keeps the order
            self._names = names
        else:  # new outputs first, then the untouched columns (MindSpore's order)
            self._names = self.output_columns + [c for c in names if c not in self.input_columns]
        self._keep = [i for i, c in enumerate(names) if c not in self.input_columns]

    def get_col_names(self):
        return list(self._names)

    def _apply(self, row):
        values = tuple(row[i] for i in self._in)
        for op in self.operations:
            out = op(*values)
            values = tuple(out) if isinstance(out, (tuple, list)) else (out,)
        if len(values) != len(self.output_columns):
            raise DatasetError(f"map: operations returned {len(values)} columns but output_columns is "
                               f"{self.output_columns}")
        values = tuple(np.asarray(v) for v in values)
        if self._inplace:
            row = list(row)
            for i, v in zip(self._in, values):
                row[i] = v
            return tuple(row)
        return values + tuple(row[i] for i in self._keep)

    def _rows(self, epoch):
        for row in self.children[0]._rows(epoch):
            yield self._apply(row)


@operation("repeat")
class RepeatDataset(Dataset):
    def __init__(self, child, count=None):
        super().__init__([child])
        count = -1 if count is None else count
        if not isinstance(count, int) or count == 0 or count < -1:
            raise ValueError(f"repeat: count must be a positive int or -1/None, got {count!r}")
        self.count = count

    def get_repeat_count(self):
        return self.count

    def _size(self):
        n = self.children[0]._size()
        if self.count == -1:
            return math.inf if n != 0 else 0
        return None if n is None else n * self.count

    def _rows(self, epoch):
        r = 0
        while self.count == -1 or r < self.count:
            yield from self.children[0]._rows(epoch * max(self.count, 1) + r)
            r += 1


@operation("take")
class TakeDataset(Dataset):
    def __init__(self, child, count=-1):
        super().__init__([child])
        if not isinstance(count, int) or count == 0 or count < -1:
            raise ValueError(f"take: count must be a positive int or -1, got {count!r}")
        self.count = count

    def _size(self):
        n = self.children[0]._size()
        if self.count == -1 or n is None:
            return n
        return min(n, self.count)

    def _rows(self, epoch):
        for i, row in enumerate(self.children[0]._rows(epoch)):
            if 0 <= self.count <= i:
                return
            yield row


@operation("skip")
class SkipDataset(Dataset):
    def __init__(self, child, count):
        super().__init__([child])
        if not isinstance(count, int) or count < 0:
            raise ValueError(f"skip: count must be a non-negative int, got {count!r}")
        self.count = count

    def _size(self):
        n = self.children[0]._size()
        return None if n is None else max(n - self.count, 0)

    def _rows(self, epoch):
        for i, row in enumerate(self.children[0]._rows(epoch)):
            if i >= self.count:
                yield row


@operation("project")
class ProjectDataset(Dataset):
    def __init__(self, child, columns):
        super().__init__([child])
        names = child.get_col_names()
        self.columns = _columns(columns, "columns")
        missing = [c for c in self.columns if c not in names]
        if missing:
            raise DatasetError(f"project: columns {missing} are not in the dataset (its columns: {names})")
        self._pick = [names.index(c) for c in self.columns]

    def get_col_names(self):
        return list(self.columns)

    def _rows(self, epoch):
        for row in self.children[0]._rows(epoch):
            yield tuple(row[i] for i in self._pick)


@operation("rename")
class RenameDataset(Dataset):
    def __init__(self, child, input_columns, output_columns):
        super().__init__([child])
        old, new = _columns(input_columns), _columns(output_columns, "output_columns")
        names = child.get_col_names()
        if len(old) != len(new) or any(c not in names for c in old):
            raise DatasetError(f"rename: cannot rename {old} to {new} (columns: {names})")
        mapping = dict(zip(old, new))
        self._names = [mapping.get(c, c) for c in names]

    def get_col_names(self):
        return list(self._names)

    def _rows(self, epoch):
        return self.children[0]._rows(epoch)
