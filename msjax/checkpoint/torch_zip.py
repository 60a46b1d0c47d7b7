"""The zip side of a ``torch.save`` file, read without trusting it.

``torch.save`` writes a zip archive: ``<root>/data.pkl`` (a pickle of the state dict whose tensors
point at storages by key) and ``<root>/data/<key>`` (each storage's raw little-endian bytes).
Every entry is checked against the bytes that back it before it is read, so what a file makes
the reader hold stays in proportion to the file: stored entries 1:1, deflated ones at most
deflate's 1032:1. A damaged archive raises ``CheckpointError`` naming the file and the cause.
"""
from __future__ import annotations

import struct
import zipfile
import zlib

from msjax.errors import CheckpointError

_DEFLATE_RATIO = 1032          # zlib's bound: a deflate stream expands at most 1032:1
_LOCAL_HEADER = 30             # bytes of a zip local file header before its name
#: what zipfile raises for a damaged archive or entry
ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, struct.error,
              OverflowError, NotImplementedError, zlib.error, UnicodeDecodeError, RuntimeError)


def cause(err):
    """``err`` for a message: its text (at most 200 characters) and its type."""
    text = str(err)
    text = text if len(text) <= 200 else text[:200] + "..."
    kind = type(err).__name__ if type(err).__module__ == "builtins" else \
        f"{type(err).__module__}.{type(err).__name__}"
    return f"{text} ({kind})" if text else kind


def open_archive(path):
    try:
        return zipfile.ZipFile(path)
    except UnicodeDecodeError:
        raise CheckpointError("an entry name in the zip directory is flagged UTF-8 but is not valid "
                              "UTF-8: the archive is damaged; re-save it with torch.save", file=path) from None
    except (FileNotFoundError, IsADirectoryError, PermissionError) as err:
        raise CheckpointError(f"cannot open it: {err.strerror}", file=path) from None
    except ZIP_ERRORS as err:
        raise CheckpointError(f"not a zip archive ({cause(err)}): re-save it with torch.save (the "
                              f"legacy non-zip format is not supported)", file=path) from None


def _check_entry(info, archive_size, path):
    """Refuse an entry before reading it unless the archive can back its declared size."""
    name, size, packed = info.filename, info.file_size, info.compress_size
    if info.flag_bits & 0x1:
        raise CheckpointError(f"entry {name} is encrypted; torch.save never encrypts: re-save the "
                              f"checkpoint", file=path)
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise CheckpointError(f"entry {name} uses compression method {info.compress_type}; only stored "
                              f"(as torch.save writes) and deflated entries are readable", file=path)
    end = info.header_offset + _LOCAL_HEADER + packed
    if info.header_offset < 0 or end > archive_size:
        raise CheckpointError(f"entry {name} runs past the end of the archive (to byte {end} of "
                              f"{archive_size}): the file is truncated or damaged", file=path)
    if info.compress_type == zipfile.ZIP_STORED and size != packed:
        raise CheckpointError(f"stored entry {name} declares {size} bytes but stores {packed}: the "
                              f"archive is damaged", file=path)
    if size > _DEFLATE_RATIO * packed + 64:
        raise CheckpointError(f"entry {name} declares {size} bytes from {packed} compressed bytes, more "
                              f"than deflate's {_DEFLATE_RATIO}:1 can expand (a zip bomb)", file=path)


def read_entry(archive, info, archive_size, path, most=None, limit=""):
    """The bytes of a checked entry of at most ``most`` bytes; a damaged one is a CheckpointError."""
    _check_entry(info, archive_size, path)
    if most is not None and info.file_size > most:
        raise CheckpointError(f"entry {info.filename} declares {info.file_size} bytes, more than {most} "
                              f"bytes{limit}", file=path)
    try:
        data = archive.read(info)
    except ZIP_ERRORS as err:
        raise CheckpointError(f"entry {info.filename} is damaged: {cause(err)}", file=path) from None
    if len(data) != info.file_size:
        raise CheckpointError(f"entry {info.filename} holds {len(data)} bytes, not the {info.file_size} "
                              f"its header declares", file=path)
    return data


def archive_root(infos, path):
    pickles = [name for name in infos if name.endswith("/data.pkl")]
    if not pickles:
        raise CheckpointError("no data.pkl in the archive: not a torch.save file", file=path)
    if len(pickles) > 1:
        raise CheckpointError(f"{len(pickles)} data.pkl entries ({', '.join(pickles[:3])}); a torch.save "
                              f"file has exactly one", file=path)
    return pickles[0][: -len("/data.pkl")]

