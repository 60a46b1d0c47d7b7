"""Structure-aware .pth mutation: the state-dict description, its pickle, and the zip around it.

``mutate(rng)`` returns (bytes, note, invalid): ``invalid`` lists tensor names torch itself would
refuse (negative strides or offsets, views past their storage); a reader that loads one of them
read memory it had no right to, which the runner counts as a failure.
"""
from __future__ import annotations

import copy
import dataclasses
import io
import struct
import warnings
import zipfile
import zlib

from . import mut_bytes
from .seeds import Global, ODict, Pickle, RawStr, pth_bytes, pth_doc, pth_object

_ITEMSIZE = {"FloatStorage": 4, "DoubleStorage": 8, "HalfStorage": 2, "BFloat16Storage": 2,
             "LongStorage": 8, "IntStorage": 4, "ShortStorage": 2, "CharStorage": 1,
             "ByteStorage": 1, "BoolStorage": 1}
STORAGES = list(_ITEMSIZE) + ["QInt8Storage", "FooStorage", "UntypedStorage", "Storage",
                              "ComplexFloatStorage", "_TypedStorage"]
_HUGE = 10 ** 5000                  # str() refuses ints past 4300 digits
_WEIRD = [None, True, 1.5, "0", b"x", (), [], {}, -1, 2 ** 63, 2 ** 64, -(2 ** 70), ((1,),), _HUGE]
_SIZES = [(), (0,), (-1,), (2 ** 31,) * 3, (2 ** 62, 4), (2 ** 63,), (1,) * 65, (1,) * 64, (3,),
          (2, 2), (6, 1), (1, 1, 1, 1, 1, 1), 5, [2, 2], "3", None, ((2,),), (2.0,), (True,),
          (_HUGE,), (2, -_HUGE)]
_STRIDES = [(), (0,), (-1,), (1, -3), (-3, 1), (0, 0), (2 ** 62,), (2 ** 31, 1), (1,) * 65,
            (1,), (3, 1), (1, 3), (-2 ** 63,), [1], None, 1, (1.0,), (_HUGE,), (1, _HUGE)]
_OFFSETS = [-1, -2, -100, -2 ** 31, 2 ** 31, 2 ** 62, 2 ** 63, 1, 5, 6, 7, 0, 1.5, "0", None, True,
            _HUGE, -_HUGE]


def _short(v, n=60) -> str:
    """``str(v)`` cut to ``n`` characters, safe for ints too long for str()."""
    try:
        return str(v)[:n]
    except ValueError:
        return f"<int of {v.bit_length()} bits>" if isinstance(v, int) else f"<{type(v).__name__}>"


def _int_tuple(v):
    return isinstance(v, tuple) and all(type(x) is int for x in v)


def torch_refuses(t, storages) -> bool:
    """Whether torch's own checks reject tensor ``t`` (negative stride/offset, out of storage)."""
    if not (_int_tuple(t.size) and _int_tuple(t.stride) and type(t.offset) is int):
        return False
    if t.pid is not None or t.func is not None or t.storage not in _ITEMSIZE:
        return False
    if not isinstance(t.key, str) or t.key not in storages:
        return False
    if len(t.size) != len(t.stride) or any(n < 0 for n in t.size):
        return False                              # (numpy refuses these too, loudly)
    if t.offset < 0 or any(s < 0 and n > 1 for n, s in zip(t.size, t.stride)):
        return True
    numel = len(storages[t.key]) // _ITEMSIZE[t.storage]
    if not t.size:
        return t.offset >= numel
    if not all(t.size):
        return False
    return t.offset + 1 + sum((n - 1) * s for n, s in zip(t.size, t.stride)) > numel


def _mutate_tensor(rng, doc):
    t = rng.choice(doc.tensors)
    field = rng.choice(["size", "size", "stride", "stride", "offset", "offset", "key", "storage",
                        "name", "numel", "location", "requires_grad", "pid", "func", "extra",
                        "parameter", "view"])
    if field == "size":
        t.size = rng.choice(_SIZES)
        if _int_tuple(t.size) and rng.random() < 0.5:
            t.stride = tuple(1 for _ in t.size)
    elif field == "stride":
        t.stride = rng.choice(_STRIDES)
    elif field == "offset":
        t.offset = rng.choice(_OFFSETS)
    elif field == "key":
        t.key = rng.choice(["99", 0, None, ("0",), "../data.pkl", "", "0" * 300, _HUGE,
                            rng.choice(list(doc.storages) or ["0"])])
    elif field == "storage":
        t.storage = rng.choice(STORAGES)
    elif field == "name":
        t.name = rng.choice([None, 0, -1, 1.5, ("a", ("b", 1)), ((1, 2), "x"), b"raw", "", "a" * 5000, _HUGE,
                             RawStr(b"\xff\xfe"), rng.choice(doc.tensors).name, True])
    elif field == "numel":
        t.numel = rng.choice(_WEIRD + [0, 10 ** 12])
    elif field == "location":
        t.location = rng.choice(["cuda:0", "meta", 5, None, "cpu:1"])
    elif field == "requires_grad":
        t.requires_grad = rng.choice(_WEIRD)
    elif field == "pid":
        t.pid = rng.choice([("storage",), "storage", (), None, ("module", Global("torch", "FloatStorage")),
                            ("storage", "FloatStorage", "0", "cpu", 9), ("storage", None, "0", "cpu", 1),
                            ("storage", Global("torch", "FloatStorage"), ("0",), "cpu", 1), 7])
        if t.pid is None:
            t.pid = ("storage", Global("torch", "FloatStorage"))
    elif field == "func":
        t.func = rng.choice([Global("torch._utils", "_rebuild_parameter"), Global("collections", "OrderedDict"),
                             Global("os", "system"), Global("builtins", "eval"), Global("torch", "tensor"),
                             Global("torch._utils", "_rebuild_qtensor"), Global("torch._utils", "nope")])
    elif field == "extra":
        t.extra = rng.choice([(None,), (ODict([]),), (1, 2, 3, 4), ("x",) * 20])
    elif field == "parameter":
        t.parameter = not t.parameter
    else:                                           # a transposed/strided view of its storage
        t.size = rng.choice([(2, 3), (3, 2), (9,), (4, 4), (1, 9), (2, 2, 2)])
        t.stride = rng.choice([(1, 2), (3, 1), (1, 1), (0, 1), (2, 1), (1, 0, 0), (1,)])
        t.offset = rng.choice([0, 1, 2, 3, 5])
        return f"{_short(t.name)!r} as view size={t.size} stride={t.stride} offset={t.offset}"
    return f"{_short(t.name)!r}.{field} = {_short(getattr(t, field))}"


def _mutate_doc(rng, doc):
    choice = rng.randrange(12)
    if choice < 6:
        return _mutate_tensor(rng, doc)
    if choice == 6:
        key = rng.choice(list(doc.storages))
        raw = doc.storages[key]
        doc.storages[key] = raw[:rng.randrange(len(raw) + 1)] if rng.random() < 0.6 else raw + b"\x01"
        return f"storage {_short(key)} resized to {len(doc.storages[key])}"
    if choice == 7:
        if rng.random() < 0.5:
            del doc.storages[rng.choice(list(doc.storages))]
            return "storage deleted"
        doc.byteorder = rng.choice([b"big", b"", b"little\n", b"\xff", b"middle"])
        return f"byteorder {doc.byteorder!r}"
    if choice == 8:
        doc.wrap = rng.choice(["state_dict", "model", "net", "model_state_dict", "other"])
        return f"wrapped in {doc.wrap!r}"
    if choice == 9:
        doc.root = rng.choice(["", "a/b", "../evil", "archive/data", "é", "x" * 300, "/abs"])
        return f"root {doc.root!r}"
    if choice == 10:
        doc.compression = rng.choice([zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
        return f"compression {doc.compression}"
    kind = rng.randrange(6)
    state = pth_object(dataclasses.replace(doc, wrap=None, obj=None))
    doc.obj = [state, ODict([]), [], {"state_dict": [1, 2]}, {"model": {"model": state}},
               {(1, 2): state.items[0][1], "x": state}][kind]
    if kind == 0 and rng.random() < 0.5:           # a duplicated dict key
        doc.obj = ODict(state.items + state.items[:1])
    return f"object replaced ({kind})"


_OPCODES = [b"h\xff", b"j\xff\xff\xff\x7f", b"(", b"0", b".", b"t", b"R", b"Q", b"\x85", b"s",
            b"u", b"e", b"b", b"\x8b\xff\xff\xff\x7f", b"X\xff\xff\xff\x7f", b"\x8a\xff",
            b"cos\nsystem\n", b"\x93", b"r\xff\xff\xff\xff", b"q\x00", b"N", b"}", b"]", b"K\x07",
            b"\x95" + struct.pack("<Q", 2 ** 40), b"\x80\x05", b"\x8c\xff", b"B\xff\xff\xff\x7f"]


def _mutate_pickle(rng, data: bytes):
    buf = bytearray(data)
    notes = []
    for _ in range(rng.choice([1, 1, 2])):
        if rng.random() < 0.6:
            i = rng.randrange(len(buf) + 1)
            op = rng.choice(_OPCODES)
            buf[i:i] = op
            notes.append(f"opcode {op[:3]!r} at {i}")
        else:
            buf, note = mut_bytes.mutate(rng, bytes(buf), rounds=1)
            buf = bytearray(buf)
            notes.append(note)
    return bytes(buf), "pickle: " + "; ".join(notes)


def pickle_bomb() -> bytes:
    """4 Mi empty dicts left on the unpickler's stack: ~72 bytes of memory per byte of file."""
    return b"\x80\x02" + b"}" * (4 << 20) + b"}."


def _deep_pickle(rng, doc):
    """A pickle nesting ``depth`` levels (built by opcodes, no recursion): dicts under
    "state_dict", a nested-tuple key, or nested lists."""
    depth = rng.choice([100, 1000, 10_000, 100_000])
    inner = Pickle().dumps(pth_object(doc))[2:-1]
    key = b"X\x0a\x00\x00\x00state_dict"
    kind = rng.randrange(3)
    if kind == 0:
        body = (b"}" + key) * depth + inner + b"s" * depth
    elif kind == 1:
        body = b"}" + b"K\x01" + b"\x85" * depth + inner + b"s"
    else:
        body = b"}X\x01\x00\x00\x00w" + b"]" * depth + b"a" * (depth - 1) + b"s"
    return b"\x80\x02" + body + b".", f"pickle nested {depth} deep ({['dicts', 'tuple key', 'lists'][kind]})"


# --------------------------------------------------------------------------- zip level

def _entries(data):
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return z.infolist()


def _central(data):
    """Offsets of each central-directory header, in order."""
    out, pos = [], data.rfind(b"PK\x05\x06")
    cd_offset, = struct.unpack_from("<I", data, pos + 16)
    at = cd_offset
    while data[at:at + 4] == b"PK\x01\x02":
        out.append(at)
        n, x, c = struct.unpack_from("<HHH", data, at + 28)
        at += 46 + n + x + c
    return out


def _mutate_zip(rng, data: bytes):
    buf = bytearray(data)
    infos = _entries(data)
    heads = _central(data)
    k = rng.randrange(len(infos))
    cd, local = heads[k], infos[k].header_offset
    name = infos[k].filename
    choice = rng.randrange(9)
    if choice == 0:
        method = rng.choice([1, 6, 8, 9, 12, 14, 93, 99, 0xFFFF])
        struct.pack_into("<H", buf, cd + 10, method)
        if rng.random() < 0.5:
            struct.pack_into("<H", buf, local + 8, method)
        return bytes(buf), f"zip: {name} method {method}"
    if choice == 1:
        value = rng.choice([0, 1, 2 ** 31, 2 ** 32 - 1, infos[k].compress_size + 1])
        struct.pack_into("<I", buf, cd + rng.choice([20, 24]), value)
        return bytes(buf), f"zip: {name} size field {value}"
    if choice == 2:
        flag = rng.choice([1, 8, 0x40, 0x2000, 0x800])
        struct.pack_into("<H", buf, cd + 8, flag)
        return bytes(buf), f"zip: {name} flags {flag:#x}"
    if choice == 3:
        struct.pack_into("<I", buf, cd + 16, infos[k].CRC ^ 1)
        return bytes(buf), f"zip: {name} bad CRC"
    if choice == 4:
        value = rng.choice([0, 2 ** 32 - 1, local + 1, len(data)])
        struct.pack_into("<I", buf, cd + 42, value)
        return bytes(buf), f"zip: {name} local header offset {value}"
    if choice == 5:
        n, = struct.unpack_from("<H", buf, cd + 28)
        if n:
            buf[cd + 46 + rng.randrange(n)] = rng.choice([0x2F, 0x00, 0xFF, 0x5C])
        return bytes(buf), f"zip: {name} central name byte"
    if choice == 6:
        eocd = data.rfind(b"PK\x05\x06")
        struct.pack_into("<H", buf, eocd + rng.choice([8, 10]), rng.choice([0, 1, 0xFFFF]))
        return bytes(buf), "zip: EOCD entry count"
    if choice == 7:
        eocd = data.rfind(b"PK\x05\x06")
        struct.pack_into("<I", buf, eocd + 16, rng.choice([0, 2 ** 32 - 1, len(data)]))
        return bytes(buf), "zip: EOCD central offset"
    body = buf[:heads[0]]
    return bytes(body) + b"\x00" * 22, "zip: central directory removed"


# --------------------------------------------------------------------------- a zip bomb

_BOMB_MIB = 384
_bomb_cache = {}


def _bomb():
    """(raw deflate of 384 MiB of zeros, its CRC): built once from one 1 MiB flushed block."""
    if not _bomb_cache:
        zeros = bytes(1 << 20)
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        first = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
        again = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
        stream = first + again * (_BOMB_MIB - 1) + c.flush()
        crc = 0
        for _ in range(_BOMB_MIB):
            crc = zlib.crc32(zeros, crc)
        _bomb_cache["v"] = (stream, crc)
    return _bomb_cache["v"]


def bomb_zip(doc) -> bytes:
    """The seed's zip with storage 0 replaced by a deflated 384 MiB storage."""
    stream, crc = _bomb()
    base = pth_bytes(doc)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(base)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            if info.filename.endswith("/data/0"):
                continue
            dst.writestr(info, src.read(info.filename))
    name = f"{doc.root}/data/0".encode()
    data = bytearray(out.getvalue())
    # append one raw deflate entry by hand (local header + data), then rebuild the directory
    eocd = data.rfind(b"PK\x05\x06")
    cd_offset, = struct.unpack_from("<I", data, eocd + 16)
    central = bytes(data[cd_offset:eocd])
    count, = struct.unpack_from("<H", data, eocd + 10)
    body = data[:cd_offset]
    local_at = len(body)
    size = _BOMB_MIB << 20
    body += struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 8, 0, 33, crc, len(stream), size,
                        len(name), 0) + name + stream
    central += struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, 8, 0, 33, crc,
                           len(stream), size, len(name), 0, 0, 0, 0, 0, local_at) + name
    cd_at = len(body)
    tail = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, count + 1, count + 1, len(central), cd_at, 0)
    return bytes(body) + central + tail


# --------------------------------------------------------------------------- entry

def mutate(rng):
    """A mutated .pth file: (bytes, note, names torch would refuse)."""
    doc = copy.deepcopy(pth_doc())
    r = rng.random()
    if r < 0.002:
        return bomb_zip(doc), "pth: zip bomb (384 MiB storage)", []
    if r < 0.004:
        return pth_bytes(doc, pickle_bomb()), "pth: pickle bomb (4 Mi empty dicts)", []
    notes = [_mutate_doc(rng, doc) for _ in range(rng.choice([1, 1, 1, 2, 3]))]
    names = [_short(t.name, 10 ** 6) for t in doc.tensors]
    invalid = [n for n, t in zip(names, doc.tensors) if torch_refuses(t, doc.storages)
               and names.count(n) == 1] if doc.obj is None else []
    try:
        pickle_bytes = Pickle().dumps(pth_object(doc))
    except (TypeError, ValueError) as exc:
        pickle_bytes, invalid = Pickle().dumps(pth_object(pth_doc())), []
        notes.append(f"(unpicklable: {exc})")
    if r < 0.25:
        pickle_bytes, note = _mutate_pickle(rng, pickle_bytes) if r >= 0.02 else _deep_pickle(rng, doc)
        notes.append(note)
        invalid = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # duplicate zip names are on purpose
        data = pth_bytes(doc, pickle_bytes)
    if 0.25 <= r < 0.4:
        data, note = _mutate_zip(rng, data)
        notes.append(note)
    return data, "pth: " + "; ".join(notes), invalid


def check_invalid(result, invalid) -> str | None:
    """A message when ``result`` (a loaded state dict) holds a tensor torch would refuse."""
    if not invalid or not isinstance(result, dict):
        return None
    bad = [n for n in invalid if n in result]
    return f"loaded tensor(s) {bad} that torch refuses (negative stride/offset or outside " \
           f"the storage)" if bad else None

