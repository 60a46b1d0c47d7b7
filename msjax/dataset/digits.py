"""scikit-learn's real 8x8 handwritten digits, written as MNIST idx files.

``load_digits`` ships with scikit-learn (no network). Each 8x8 image (values 0..16) is scaled to
0..255, upscaled bilinearly to 20x20 and centred in a 28x28 frame, as MNIST centres its digits.
The split is stratified and fixed by ``seed``, so the files are the same on every machine.

>>> from msjax.dataset import MnistDataset, write_digits
>>> write_digits("/tmp/digits")["train"]
1437
>>> MnistDataset("/tmp/digits", usage="test").get_dataset_size()
360
"""
from __future__ import annotations

import gzip as _gzip
import os
import struct

import numpy as np

from msjax.dataset.mnist import FILES

__all__ = ["write_digits", "digits_as_mnist", "write_idx"]


def _upscale(images, size):
    """Bilinear (half-pixel centres) resize of a (N, h, w) float batch to (N, size, size)."""
    n, h, w = images.shape
    def axis(src, dst):
        pos = np.clip((np.arange(dst) + 0.5) * src / dst - 0.5, 0, src - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, src - 1)
        return lo, hi, (pos - lo).astype(np.float64)
    y0, y1, fy = axis(h, size)
    x0, x1, fx = axis(w, size)
    rows = images[:, y0, :] * (1 - fy)[None, :, None] + images[:, y1, :] * fy[None, :, None]
    return rows[:, :, x0] * (1 - fx) + rows[:, :, x1] * fx


def digits_as_mnist(test_size=0.2, seed=0):
    """Return ``{"train": (images, labels), "test": (images, labels)}`` as MNIST arrays.

    Images are (N, 28, 28) uint8, labels (N,) uint8; the split is stratified by label.

    >>> digits_as_mnist()["test"][0].shape
    (360, 28, 28)
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    small = digits.images.astype(np.float64) * (255.0 / 16.0)
    big = np.clip(np.rint(_upscale(small, 20)), 0, 255).astype(np.uint8)
    images = np.zeros((len(big), 28, 28), np.uint8)
    images[:, 4:24, 4:24] = big
    labels = digits.target.astype(np.uint8)
    index = np.arange(len(labels))
    train, test = train_test_split(index, test_size=test_size, random_state=seed, stratify=labels)
    train, test = np.sort(train), np.sort(test)
    return {"train": (images[train], labels[train]), "test": (images[test], labels[test])}


def write_idx(path, array, compress=False):
    """Write a uint8 ``array`` as an idx file (big-endian header: magic 0x08, ndim, dims)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    opener = _gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())


def write_digits(dataset_dir, test_size=0.2, seed=0, compress=False):
    """Write the digits as the four MNIST idx files in ``dataset_dir``; return the row counts.

    ``compress=True`` writes ``.gz`` files (``MnistDataset`` reads both).

    >>> write_digits("/tmp/digits")
    {'train': 1437, 'test': 360}
    """
    os.makedirs(dataset_dir, exist_ok=True)
    counts = {}
    suffix = ".gz" if compress else ""
    for usage, (images, labels) in digits_as_mnist(test_size, seed).items():
        image_file, label_file = FILES[usage]
        write_idx(os.path.join(dataset_dir, image_file + suffix), images, compress)
        write_idx(os.path.join(dataset_dir, label_file + suffix), labels, compress)
        counts[usage] = len(labels)
    return counts
