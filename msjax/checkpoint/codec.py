"""The .ckpt codec: named arrays <-> MindSpore ``Checkpoint`` protobuf records (see FORMAT.md).

Encoding writes each record's protobuf wire bytes directly: a small header, then the tensor's own
buffer (no copy). Decoding streams: it reads the small headers, seeks past unselected tensors and
reads (``preadv``) each selected tensor's bytes straight into its numpy buffer, so a load never holds
the file plus a parsed copy. One dtype table (``msjax.common.dtype``), one slicing rule (``slices``).

>>> import io, numpy as np
>>> buf = io.BytesIO(); write_records(buf, {"w": np.ones(2, np.float32)})
>>> read_records(io.BytesIO(buf.getvalue()))["w"]
array([1., 1.], dtype=float32)
"""
from __future__ import annotations

import io
import zlib
from collections import OrderedDict
from typing import NamedTuple
from collections.abc import Callable

import numpy as np

from msjax.checkpoint.positional import At
from msjax.common import dtype as mstype
from msjax.common.untrusted import MAX_DIMS, shape_nbytes
from msjax.errors import CheckpointError

#: MindSpore cuts a tensor's bytes into records of at most this many bytes (512 MiB)
SLICE_SIZE = 512 * 1024 * 1024
CRC_MAGIC = b"crc_num"
CRC_TRAILER = len(CRC_MAGIC) + 10
STR_TYPE = "str"
_U64 = 1 << 64                      # protobuf varints carry at most 64 bits


# --------------------------------------------------------------------------- encoding

def _varint(n: int) -> bytes:
    if 0 <= n < 0x80:           # most keys, dims and lengths: one byte
        return bytes((n,))
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def slices(nbytes: int, slice_size: int = SLICE_SIZE) -> list[tuple[int, int]]:
    """The (start, stop) byte ranges of a tensor's records: MindSpore's one slicing rule."""
    return [(i, min(i + slice_size, nbytes)) for i in range(0, nbytes, slice_size)]


def record_header(name: str, dims, tensor_type: str, nbytes: int) -> bytes:
    """Wire bytes of one ``Checkpoint{value{tag, tensor{dims, tensor_type, tensor_content}}}``
    record up to (not including) its ``nbytes`` of tensor_content. Keys: 0x0A field 1 (bytes),
    0x08 field 1 (varint), 0x12 field 2, 0x1A field 3."""
    tensor_type = tensor_type.encode()
    tensor = b"".join([b"\x08" + _varint(int(d)) for d in dims]) + b"\x12" + _varint(len(tensor_type)) + tensor_type
    content_len = _varint(nbytes)
    tensor_len = len(tensor) + 1 + len(content_len) + nbytes
    name = name.encode()
    value = b"\x0a" + _varint(len(name)) + name
    tensor_len_bytes = _varint(tensor_len)
    value_len = len(value) + 1 + len(tensor_len_bytes) + tensor_len
    return b"".join((b"\x0a", _varint(value_len), value, b"\x12", tensor_len_bytes, tensor, b"\x1a", content_len))


def entry(value) -> tuple[list[int], str, memoryview]:
    """(dims, tensor_type, content bytes) for a numpy array or a Python str."""
    if isinstance(value, str):
        data = np.array(value)
        return [0], STR_TYPE, memoryview(data.tobytes())
    array = np.asarray(value)
    if not array.flags.c_contiguous:
        array = np.ascontiguousarray(array)   # (keeps 0-d arrays 0-d only when already contiguous)
    ms_type = mstype.from_numpy(array.dtype)
    return list(array.shape), ms_type.ckpt, memoryview(array.reshape(-1).view(np.uint8))


def write_records(f, named, *, slice_size: int = SLICE_SIZE, crc: int | None = None,
                  types: dict | None = None):
    """Write ``named`` (name -> numpy array or str) as .ckpt records to the binary file ``f``.

    Zero-element tensors get no record (as in MindSpore). ``types`` may override a name's
    tensor_type string (e.g. "Int4" for qint4x2). Returns the running CRC32 when ``crc`` is an
    int (the start value), else None.
    """
    for name, value in named.items():
        dims, tensor_type, content = entry(value)
        if types and name in types:
            tensor_type = types[name]
        for start, stop in slices(len(content), slice_size):
            header = record_header(name, dims, tensor_type, stop - start)
            part = content[start:stop]
            f.write(header)
            f.write(part)
            if crc is not None:
                crc = zlib.crc32(part, zlib.crc32(header, crc))
    return crc


# --------------------------------------------------------------------------- decoding

class Record(NamedTuple):
    """One parsed record: where its tensor_content lies in the source."""
    tag: str
    dims: tuple
    tensor_type: str
    offset: int
    nbytes: int


class _Reader:
    """Bounds-checked protobuf wire reading over a seekable binary source of known end."""

    def __init__(self, f, end: int, file):
        self.f, self.end, self.file = f, end, file

    def fail(self, cause):
        raise CheckpointError(f"not a valid checkpoint: {cause}", file=self.file)

    def read(self, pos: int, n: int) -> bytes:
        if n < 0 or pos + n > self.end:
            self.fail(f"a field of {n} bytes at offset {pos} runs past the end of the data "
                      f"({self.end} bytes; truncated or corrupt file)")
        self.f.seek(pos)
        data = self.f.read(n)
        if len(data) != n:
            self.fail(f"file ended at offset {pos + len(data)}, expected {pos + n} (truncated)")
        return data

    def varint(self, pos: int, limit: int) -> tuple[int, int]:
        buf = self.read(pos, min(10, limit - pos)) if pos < limit else b""
        result = shift = 0
        for i, byte in enumerate(buf):
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                if result >= _U64:
                    self.fail(f"the varint at offset {pos} overflows 64 bits")
                return result, pos + i + 1
            shift += 7
        self.fail(f"unterminated varint at offset {pos} (over 10 bytes, or cut off by the end "
                  f"of its message at offset {limit})")

    def text(self, span, what: str) -> str:
        raw = self.read(*span)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as err:
            self.fail(f"{what} at offset {span[0]} is not UTF-8 ({err.reason} at byte {err.start})")

    def fields(self, pos: int, limit: int):
        """Yield (field number, wire type, value or (start, length), next pos) up to ``limit``."""
        while pos < limit:
            key, pos = self.varint(pos, limit)
            number, wire = key >> 3, key & 7
            if wire == 0:
                value, pos = self.varint(pos, limit)
            elif wire == 2:
                length, pos = self.varint(pos, limit)
                if length > limit - pos:
                    self.fail(f"field {number} at offset {pos} claims {length} bytes but only "
                              f"{limit - pos} remain (truncated file or absurd length)")
                value = (pos, length)
                pos += length
            elif wire in (1, 5):
                value, pos = None, pos + (8 if wire == 1 else 4)
            else:
                self.fail(f"unsupported wire type {wire} at offset {pos}")
            if pos > limit:
                self.fail(f"field {number} runs past its message end at offset {limit}")
            yield number, wire, value


def _parse_value(r: _Reader, start: int, length: int) -> Record:
    tag, tensor = None, None
    for number, wire, value in r.fields(start, start + length):
        if number == 1 and wire == 2:
            tag = r.text(value, "parameter name")
        elif number == 2 and wire == 2:
            tensor = value
        elif number == 3 and wire == 2:
            r.fail(f"record {tag!r} holds a MapTensor (MapParameter), which msjax does not load")
    if tag is None or tensor is None:
        r.fail(f"record at offset {start} has no {'tag' if tag is None else 'tensor'}")
    return _parse_tensor(r, tag, tensor)


def _parse_tensor(r: _Reader, tag: str, tensor) -> Record:
    dims, tensor_type, content = [], None, None
    for number, wire, value in r.fields(*_span(tensor)):
        if number == 1 and wire == 0:
            _add_dim(r, tag, dims, value)
        elif number == 1 and wire == 2:          # packed dims
            pos, end = _span(value)
            while pos < end:
                d, pos = r.varint(pos, end)
                _add_dim(r, tag, dims, d)
        elif number == 2 and wire == 2:
            tensor_type = r.text(value, f"tensor_type of parameter {tag!r}")
        elif number == 3 and wire == 2:
            content = value
    if tensor_type is None or content is None:
        r.fail(f"tensor {tag!r} has no {'tensor_type' if tensor_type is None else 'tensor_content'}")
    return Record(tag, tuple(dims), tensor_type, content[0], content[1])


def _signed(d: int) -> int:
    """An int64 dim from its varint (protobuf writes negative int64 as 10-byte two's complement)."""
    return d - _U64 if d >= 1 << 63 else d


def _add_dim(r: _Reader, tag: str, dims: list, d: int):
    """Append a dim, refusing the 65th at once (a packed field could list millions)."""
    if len(dims) == MAX_DIMS:
        r.fail(f"parameter {tag!r} has more than {MAX_DIMS} dims (numpy's limit); the file is "
               f"corrupt")
    dims.append(_signed(d))


def _span(value):
    return value[0], value[0] + value[1]


def _uvarint(buf: bytes, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[i]          # IndexError past the window: the caller falls back
        i += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if result >= _U64:
                raise IndexError    # over 64 bits: the general parser says so
            return result, i
        shift += 7
        if shift > 63:
            raise IndexError


def fast_record(head: bytes, pos: int = 0):
    """Parse the canonical record layout (FORMAT.md statement 3) from ``head``, the bytes at
    ``pos``; return (Record, next pos) or None (not that layout: the general parser decides)."""
    try:
        if head[0] != 0x0A:
            return None
        value_len, i = _uvarint(head, 1)
        value_end = i + value_len
        if head[i] != 0x0A:
            return None
        tag_len, i = _uvarint(head, i + 1)
        tag = head[i:i + tag_len].decode("utf-8")
        i += tag_len
        if len(tag.encode()) != tag_len or head[i] != 0x12:
            return None
        tensor_len, i = _uvarint(head, i + 1)
        if i + tensor_len != value_end:
            return None
        dims = []
        while head[i] == 0x08:
            d, i = _uvarint(head, i + 1)
            dims.append(_signed(d))
        if len(dims) > MAX_DIMS:
            return None             # the general parser names the fault
        if head[i] != 0x12:
            return None
        type_len, i = _uvarint(head, i + 1)
        tensor_type = head[i:i + type_len].decode("utf-8")
        i += type_len
        if len(tensor_type.encode()) != type_len or head[i] != 0x1A:
            return None
        content_len, i = _uvarint(head, i + 1)
        if i + content_len != value_end:
            return None
    except (IndexError, UnicodeDecodeError):
        return None
    return Record(tag, tuple(dims), tensor_type, pos + i, content_len), pos + value_end


def index(f, end: int, *, file=None) -> list[Record]:
    """Parse every record header in ``f[0:end]`` without reading tensor bytes."""
    r = _Reader(f, end, file)
    at = At(f)
    records = []
    pos = 0
    while pos < end:
        head = at.read(pos, min(512, end - pos))
        fast = fast_record(head, pos)
        if fast is not None and fast[1] <= end:
            records.append(fast[0])
            pos = fast[1]
            continue
        if CRC_MAGIC.startswith(head[:len(CRC_MAGIC)]):
            r.fail(f"a crc_num trailer at offset {pos} is cut short or followed by more bytes "
                   f"(it is {CRC_TRAILER} bytes and ends the file): truncated or appended to")
        key, after = r.varint(pos, end)            # general path, with every bounds check
        number, wire = key >> 3, key & 7
        if number != 1 or wire != 2:
            r.fail(f"unexpected top-level field {number} (wire type {wire}); this is not a "
                   f".ckpt file")
        length, start = r.varint(after, end)
        if length > end - start:
            r.fail(f"record at offset {pos} claims {length} bytes but only {end - start} remain "
                   f"(truncated file or absurd length)")
        records.append(_parse_value(r, start, length))
        pos = start + length
    return records


def _dtype(tensor_type: str, tag: str, file):
    found = mstype.BY_CKPT.get(tensor_type)
    if found is None:
        raise CheckpointError(f"parameter {tag!r} has unknown tensor_type {tensor_type!r}; known: "
                              f"{', '.join(sorted(mstype.BY_CKPT))}, str", file=file)
    return found.numpy


def check_dims(dims, itemsize: int, nbytes: int, name: str, file, *, what: str,
               held: str = "the file holds") -> None:
    """Raise CheckpointError unless ``dims`` (ints) is a shape numpy can build whose elements of
    ``itemsize`` bytes (dtype ``what``) fill exactly the ``nbytes`` the file holds for ``name``
    (``held`` says where); so nothing is allocated for a size the file does not back."""
    need = shape_nbytes(dims, itemsize, name, CheckpointError, file)
    if need != nbytes:
        raise CheckpointError(f"{name}: {what} with dims {list(dims)} needs {need} bytes but "
                              f"{held} {nbytes}", file=file)


def _assemble(at: At, group: list[Record], file):
    """Read one parameter's records (one or more slices) into a fresh array or str."""
    last = group[-1]
    total = sum(rec.nbytes for rec in group)
    if last.tensor_type == STR_TYPE:
        return _assemble_str(at, group, total, file)
    np_dtype = _dtype(last.tensor_type, last.tag, file)
    dims = [] if list(last.dims) == [0] else list(last.dims)
    check_dims(dims, np_dtype.itemsize, total, f"parameter {last.tag!r}", file,
               what=last.tensor_type)
    out = np.empty(total // np_dtype.itemsize, np_dtype)
    _fill(at, group, memoryview(out.reshape(-1).view(np.uint8)), file)
    return out.reshape(dims)


def _fill(at: At, group: list[Record], view, file) -> None:
    """Read the records' bytes one after another into ``view``."""
    pos = 0
    for rec in group:
        got = at.readinto(view[pos:pos + rec.nbytes], rec.offset) if rec.nbytes else 0
        if got != rec.nbytes:
            raise CheckpointError(f"parameter {rec.tag!r} is truncated", file=file)
        pos += rec.nbytes


def _assemble_str(at: At, group: list[Record], total: int, file) -> str:
    """A str entry: its records' bytes as UTF-32-LE, trailing NULs dropped (as numpy's ``<U``)."""
    tag = group[-1].tag
    if total % 4:
        raise CheckpointError(f"str entry {tag!r} has {total} bytes, not a multiple of 4 "
                              f"(UTF-32)", file=file)
    raw = bytearray(total)
    _fill(at, group, memoryview(raw), file)
    try:        # surrogatepass: numpy (and so MindSpore and save_checkpoint) writes lone surrogates
        return raw.decode("utf-32-le", "surrogatepass").rstrip("\0")
    except UnicodeDecodeError as err:
        raise CheckpointError(f"str entry {tag!r} is not valid UTF-32: code point "
                              f"{raw[err.start:err.start + 4][::-1].hex()} at byte {err.start} "
                              f"({err.reason}); the file is corrupt", file=file) from None


def read_records(f, end: int | None = None, *, select: Callable[[str], bool] | None = None,
                 file=None, types: dict | None = None) -> OrderedDict[str, np.ndarray | str]:
    """Decode the records in ``f[0:end]``; consecutive records with one tag are joined.

    ``select(name)`` picks which parameters to read; the others' bytes are never read.
    ``types``, if given, receives each loaded name's tensor_type string.
    """
    if end is None:
        end = f.seek(0, io.SEEK_END)
    records = index(f, end, file=file)
    at = At(f)
    out = OrderedDict()
    i = 0
    while i < len(records):
        j = i + 1
        while j < len(records) and records[j].tag == records[i].tag:
            j += 1
        tag = records[i].tag
        if select is None or select(tag):
            out[tag] = _assemble(at, records[i:j], file)
            if types is not None:
                types[tag] = records[j - 1].tensor_type
        i = j
    return out
