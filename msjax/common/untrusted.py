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


def check_shape(shape, itemsize: int, available: int, name: str, error, file) -> int:
    """The byte size of ``shape``; raise ``error`` unless it is a valid ndarray shape whose bytes
    ``available`` can back (so nothing is allocated for a size the file cannot hold)."""
    shape = tuple(shape)
    if len(shape) > MAX_DIMS:
        raise error(f"{name} has {len(shape)} dims; at most {MAX_DIMS} are possible", file=file)
    count = 1
    for d in shape:
        try:
            d = operator.index(d)
        except TypeError:
            d = -1
        if d < 0:
            raise error(f"{name} has an invalid dim in shape {list(shape)}", file=file)
        count *= d
    nbytes = count * itemsize
    if nbytes > available:
        raise error(f"{name} declares shape {list(shape)} ({nbytes} bytes) but only {available} "
                    f"bytes back it", file=file)
    return nbytes
