"""``MnistDataset``: MNIST idx files (plain or ``.gz``) with MindSpore's columns and order.

Columns: ``image`` (uint8, HWC ``(28, 28, 1)``) and ``label`` (uint32 scalar). ``usage="all"``
(or None) reads the t10k files first, then the train files, as MindSpore does. Real MindSpore
reads only uncompressed files; ``.gz`` is an msjax extension (used when the plain file is absent).

>>> ds = MnistDataset("/tmp/digits", usage="test", shuffle=False)
>>> ds.get_col_names(), ds.get_dataset_size()
(['image', 'label'], 360)
"""
from __future__ import annotations

import gzip
import os
import struct

import numpy as np

from msjax.dataset.datasets import ArraySource
from msjax.errors import DatasetError

__all__ = ["MnistDataset", "read_idx"]

FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
_ORDER = {"train": ("train",), "test": ("test",), "all": ("test", "train")}
_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
           0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path):
    """Read one idx file (``.gz`` is decompressed) as a numpy array.

    >>> read_idx("/tmp/digits/t10k-labels-idx1-ubyte").shape
    (360,)
    """
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as exc:
        raise DatasetError(f"{path}: cannot read the idx file ({exc})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise DatasetError(f"{path}: not an idx file (magic bytes {data[:4].hex() or 'missing'}; "
                           "expected 0000 08 <ndim>)")
    ndim = data[3]
    if len(data) < 4 + 4 * ndim:
        raise DatasetError(f"{path}: idx header is truncated ({len(data)} bytes for {ndim} dims)")
    shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    dtype = np.dtype(_DTYPES[data[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    body = data[4 + 4 * ndim:]
    if len(body) != expected:
        raise DatasetError(f"{path}: idx body has {len(body)} bytes, header {list(shape)} needs {expected}")
    return np.frombuffer(body, dtype).reshape(shape)


def _find(dataset_dir, name):
    for candidate in (name, name + ".gz"):
        path = os.path.join(dataset_dir, candidate)
        if os.path.isfile(path):
            return path
    raise DatasetError(f"{dataset_dir}: MNIST file {name} (or {name}.gz) not found; "
                       "msjax.dataset.write_digits(dir) writes a real-digits set")


def load_mnist(dataset_dir, usage="all"):
    """``(images (N, H, W, 1) uint8, labels (N,) uint32)`` for ``usage``."""
    images, labels = [], []
    for part in _ORDER[usage]:
        image_file, label_file = (_find(dataset_dir, n) for n in FILES[part])
        image, label = read_idx(image_file), read_idx(label_file)
        if image.ndim != 3 or label.ndim != 1 or len(image) != len(label):
            raise DatasetError(f"{image_file}: {image.shape} images do not pair with {label.shape} labels "
                               f"in {label_file}")
        images.append(image.astype(np.uint8, copy=False)[..., None])
        labels.append(label.astype(np.uint32))
    return np.concatenate(images), np.concatenate(labels)


class MnistDataset(ArraySource):
    """MindSpore's ``MnistDataset``: columns ``image`` (HWC uint8) and ``label`` (uint32).

    ``shuffle=None`` shuffles (seeded by ``msjax.dataset.config.set_seed``); ``num_shards`` and
    ``shard_id`` give shard ``shard_id``'s rows ``shard_id, shard_id + num_shards, ...``.

    >>> ds = MnistDataset("/tmp/digits", usage="train", shuffle=False).batch(32)
    >>> [c.shape for c in next(iter(ds))]
    [(32, 28, 28, 1), (32,)]
    """

    def __init__(self, dataset_dir, usage=None, num_samples=None, num_parallel_workers=None, shuffle=None,
                 sampler=None, num_shards=None, shard_id=None, cache=None):
        """``num_parallel_workers`` and ``cache`` are performance hints (the rows are the same)."""
        usage = "all" if usage is None else usage
        if usage not in _ORDER:
            raise ValueError(f"MnistDataset: usage must be 'train', 'test' or 'all', got {usage!r}")
        if not os.path.isdir(dataset_dir):
            raise DatasetError(f"MnistDataset: dataset_dir {dataset_dir} is not a directory")
        self.dataset_dir, self.usage = str(dataset_dir), usage
        images, labels = load_mnist(dataset_dir, usage)
        super().__init__([images, labels], ["image", "label"], num_samples=num_samples, shuffle=shuffle,
                         sampler=sampler, num_shards=num_shards, shard_id=shard_id)
