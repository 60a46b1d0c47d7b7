"""Reads at a position: ``pread``/``preadv`` on a real file (one system call each: no seek, no
buffer to fill and throw away), ``seek`` + ``read`` on anything else (decrypted bytes in memory,
``io.BytesIO``). The .ckpt codec reads every header and tensor through one of these.

>>> at = At(open("net.ckpt", "rb"))                                      # doctest: +SKIP
>>> at.read(0, 16)                                                        # doctest: +SKIP
>>> at.readinto(memoryview(bytearray(8)), 100)                            # doctest: +SKIP
8
"""
from __future__ import annotations

import io
import os

__all__ = ["At"]

_PREADV = hasattr(os, "preadv")


class At:
    """Positional reads of the binary source ``f`` (its own position is left where it was
    for a real file, and moved for others)."""

    def __init__(self, f):
        self.f = f
        self.fd = None      # only a plain file's descriptor holds its bytes (not a gzip or other wrapper's)
        if isinstance(f, (io.BufferedReader, io.BufferedRandom, io.FileIO)):
            try:
                self.fd = f.fileno()
            except (OSError, ValueError):
                pass

    def read(self, pos: int, n: int) -> bytes:
        """Up to ``n`` bytes at ``pos`` (fewer only at the end of the file)."""
        if self.fd is None:
            self.f.seek(pos)
            return self.f.read(n)
        data = os.pread(self.fd, n, pos)
        if len(data) == n or not data:
            return data
        parts = [data]              # a short read before the end (a signal, a huge n): go on
        got = len(data)
        while got < n:
            more = os.pread(self.fd, n - got, pos + got)
            if not more:
                break
            parts.append(more)
            got += len(more)
        return b"".join(parts)

    def readinto(self, view, pos: int) -> int:
        """Fill the writable ``view`` from ``pos``; the bytes read (fewer only at the end)."""
        if self.fd is None:
            self.f.seek(pos)
            return self.f.readinto(view) or 0
        view = memoryview(view).cast("B")
        total = 0
        while total < len(view):         # Linux moves at most ~2 GiB per call
            if _PREADV:
                n = os.preadv(self.fd, [view[total:]], pos + total)
            else:
                chunk = os.pread(self.fd, len(view) - total, pos + total)
                n = len(chunk)
                view[total:total + n] = chunk
            if not n:
                break
            total += n
        return total
