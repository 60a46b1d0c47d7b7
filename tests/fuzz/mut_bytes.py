"""Byte-level mutators: format-blind edits of a file's bytes.

Each mutator takes ``(rng, data: bytearray)`` and returns the new bytes and a short note.
"""
from __future__ import annotations

import struct

INTERESTING = [0, 1, -1, 2, 7, 8, 15, 16, 31, 32, 63, 64, 65, 127, 128, 255, 256, 1023, 1024,
               4096, 32767, 32768, 65535, 65536, 2 ** 24, 2 ** 31 - 1, 2 ** 31, -2 ** 31,
               2 ** 32 - 1, 2 ** 32, 2 ** 53, 2 ** 62, 2 ** 63 - 1, -2 ** 63, 2 ** 64 - 1]
BYTES = [0x00, 0x01, 0x7F, 0x80, 0xFF, 0x0A, 0x12, 0x1A, 0x22, 0x08, 0x10]
BIG_VARINTS = [2 ** 7, 2 ** 14, 2 ** 21, 2 ** 28, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 35, 2 ** 53,
               2 ** 62, 2 ** 63 - 1, 2 ** 63, 2 ** 64 - 1]


def varint(n: int) -> bytes:
    """Protobuf varint of ``n`` (negative numbers as 10-byte two's complement)."""
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _pos(rng, data, end=False):
    return rng.randrange(len(data) + (1 if end else 0)) if data or end else 0


def bit_flip(rng, data):
    n = rng.choice([1, 1, 2, 4, 8])
    for _ in range(n):
        if data:
            i = _pos(rng, data)
            data[i] ^= 1 << rng.randrange(8)
    return data, f"flip {n} bits"


def set_byte(rng, data):
    if not data:
        return data, "set byte (empty)"
    i = _pos(rng, data)
    data[i] = rng.choice(BYTES + [rng.randrange(256)])
    return data, f"set byte {i}"


def set_int(rng, data):
    if not data:
        return data, "set int (empty)"
    width = rng.choice([2, 4, 8])
    value = rng.choice(INTERESTING) % (1 << (8 * width))
    raw = value.to_bytes(width, rng.choice(["little", "big"]))
    i = _pos(rng, data)
    data[i:i + width] = raw
    return data, f"set {width}-byte int {value} at {i}"


def insert(rng, data):
    i = _pos(rng, data, end=True)
    n = rng.choice([1, 2, 4, 8, 16, 64, 512])
    chunk = bytes([rng.choice(BYTES)]) * n if rng.random() < 0.5 else rng.randbytes(n)
    data[i:i] = chunk
    return data, f"insert {n} bytes at {i}"


def delete(rng, data):
    if not data:
        return data, "delete (empty)"
    i = _pos(rng, data)
    n = rng.choice([1, 2, 4, 8, 16, 64, 512])
    del data[i:i + n]
    return data, f"delete {n} bytes at {i}"


def duplicate(rng, data):
    if not data:
        return data, "duplicate (empty)"
    i = _pos(rng, data)
    j = min(len(data), i + rng.choice([1, 4, 16, 64, 256, len(data)]))
    k = _pos(rng, data, end=True)
    data[k:k] = data[i:j]
    return data, f"duplicate [{i}:{j}] at {k}"


def overwrite(rng, data):
    if len(data) < 2:
        return data, "overwrite (short)"
    i, k = _pos(rng, data), _pos(rng, data)
    n = rng.choice([1, 4, 16, 64])
    data[k:k + n] = data[i:i + n]
    return data, f"copy [{i}:{i + n}] over {k}"


def truncate(rng, data):
    n = rng.randrange(len(data)) if data and rng.random() < 0.8 else rng.choice([0, 1, 4, 8])
    return data[:n], f"truncate to {n}"


def varint_splice(rng, data):
    """Replace (or insert) a varint-sized run with a big varint: absurd lengths and dims."""
    i = _pos(rng, data, end=True)
    value = rng.choice(BIG_VARINTS + [-1, -2 ** 31])
    raw = varint(value)
    if rng.random() < 0.7 and i < len(data):
        end = i
        while end < len(data) and data[end] & 0x80 and end - i < 9:    # the varint here, if any
            end += 1
        data[i:end + 1] = raw
    else:
        data[i:i] = raw
    return data, f"varint {value} at {i}"


def append_tail(rng, data):
    tail = rng.choice([b"crc_num", b"crc_num" + bytes(10), b"\x00" * 8, rng.randbytes(16),
                       struct.pack("<I", 0x7F3A5ED8)])
    return data + tail, f"append {len(tail)} bytes"


MUTATORS = [bit_flip, bit_flip, set_byte, set_int, insert, delete, duplicate, overwrite,
            truncate, varint_splice, varint_splice, append_tail]


def mutate(rng, data: bytes, rounds: int | None = None):
    """Apply 1-4 random byte mutators to ``data``; return (bytes, note)."""
    buf = bytearray(data)
    notes = []
    for _ in range(rounds or rng.choice([1, 1, 1, 2, 2, 3, 4])):
        buf, note = rng.choice(MUTATORS)(rng, bytearray(buf))
        notes.append(note)
    return bytes(buf), "bytes: " + "; ".join(notes)
