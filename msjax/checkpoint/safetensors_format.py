"""MindSpore's safetensors flavour (``save_checkpoint(..., format="safetensors")``).

A safetensors file is ``u64 LE header length N``, ``N`` bytes of JSON padded with spaces to a
multiple of 8, then the raw little-endian tensor bytes. The JSON maps each name to
``{"dtype", "shape", "data_offsets": [begin, end]}`` (offsets into the data part, contiguous from
0 to its end) and holds ``"__metadata__"`` (str -> str). MindSpore writes the metadata
``{"format": "ms"}`` (plus ``"crc_num"`` with ``crc_check=True``, and ``"<name>": "Int4"`` for
qint4x2 tensors) through ``safetensors.numpy.save_file``, which orders the tensors by descending
dtype and then by name; this writer reproduces those bytes without the library's extra copy.

    >>> save({"w": np.ones((2, 2), np.float32)}, path)                       # doctest: +SKIP
    >>> load(path)["w"].sum()                                                # doctest: +SKIP
    4.0
"""
from __future__ import annotations

import binascii
import json
import os
import reprlib
import struct
import sys
import warnings
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping

import numpy as np

from msjax.checkpoint.codec import check_dims
from msjax.common import dtype as mstype
from msjax.common.atomic import atomic_write
from msjax.common.untrusted import reading
from msjax.errors import CheckpointError

__all__ = ["save", "load", "read_metadata", "MS_METADATA", "NAME", "SUFFIXES", "sniff", "read", "write"]

NAME = "safetensors"
SUFFIXES = (".safetensors",)
MS_METADATA = {"format": "ms"}
_MAX_ZERO_CRC = 1 << 30            # see _crc: MindSpore would allocate this many zero bytes
_MAX_HEADER = 100_000_000          # the safetensors library's MAX_HEADER_SIZE
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 80
# The library's Dtype enum order (its files list tensors by descending rank, then by name).
_RANK = {code: i for i, code in enumerate(
    ("BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16", "I32", "U32", "F32",
     "C64", "F64", "I64", "U64"))}


def _code(array):
    """The safetensors dtype code for ``array``, or None when the format cannot store it."""
    try:
        code = mstype.from_numpy(array.dtype).safetensors
    except TypeError:
        return None
    return code if code in _RANK else None


def _check_codes(arrays, file):
    """One error naming every tensor the safetensors format cannot store."""
    bad = [f"tensor {name!r} has dtype {array.dtype}" for name, array, code in arrays if code is None]
    if bad:
        raise CheckpointError(f"{'; '.join(bad)}, which the safetensors format cannot store", file=file)


def _crc(named, crc=0, file=None):
    """MindSpore's safetensors CRC: crc32 over (name utf-8, ``bytes(array)``) in sorted name order.

    MindSpore computes ``bytes(array)``, which for a 0-d integer array means ``value`` zero bytes
    (Python's ``bytes(int)``), not the array's bytes; that is reproduced here.
    """
    for name, array in named:
        crc = binascii.crc32(name.encode("utf-8"), crc)
        if array.ndim == 0 and array.dtype.kind in "iu":
            count = int(array)
            if not 0 <= count <= _MAX_ZERO_CRC:
                raise CheckpointError(f"crc_check: 0-d integer tensor {name!r} holds {count}; "
                                      "MindSpore's crc_num is bytes(array), which fails for it "
                                      "(negative or huge); save or load without crc_check",
                                      file=file)
            for start in range(0, count, 1 << 20):
                crc = binascii.crc32(bytes(min(1 << 20, count - start)), crc)
        else:
            crc = binascii.crc32(_raw(array), crc)
    return crc


def _raw(array):
    return memoryview(array.reshape(-1).view(np.uint8))


def save(named: Mapping[str, np.ndarray], path, *, metadata: Mapping[str, str] | None = None,
         crc_check: bool = False, fsync: bool = True) -> None:
    """Write ``named`` arrays to ``path`` as MindSpore writes ``format="safetensors"``.

    ``metadata=None`` gives MindSpore's ``{"format": "ms"}`` (no metadata for an empty dict, as
    MindSpore); ``crc_check=True`` adds MindSpore's ``"crc_num"`` entry. The write is atomic
    (``msjax.common.atomic``): a failure raises ``CheckpointWriteError`` and keeps the old file.

    >>> save({"fc.bias": np.zeros(3, np.float32)}, "net.safetensors")        # doctest: +SKIP
    """
    file = os.fspath(path)
    arrays = []
    for name, value in named.items():
        if not isinstance(name, str) or not name or name == "__metadata__":
            raise CheckpointError(f"tensor name {name!r} is not a valid safetensors name",
                                  file=file)
        array = np.asarray(value, order="C")
        arrays.append((name, array, _code(array)))
    _check_codes(arrays, file)
    meta = dict(MS_METADATA if metadata is None and arrays else metadata or {})
    for key, value in meta.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise CheckpointError(f"safetensors metadata must map str to str, got {key!r}: "
                                  f"{value!r}", file=file)
    if crc_check and arrays:        # MindSpore drops all metadata for an empty dict
        meta["crc_num"] = str(_crc(((n, a) for n, a, _ in sorted(arrays, key=lambda t: t[0])),
                                   file=file))
    arrays.sort(key=lambda t: (-_RANK[t[2]], t[0]))

    header = {"__metadata__": meta} if meta else {}
    offset = 0
    for name, array, code in arrays:
        header[name] = {"dtype": code, "shape": list(array.shape),
                        "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    try:
        text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as e:
        raise CheckpointError(f"a tensor name or metadata entry is not valid UTF-8: {e}",
                              file=file) from None
    text += b" " * (-len(text) % 8)

    def write(f):
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for _, array, _ in arrays:
            if array.nbytes:
                f.write(_raw(array))
    atomic_write(file, write, fsync=fsync)


def _read_header(f, file):
    size = os.fstat(f.fileno()).st_size
    first = f.read(8)
    if len(first) < 8:
        raise CheckpointError(f"not a safetensors file: {size} bytes, shorter than the 8-byte "
                              "header length", file=file)
    (n,) = struct.unpack("<Q", first)
    if n > _MAX_HEADER or n > size - 8:
        raise CheckpointError(f"safetensors header length {n} is impossible for a file of {size} "
                              "bytes: the file is truncated or not safetensors", file=file)
    header = _parse_json(f.read(n), file)
    if not isinstance(header, dict):
        raise CheckpointError("safetensors header is not a JSON object", file=file)
    return header, 8 + n, size - 8 - n


def _parse_json(raw, file):
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CheckpointError(f"safetensors header is not valid JSON: not UTF-8 ({e.reason} at "
                              f"byte {8 + e.start})", file=file) from None
    try:
        return json.loads(text)
    except RecursionError:
        raise CheckpointError("safetensors header nests JSON deeper than Python's parser "
                              f"follows (about {sys.getrecursionlimit()} levels; a real header "
                              "nests 3): the file is corrupt or not safetensors",
                              file=file) from None
    except ValueError as e:     # JSONDecodeError, or an integer of over 4300 digits
        raise CheckpointError(f"safetensors header is not valid JSON: {e}", file=file) from None


def _short(value) -> str:
    """A bounded repr of a JSON value from a file (which may be huge or deeply nested)."""
    return _REPR.repr(value)


def _entries(header, data_len, file):
    """Validated (name, numpy dtype, shape, begin, end) in file order."""
    entries = [_entry(name, info, file) for name, info in header.items()
               if name != "__metadata__"]
    entries.sort(key=lambda e: (e[3], e[4]))
    at = 0
    for name, _, _, begin, end in entries:
        if begin != at:
            raise CheckpointError(f"tensor {name!r}: data_offsets start at {begin}, expected {at} "
                                  "(overlapping or out-of-order offsets)", file=file)
        at = end
    if at != data_len:
        raise CheckpointError(f"safetensors data holds {data_len} bytes but the tensors cover "
                              f"{at}: the file is truncated or has trailing bytes", file=file)
    return entries


def _is_count(value) -> bool:
    return type(value) is int and value >= 0      # not bool, not float


def _entry(name, info, file):
    """One tensor's (name, numpy dtype, shape, begin, end), every field checked."""
    def bad(fact):
        raise CheckpointError(f"tensor {name!r} has a malformed safetensors entry: {fact}; got "
                              f"{_short(info)}", file=file)
    if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= info.keys():
        bad("it must be an object with dtype, shape and data_offsets")
    code, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if type(code) is not str:
        bad("dtype must be a string such as \"F32\"")
    if type(shape) is not list or not all(map(_is_count, shape)):
        bad("shape must be a list of non-negative integers")
    if type(offsets) is not list or len(offsets) != 2 or not all(map(_is_count, offsets)):
        bad("data_offsets must be [begin, end], two non-negative integers")
    found = mstype.BY_SAFETENSORS.get(code)
    if found is None:
        raise CheckpointError(f"tensor {name!r} has unknown safetensors dtype {_short(code)}",
                              file=file)
    begin, end = offsets
    if end < begin:
        bad(f"data_offsets end {end} lies before begin {begin}")
    check_dims(shape, found.numpy.itemsize, end - begin, f"tensor {name!r}", file, what=code,
               held=f"its data_offsets [{begin}, {end}] hold")
    return name, found.numpy, tuple(shape), begin, end


def _selector(names):
    if names is None:
        return lambda name: True
    if callable(names):
        return names
    if isinstance(names, str) or not isinstance(names, Collection):
        raise TypeError(f"names must be None, a predicate or a collection of names, got {names!r}")
    return names.__contains__


def _read_exact(f, view, file, name):
    got = 0
    while got < len(view):
        k = f.readinto(view[got:])
        if not k:
            raise CheckpointError(f"tensor {name!r} is truncated", file=file)
        got += k


def load(path, *, names: Callable[[str], bool] | Collection[str] | None = None,
         crc_check: bool = False) -> OrderedDict:
    """Read a safetensors file into ``{name: np.ndarray}`` in file order.

    ``names`` (a predicate or a collection) selects tensors; only their bytes are read.
    ``crc_check=True`` verifies MindSpore's ``"crc_num"`` (and reads every tensor to do so).
    Note MindSpore's ``load_checkpoint`` returns names sorted; sort the keys for that order.

    >>> load("net.safetensors", names=lambda n: n.startswith("fc"))          # doctest: +SKIP
    OrderedDict([('fc.bias', array([0., 0., 0.], dtype=float32))])
    """
    return _load(os.fspath(path), names, crc_check)[0]


def _load(file, names, crc_check):
    """(name -> array in file order, the checked ``__metadata__``), the header parsed once."""
    wanted = _selector(names)
    with _open(file) as f:
        with reading(file, CheckpointError, "safetensors file"):
            header, start, data_len = _read_header(f, file)
            meta = _metadata(header, file)
            entries = _entries(header, data_len, file)
        chosen = {e[0] for e in entries if wanted(e[0])}    # the caller's predicate, unguarded
        with reading(file, CheckpointError, "safetensors file"):
            loaded = _read_tensors(f, start, entries, chosen, crc_check, meta, file)
    return OrderedDict((e[0], loaded[e[0]]) for e in entries if e[0] in loaded), meta


def _read_tensors(f, start, entries, chosen, crc_check, meta, file) -> dict:
    """name -> array for the ``chosen`` entries (``crc_check``: read all, verify crc_num)."""
    crc, loaded = 0, {}
    # MindSpore's CRC runs over the tensors in name order; without it, read in file order
    order = sorted(entries, key=lambda e: e[0]) if crc_check else entries
    for name, dtype, shape, begin, end in order:
        selected = name in chosen
        if not (selected or crc_check):
            continue
        array = np.empty(shape, dtype)
        if end > begin:
            f.seek(start + begin)
            _read_exact(f, _raw(array), file, name)
        if crc_check:
            crc = _crc([(name, array)], crc, file)
        if selected:
            loaded[name] = array
    if crc_check:
        _check_crc(meta, crc, file)
    return loaded


def _check_crc(meta, crc, file):
    if "crc_num" not in meta:
        warnings.warn(f"{file}: crc_check=True but the safetensors file has no crc_num",
                      stacklevel=5)
        return
    if meta["crc_num"] != str(crc):
        raise CheckpointError(f"CRC check failed: stored crc_num {_short(meta['crc_num'])}, "
                              f"computed {crc}; the file is damaged", file=file)


def _metadata(header, file) -> dict:
    """The header's ``__metadata__``, checked: absent or null gives {}, else it maps str to str."""
    meta = header.get("__metadata__")
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise CheckpointError(f"safetensors __metadata__ is not a JSON object: {_short(meta)}",
                              file=file)
    for key, value in meta.items():
        if type(value) is not str:
            raise CheckpointError(f"safetensors __metadata__ maps {key!r} to {_short(value)}; "
                                  "metadata values must be strings", file=file)
    return meta


def _open(file):
    try:
        return open(file, "rb")
    except OSError as e:
        raise CheckpointError(f"cannot open safetensors file: {e.strerror}", file=file) from None


def read_metadata(path) -> dict:
    """The ``__metadata__`` dict of a safetensors file ({} when absent).

    >>> read_metadata("net.safetensors")                                     # doctest: +SKIP
    {'format': 'ms'}
    """
    file = os.fspath(path)
    with reading(file, CheckpointError, "safetensors file"), _open(file) as f:
        header, _, _ = _read_header(f, file)
        return _metadata(header, file)


# --------------------------------------------------------------------------- the format interface

def sniff(path) -> bool:
    """True when ``path`` is a file that starts like safetensors: a header length the file can
    hold, then a JSON object."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            first = f.read(9)
    except OSError:
        return False
    if len(first) < 9:
        return False
    (n,) = struct.unpack("<Q", first[:8])
    return 2 <= n <= min(_MAX_HEADER, size - 8) and first[8:9] == b"{"


def read(path, *, select=None, dec_key=None, dec_mode="AES-GCM", crc_check=False):
    """(name -> array sorted by name, as MindSpore returns them; name -> stored dtype string for
    the tensors the metadata marks ``Int4``). A safetensors file is never encrypted."""
    if dec_key is not None:
        raise CheckpointError("a safetensors file is not encrypted: load it without dec_key", file=path)
    named, meta = _load(os.fspath(path), select, crc_check)
    named = OrderedDict((k, named[k]) for k in sorted(named))
    return named, {k: "Int4" for k in named if meta.get(k) == "Int4"}


def write(path, named, types, *, enc_key=None, enc_mode="AES-GCM", crc_check=False, fsync=True,
          remove_redundancy=None):
    """``save`` with MindSpore's metadata: ``{"format": "ms"}``, ``remove_redundancy`` as
    "True"/"False" when given, and ``"<name>": "Int4"`` for qint4x2 tensors."""
    if enc_key is not None:
        raise CheckpointError("format='safetensors' cannot be encrypted: leave enc_key=None", file=path)
    meta = dict(MS_METADATA)
    if remove_redundancy is not None:
        meta["remove_redundancy"] = str(remove_redundancy)
    meta.update({n: "Int4" for n, t in types.items() if t == "Int4"})
    save(named, path, metadata=meta if named else None, crc_check=crc_check, fsync=fsync)
