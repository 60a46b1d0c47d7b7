"""Structure-aware safetensors mutation: the JSON header, its length prefix and the data part.

A file is ``u64 LE n``, ``n`` bytes of JSON (space padded), then the tensor bytes.
"""
from __future__ import annotations

import json
import struct

DTYPES = ["F32", "F16", "BF16", "F64", "I8", "I16", "I32", "I64", "U8", "U16", "U32", "U64",
          "BOOL", "F8_E5M2", "F8_E4M3", "C64", "f32", "", "F128", "I4", "STR"]
WEIRD = [None, True, False, 0, -1, 1.5, 2 ** 64, -2 ** 63, 10 ** 30, "", "0", [], {}, [[0]],
         [0, 1, 2], {"a": 1}, "F32", float("inf"), float("nan"), [None], [True], [1.0]]


def split(data: bytes):
    """(header dict, data bytes) of a well-formed file."""
    n, = struct.unpack_from("<Q", data)
    return json.loads(data[8:8 + n]), data[8 + n:]


def _entries(header):
    return [k for k in header if k != "__metadata__"]


def _mutate_entry(rng, header):
    names = _entries(header)
    if not names:
        header["w"] = {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}
        return "added an entry"
    name = rng.choice(names)
    info = header[name]
    if not isinstance(info, dict):
        header[name] = {"dtype": "F32", "shape": [], "data_offsets": [0, 4]}
        return f"{name}: entry reset"
    field = rng.choice(["dtype", "shape", "data_offsets", "dtype", "shape", "data_offsets", None])
    if field is None:
        r = rng.random()
        if r < 0.3:
            del header[name]
            return f"{name}: deleted"
        if r < 0.6:
            header[name] = rng.choice(WEIRD)
            return f"{name}: entry is {header[name]!r}"
        info[rng.choice(["extra", "dtype ", "Shape"])] = rng.choice(WEIRD)
        return f"{name}: extra key"
    r = rng.random()
    if r < 0.15:
        info.pop(field, None)
        return f"{name}.{field}: removed"
    if r < 0.4:
        info[field] = rng.choice(WEIRD)
        return f"{name}.{field} = {info[field]!r}"
    if field == "dtype":
        info["dtype"] = rng.choice(DTYPES + [["F32"], {"F32": 1}])
        return f"{name}.dtype = {info['dtype']!r}"
    old = info.get(field) if isinstance(info.get(field), list) else [0]
    if field == "shape":
        new = rng.choice([[], [0], [-1], [2 ** 31] * 3, [2 ** 62, 4], [10 ** 20], [1] * 65,
                          old + [1] * rng.choice([62, 64, 65]), old[::-1], old + [0], [0, 2 ** 40],
                          [[2]], ["2"], [2.0], [True], [1e300], [-(2 ** 70)]])
    else:
        a, b = (old + [0, 0])[:2] if all(isinstance(v, int) for v in old[:2]) else (0, 0)
        new = rng.choice([[b, a], [a], [a, b, b], [], [a - 1, b - 1], [a + 1, b + 1], [-4, 0],
                          [a, 2 ** 64], [2 ** 63, 2 ** 63 + 4], [a, b + 2 ** 40], [a * 1.0, b],
                          [str(a), b], [None, b], [a, a], [b, a + b]])
    info[field] = new
    return f"{name}.{field} = {str(new)[:40]}"


def _mutate_meta(rng, header):
    meta = header.get("__metadata__")
    r = rng.random()
    if r < 0.3:
        header["__metadata__"] = rng.choice(WEIRD)
        return f"__metadata__ = {header['__metadata__']!r}"
    if r < 0.5:
        header.pop("__metadata__", None)
        return "__metadata__ removed"
    if not isinstance(meta, dict):
        meta = header["__metadata__"] = {}
    meta[rng.choice(["format", "crc_num", "fc.bias", rng.choice(_entries(header) or ["w"])])] = \
        rng.choice(WEIRD + ["ms", "Int4", "pt", "123"])
    return "__metadata__ entry changed"


def _text(rng, header):
    """Header JSON, sometimes written with tricks json.dumps never makes."""
    r = rng.random()
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False, allow_nan=True).encode()
    if r < 0.05:
        depth = rng.choice([100, 1000, 100_000])
        return b"[" * depth + b"]" * depth, f"nested {depth} deep"
    if r < 0.1:
        return text[:-1] + b',"deep":' + b"[" * 5000 + b"]" * 5000 + b"}", "deep entry"
    if r < 0.15:
        return text.replace(b"[0,", b"[" + b"9" * 5000 + b",", 1), "5000-digit offset"
    if r < 0.2:
        return text[:-1] + b"," + text[1:], "every key twice"
    if r < 0.25:
        return text.replace(b'"', b"'", 2), "bad quotes"
    if r < 0.3:
        return b"\xef\xbb\xbf" + text, "BOM"
    if r < 0.35:
        return text + b"\x00" * rng.choice([1, 7]), "NUL padding"
    if r < 0.4:
        return text.replace(b"F32", b"F\xff2", 1), "invalid UTF-8"
    if r < 0.45:
        return text + b" {}", "trailing data"
    if r < 0.5:
        return text.replace(b"[", b"[1e999,", 1), "1e999 in a list"
    return text, ""


def mutate(rng, seed: bytes):
    """A structurally mutated safetensors file; return (bytes, note)."""
    header, data = split(seed)
    notes = []
    for _ in range(rng.choice([0, 1, 1, 1, 2, 3])):
        notes.append(_mutate_meta(rng, header) if rng.random() < 0.2 else _mutate_entry(rng, header))
    text, trick = _text(rng, header)
    if trick:
        notes.append(trick)
    text += b" " * (-len(text) % 8)
    n = len(text)
    r = rng.random()
    if r < 0.12:
        n = rng.choice([0, 1, 7, n - 1, n + 1, n + 8, n + len(data), n + len(data) + 1, 2 ** 63,
                        2 ** 64 - 1, 100_000_000, 100_000_001])
        notes.append(f"length prefix {n}")
    if 0.12 <= r < 0.22:
        data = data[:rng.randrange(len(data) + 1)] if rng.random() < 0.6 else data + bytes(rng.choice([1, 4, 8]))
        notes.append(f"data part {len(data)} bytes")
    if not notes:
        notes.append("unchanged")
    return struct.pack("<Q", n % 2 ** 64) + text + data, "safetensors: " + "; ".join(notes)
