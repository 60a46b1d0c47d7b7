"""The one error contract for reading files nobody vouched for.

Every reader (.ckpt plain/CRC/encrypted, safetensors, .pth, MINDIR, AIR, graph.meta) validates what
it can name: lengths against the bytes that back them, dims, dtypes, strides, offsets. ``reading``
is the last line behind those checks: whatever a malformed file still provokes from the libraries
underneath (numpy, protobuf, zipfile, json) leaves as the reader's msjax error, naming the file
and the cause, never as a bare ``IndexError`` or ``UnicodeDecodeError``.

>>> with reading("net.ckpt", CheckpointError, "checkpoint"):           # doctest: +SKIP
...     named = parse(...)
"""
from __future__ import annotations

import contextlib
import math
import operator
import struct
import zipfile
import zlib

from msjax.errors import MsjaxError

#: what a hostile file can make the libraries under a reader raise
MALFORMED = (ValueError, TypeError, IndexError, KeyError, OverflowError, UnicodeError,
             RecursionError, struct.error, EOFError, MemoryError, NotImplementedError, zlib.error,
             zipfile.BadZipFile, zipfile.LargeZipFile)

#: ndarray's own limit on the number of dimensions
MAX_DIMS = 64
#: the most bytes one ndarray can span (numpy's intp)
MAX_ARRAY_BYTES = 2 ** 63 - 1


@contextlib.contextmanager
def reading(file, error: type[MsjaxError], what: str):
    """Re-raise anything in ``MALFORMED`` from the block as ``error`` naming ``file`` and ``what``."""
    try:
        yield
    except MsjaxError:
        raise
    except MemoryError:
        raise error(f"not enough memory to read this {what}", file=file) from None
    except MALFORMED as err:
        cause = str(err) or type(err).__name__
        raise error(f"malformed {what}: {cause} ({type(err).__name__})", file=file) from err


def shape_nbytes(shape, itemsize: int, name: str, error, file) -> int:
    """The byte size of ``shape``; raise ``error`` unless numpy can build it: at most 64 dims,
    each a non-negative int (no bools or floats), and beside any zero dim the others must still
    span less than numpy can address (``np.empty((0, 2**62))`` is refused by numpy too)."""
    shape = list(shape)
    if len(shape) > MAX_DIMS:
        raise error(f"{name} has {len(shape)} dims; at most {MAX_DIMS} are possible", file=file)
    if any(isinstance(d, bool) or not _is_index(d) for d in shape):
        raise error(f"{name} has an invalid dim in shape {shape} (dims are ints)", file=file)
    if any(d < 0 for d in shape):
        raise error(f"{name} has negative dims {shape}", file=file)
    span = itemsize * math.prod(int(d) or 1 for d in shape)
    if span > MAX_ARRAY_BYTES:
        raise error(f"{name} has shape {shape}: its dims span {span} bytes, more than numpy can "
                    f"address ({MAX_ARRAY_BYTES}); the file is corrupt", file=file)
    return itemsize * math.prod(int(d) for d in shape)


def _is_index(d) -> bool:
    try:
        operator.index(d)
    except TypeError:
        return False
    return True


def check_shape(shape, itemsize: int, available: int, name: str, error, file) -> int:
    """``shape_nbytes``, and raise ``error`` unless ``available`` bytes back it (so nothing is
    allocated for a size the file cannot hold)."""
    nbytes = shape_nbytes(shape, itemsize, name, error, file)
    if nbytes > available:
        raise error(f"{name} declares shape {list(shape)} ({nbytes} bytes) but only {available} "
                    f"bytes back it", file=file)
    return nbytes
