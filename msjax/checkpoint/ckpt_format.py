"""The .ckpt format: records (``codec``), the ``crc_num`` trailer, and the encrypted variant
(``crypto``), behind the interface every format module has (``sniff``, ``read``, ``write``).

>>> write("net.ckpt", {"w": np.ones(2, np.float32)}, {}, crc_check=True)      # doctest: +SKIP
>>> read("net.ckpt", crc_check=True)                                           # doctest: +SKIP
(OrderedDict([('w', array([1., 1.], dtype=float32))]), {'w': 'Float32'})
"""
from __future__ import annotations

import io
import os
import warnings
import zlib

from msjax.checkpoint import codec, crypto
from msjax.common.atomic import atomic_write
from msjax.errors import CheckpointError

__all__ = ["NAME", "SUFFIXES", "sniff", "read", "write", "crc_trailer", "data_end", "crc_of", "file_size"]

NAME = "ckpt"
SUFFIXES = (".ckpt",)


# --------------------------------------------------------------------------- the crc_num trailer

def crc_trailer(crc: int) -> bytes:
    """``b"crc_num"`` and ``crc`` as a 10-byte big-endian integer (FORMAT.md statement 11)."""
    return codec.CRC_MAGIC + crc.to_bytes(10, "big")


def data_end(f, size: int) -> tuple[int, int | None]:
    """(end of the protobuf data, stored CRC or None): strips a ``crc_num`` trailer if present."""
    if size >= codec.CRC_TRAILER:
        f.seek(size - codec.CRC_TRAILER)
        tail = f.read(codec.CRC_TRAILER)
        if tail[:len(codec.CRC_MAGIC)] == codec.CRC_MAGIC:
            return size - codec.CRC_TRAILER, int.from_bytes(tail[len(codec.CRC_MAGIC):], "big")
    return size, None


def crc_of(f, end: int, chunk: int = 16 * 1024 * 1024) -> int:
    """CRC32 of ``f[0:end]``, streamed in chunks."""
    f.seek(0)
    crc, left = 0, end
    buf = bytearray(min(chunk, max(end, 1)))
    view = memoryview(buf)
    while left:
        n = f.readinto(view[:min(len(buf), left)])
        if not n:
            break
        crc = zlib.crc32(view[:n], crc)
        left -= n
    return crc


def file_size(f) -> int:
    return os.fstat(f.fileno()).st_size if hasattr(f, "fileno") else f.seek(0, io.SEEK_END)


def _check_crc(source, end, stored, path):
    if stored is None:
        warnings.warn(f"{path}: crc_check=True but the file has no crc_num trailer", stacklevel=5)
        return
    if stored > 0xFFFFFFFF:
        raise CheckpointError(f"the crc_num trailer holds {stored}, which is no CRC32 (over 32 "
                              f"bits); the trailer is corrupt", file=path)
    computed = crc_of(source, end)
    if computed != stored:
        raise CheckpointError(f"CRC check failed: stored {stored}, computed {computed}; the "
                              f"file is damaged", file=path)


# --------------------------------------------------------------------------- sources

class Memory:
    """Seekable read-only view over decrypted bytes, with the file API the codec uses; positions
    past the end read as empty, as a file's do."""

    def __init__(self, data):
        self.view, self.pos = memoryview(data), 0

    def seek(self, pos, whence=0):
        base = {0: 0, 1: self.pos, 2: len(self.view)}[whence]
        if base + pos < 0:
            raise ValueError(f"negative seek position {base + pos}")
        self.pos = base + pos
        return self.pos

    def read(self, n=-1):
        start = min(self.pos, len(self.view))
        end = len(self.view) if n is None or n < 0 else min(start + n, len(self.view))
        self.pos = max(self.pos, end)
        return bytes(self.view[start:end])

    def readinto(self, out):
        start = min(self.pos, len(self.view))
        n = min(len(out), len(self.view) - start)
        out[:n] = self.view[start:start + n]
        self.pos = start + n if n else self.pos
        return n


class _Buffer:
    """A write-only byte sink that keeps large writes as one growing bytearray."""

    def __init__(self):
        self.data = bytearray()

    def write(self, b):
        self.data += b
        return len(b)


def _open_source(f, path, dec_key, dec_mode):
    """(source, size): ``f`` itself, or its decrypted bytes; an encrypted file needs ``dec_key``."""
    size = file_size(f)
    mode = crypto.is_encrypted(f.read(4))
    f.seek(0)
    if dec_key is not None:
        source = Memory(crypto.decrypt_file(f, dec_key, dec_mode, file=path))
        return source, len(source.view)
    if mode is not None:
        raise CheckpointError(f"the file is encrypted ({mode} framing); pass dec_key= and "
                              f"dec_mode='{mode}'", file=path)
    return f, size


# --------------------------------------------------------------------------- the format interface

def sniff(path) -> bool:
    """True when ``path`` is a file that starts like a .ckpt: a well-formed first record, or a
    MindSpore encrypted block."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return False
    return crypto.is_encrypted(head) is not None or codec.fast_record(head) is not None


def read(path, *, select=None, dec_key=None, dec_mode="AES-GCM", crc_check=False):
    """(name -> array or str in file order, name -> tensor_type) of the .ckpt at ``path``; only
    the tensors ``select(name)`` picks are read. Encrypted files need ``dec_key``."""
    try:
        f = open(path, "rb")
    except OSError as err:
        raise CheckpointError(f"cannot open checkpoint: {err.strerror}", file=path) from None
    with f:
        source, size = _open_source(f, path, dec_key, dec_mode)
        end, stored = data_end(source, size)
        if crc_check:
            _check_crc(source, end, stored, path)
        types = {}
        named = codec.read_records(source, end, select=select, file=path, types=types)
    return named, types


def write(path, named, types, *, enc_key=None, enc_mode="AES-GCM", crc_check=False, fsync=True,
          remove_redundancy=None):
    """Write ``named`` (name -> host array or str) atomically as a .ckpt; ``types`` overrides
    tensor_type strings. ``remove_redundancy`` has no place in a .ckpt and is not recorded."""
    if enc_key is not None and crc_check:
        raise CheckpointError("enc_key and crc_check=True cannot be combined (MindSpore cannot "
                              "load such a file)", file=path)

    def write_to(f):
        if enc_key is None:
            crc = codec.write_records(f, named, crc=0 if crc_check else None, types=types)
            if crc_check:
                f.write(crc_trailer(crc))
            return
        plain = _Buffer()
        codec.write_records(plain, named, types=types)
        crypto.write_encrypted(f, memoryview(plain.data), enc_key, enc_mode)

    atomic_write(path, write_to, fsync=fsync)
