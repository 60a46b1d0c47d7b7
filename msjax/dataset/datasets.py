"""The pipeline's base: ``Dataset`` (operations, queries, iterators) and random-access sources.
Each step is a node over its child; a node yields rows (tuples of numpy arrays, one per column)
for one epoch. Sources read rows by index through a sampler, so shuffling a source costs an index
permutation. The operation nodes live in ``ops``.
>>> ds = NumpySlicesDataset({"x": np.arange(5)}, shuffle=False).batch(2)
>>> [b[0].asnumpy().tolist() for b in ds]
[[0, 1], [2, 3], [4]]
"""
from __future__ import annotations

import math

from msjax.dataset import config
from msjax.dataset.iterators import DictIterator, TupleIterator
from msjax.dataset.samplers import select
from msjax.errors import DatasetError

__all__ = ["Dataset", "SourceDataset", "ArraySource"]


#: Dataset method name -> the operation node it builds. The nodes subclass Dataset, so this module
#: cannot import them: ``msjax.dataset.ops`` registers each with ``@operation(name)``, and the
#: package's ``__init__`` imports it before any dataset can be built.
OPERATIONS = {}


def operation(name):
    """Class decorator: the node built by ``Dataset.<name>(...)``."""
    def register(cls):
        OPERATIONS[name] = cls
        return cls
    return register


class Dataset:
    """Base of every dataset: the operations and the iterators."""

    def __init__(self, children=()):
        self.children = list(children)

    # ---- what each node provides -------------------------------------------------------
    def get_col_names(self):
        """The column names, in row order."""
        return self.children[0].get_col_names()

    def _rows(self, epoch):
        """Yield the rows of epoch ``epoch`` (tuples of numpy arrays)."""
        raise NotImplementedError

    def _size(self):
        """Rows per epoch: an int, ``math.inf`` (repeated forever) or None (unknown: an iterable)."""
        return self.children[0]._size()

    # ---- MindSpore's queries -----------------------------------------------------------
    def get_dataset_size(self):
        """Rows (batches after ``batch``) per epoch; -1 when repeated forever; counted by
        iterating when unknown (an iterable ``GeneratorDataset``)."""
        size = self._size()
        if size == math.inf:
            return -1
        if size is None:
            size = sum(1 for _ in self._rows(0))
        return size

    def get_batch_size(self):
        return self.children[0].get_batch_size() if self.children else 1

    def get_repeat_count(self):
        return self.children[0].get_repeat_count() if self.children else 1

    def _first_row(self):
        for row in self._rows(0):
            return row
        raise DatasetError("the dataset is empty: no row to describe")

    def output_shapes(self):
        """Shapes of the first row's columns."""
        return [list(c.shape) for c in self._first_row()]

    def output_types(self):
        """numpy dtypes of the first row's columns."""
        return [c.dtype for c in self._first_row()]

    # ---- operations ----------------------------------------------------------------------
    def batch(self, batch_size, drop_remainder=False, num_parallel_workers=None, **kwargs):
        """Stack ``batch_size`` consecutive rows into one (a smaller last batch unless dropped).

        ``num_parallel_workers`` (and ``python_multiprocessing``/``max_rowsize`` among MindSpore's
        keyword options) are performance hints: accepted, and the rows are the same with any
        value, since msjax batches in the calling thread."""
        return OPERATIONS["batch"](self, batch_size, drop_remainder, **kwargs)

    def shuffle(self, buffer_size):
        """Shuffle rows through a buffer of ``buffer_size`` rows (reshuffled each epoch)."""
        return OPERATIONS["shuffle"](self, buffer_size)

    def map(self, operations, input_columns=None, output_columns=None, num_parallel_workers=None,
            python_multiprocessing=False, **kwargs):
        """Apply ``operations`` (a callable or a list, in order) to ``input_columns`` of each row.

        ``num_parallel_workers`` and ``python_multiprocessing`` are performance hints: accepted, and
        the rows are the same with any value, since msjax maps in the calling thread."""
        return OPERATIONS["map"](self, operations, input_columns, output_columns,
                                 python_multiprocessing=python_multiprocessing, **kwargs)

    def repeat(self, count=None):
        """Repeat the dataset ``count`` times (None or -1: forever)."""
        return OPERATIONS["repeat"](self, count)

    def take(self, count=-1):
        """The first ``count`` rows (-1: all)."""
        return OPERATIONS["take"](self, count)

    def skip(self, count):
        """Drop the first ``count`` rows."""
        return OPERATIONS["skip"](self, count)

    def project(self, columns):
        """Keep only ``columns``, in that order."""
        return OPERATIONS["project"](self, columns)

    def rename(self, input_columns, output_columns):
        """Rename columns."""
        return OPERATIONS["rename"](self, input_columns, output_columns)

    # ---- iteration -------------------------------------------------------------------------
    def create_tuple_iterator(self, columns=None, num_epochs=-1, output_numpy=False, do_copy=True):
        """An iterator over rows as lists of ``Tensor`` (numpy with ``output_numpy``).

        Each ``for`` over the iterator runs one epoch; ``num_epochs`` (-1: unlimited) caps them.
        """
        return TupleIterator(self, columns, num_epochs, output_numpy)

    def create_dict_iterator(self, num_epochs=-1, output_numpy=False, do_copy=True):
        """An iterator over rows as ``{column: Tensor}`` dicts."""
        return DictIterator(self, None, num_epochs, output_numpy)

    def __iter__(self):
        return iter(self.create_tuple_iterator(num_epochs=1))



# ---- sources ---------------------------------------------------------------------------------
class SourceDataset(Dataset):
    """A random-access source: ``_num_rows`` rows read by index through a sampler."""

    def __init__(self, column_names, num_samples=None, shuffle=None, sampler=None, num_shards=None,
                 shard_id=None):
        super().__init__()
        self._column_names = list(column_names)
        if num_samples is not None and (not isinstance(num_samples, int) or num_samples < 0):
            raise ValueError(f"num_samples must be a non-negative int or None, got {num_samples!r}")
        self.sampler = select(sampler, shuffle, num_samples, num_shards, shard_id)
        self._seed = config.new_seed()

    def get_col_names(self):
        return list(self._column_names)

    def _num_rows(self):
        raise NotImplementedError

    def _get(self, index):
        raise NotImplementedError

    def _size(self):
        return self.sampler.count(self._num_rows())

    def _rows(self, epoch):
        for i in self.sampler.indices(self._num_rows(), epoch, self._seed):
            yield self._get(int(i))


class ArraySource(SourceDataset):
    """A source whose columns are in-memory arrays with the same first dimension."""

    def __init__(self, arrays, column_names, **kwargs):
        super().__init__(column_names, **kwargs)
        self._arrays = list(arrays)

    def _num_rows(self):
        return len(self._arrays[0]) if self._arrays else 0

    def _get(self, index):
        return tuple(a[index] for a in self._arrays)

