"""Dataset iterators: rows as lists or dicts of ``msjax.Tensor`` (numpy with ``output_numpy``).

Each ``for`` loop over an iterator runs one epoch; ``num_epochs`` (-1: unlimited) caps them, as in
MindSpore, so one iterator serves a whole training run.

>>> it = NumpySlicesDataset({"x": np.arange(3)}, shuffle=False).create_tuple_iterator(num_epochs=2)
>>> [len(list(it)) for _ in range(3)]
[3, 3, 0]
"""
from __future__ import annotations

from msjax.common.tensor import Tensor
from msjax.errors import DatasetError

__all__ = ["TupleIterator", "DictIterator"]


def _columns(names, what="input_columns"):
    if names is None:
        return None
    names = [names] if isinstance(names, str) else list(names)
    if not names or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{what} must be a column name or a list of names, got {names!r}")
    return names


class _Iterator:
    def __init__(self, dataset, columns, num_epochs, output_numpy):
        self.dataset = dataset
        names = dataset.get_col_names()
        self.column_names = names if columns is None else _columns(columns, "columns")
        missing = [c for c in self.column_names if c not in names]
        if missing:
            raise DatasetError(f"columns {missing} are not in the dataset (its columns: {names})")
        self._pick = [names.index(c) for c in self.column_names]
        self.num_epochs = -1 if num_epochs is None else num_epochs
        self.output_numpy = output_numpy
        self._epoch = 0
        self._gen = None

    def __iter__(self):
        return self

    def __next__(self):
        if self._gen is None:
            if 0 <= self.num_epochs <= self._epoch:
                raise StopIteration
            self._gen = self.dataset._rows(self._epoch)
        try:
            row = next(self._gen)
        except StopIteration:
            self._gen = None
            self._epoch += 1
            raise
        row = [row[i] for i in self._pick]
        if not self.output_numpy:
            row = [Tensor(col) for col in row]
        return self._wrap(row)

    def get_next(self):
        return next(self)

    def stop(self):
        self._gen = None
        self.num_epochs = self._epoch


class TupleIterator(_Iterator):
    """Rows as lists, one epoch per ``for`` loop."""

    def _wrap(self, row):
        return row


class DictIterator(_Iterator):
    """Rows as ``{column name: value}``, one epoch per ``for`` loop."""

    def _wrap(self, row):
        return dict(zip(self.column_names, row))
