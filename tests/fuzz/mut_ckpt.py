"""Structure-aware .ckpt mutation: records, CRC trailers and the encrypted block framing.

A .ckpt is a ``Checkpoint`` protobuf: records ``Value{tag, tensor{dims, tensor_type,
tensor_content}}``. ``records(data)`` parses one into ``Rec`` s; ``encode`` writes them back with
control over field order, packed dims and unknown fields (so both of msjax's record parsers run);
``mutate_records`` edits them. ``frames`` / ``unframe`` do the same for encrypted blocks.
"""
from __future__ import annotations

import dataclasses
import struct
import zlib

from msjax._proto import checkpoint_pb2

from . import mut_bytes, mut_proto
from .mut_bytes import varint

CRC_MAGIC = b"crc_num"
TYPES = ["Float32", "Float16", "BFloat16", "Float64", "Int8", "Int16", "Int32", "Int64", "UInt8",
         "UInt16", "UInt32", "UInt64", "Bool", "Int4", "Complex64", "Complex128", "str",
         "Float8E4M3FN", "Float8E5M2", "HiFloat8",
         "float32", "Float", "", "Float32\x00", "Tensor", "Int1", "qint4x2"]


@dataclasses.dataclass
class Rec:
    tag: bytes
    dims: list
    ttype: bytes
    content: bytes
    packed: bool = False
    reverse: bool = False          # fields in reverse number order (non-canonical)
    extra: bytes = b""             # unknown fields appended inside the tensor


def split_crc(data: bytes):
    """(protobuf part, crc trailer or b'')."""
    n = len(CRC_MAGIC) + 10
    if len(data) >= n and data[-n:].startswith(CRC_MAGIC):
        return data[:-n], data[-n:]
    return data, b""


def records(data: bytes) -> list:
    body, _ = split_crc(data)
    ck = checkpoint_pb2.Checkpoint.FromString(body)
    return [Rec(v.tag.encode(), list(v.tensor.dims), v.tensor.tensor_type.encode(),
                v.tensor.tensor_content) for v in ck.value]


def _field(number, payload):
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def _encode_rec(r: Rec) -> bytes:
    if r.packed:
        dims = _field(1, b"".join(varint(d) for d in r.dims))
    else:
        dims = b"".join(varint(1 << 3) + varint(d) for d in r.dims)
    parts = [dims, _field(2, r.ttype), _field(3, r.content)]
    if r.reverse:
        parts.reverse()
    tensor = b"".join(parts) + r.extra
    value = [_field(1, r.tag), _field(2, tensor)]
    if r.reverse:
        value.reverse()
    return _field(1, b"".join(value))


def crc_trailer(body: bytes) -> bytes:
    return CRC_MAGIC + zlib.crc32(body).to_bytes(10, "big")


def _str_content(rng):
    """UTF-32 payloads: odd lengths, invalid code points, NULs."""
    return rng.choice([b"\x00" * 4, b"a\x00\x00", b"\xff\xff\xff\xff", b"\x00\xd8\x00\x00",
                       "héllo".encode("utf-32-le"), b"", b"\x00\x00\x11\x00" * 3,
                       "x".encode("utf-32-le") * 1000])


def mutate_records(rng, recs: list) -> str:
    """Edit ``recs`` in place; return a note."""
    if not recs:
        recs.append(Rec(b"w", [1], b"Float32", bytes(4)))
        return "added a record"
    i = rng.randrange(len(recs))
    r = recs[i]
    choice = rng.randrange(16)
    if choice == 0:
        r.ttype = rng.choice(TYPES).encode()
        return f"record {i}: tensor_type {r.ttype!r}"
    if choice == 1:
        r.dims = rng.choice([[], [0], [-1], [2 ** 31] * 3, [2 ** 62, 4], [2 ** 63 - 1], [1] * 65,
                             r.dims + [1] * rng.choice([60, 64, 65, 100]), [0, 2 ** 40],
                             r.dims[::-1], r.dims + [0], [len(r.content)], [3, -3]])
        return f"record {i}: dims {r.dims[:6]}{'...' if len(r.dims) > 6 else ''}"
    if choice == 2:
        n = len(r.content)
        r.content = r.content[:rng.randrange(n)] if n and rng.random() < 0.5 else \
            r.content + bytes(rng.choice([1, 2, 3, 4, 8]))
        return f"record {i}: content {n} -> {len(r.content)} bytes"
    if choice == 3:                                   # MindSpore's slices: one tag, many records
        k = rng.randrange(1, max(2, len(r.content)))
        a, b = dataclasses.replace(r, content=r.content[:k]), dataclasses.replace(r, content=r.content[k:])
        if rng.random() < 0.5:
            b.ttype = rng.choice(TYPES).encode()
        if rng.random() < 0.3:
            a.dims = [k]
        recs[i:i + 1] = [a, b]
        return f"record {i}: sliced at {k}"
    if choice == 4:
        recs.insert(rng.randrange(len(recs) + 1), dataclasses.replace(r))
        return f"record {i}: duplicated"
    if choice == 5:
        del recs[i]
        return f"record {i}: deleted"
    if choice == 6:
        r.tag = rng.choice([b"", b"\xff\xfe", b"a" * 10000, recs[-1].tag, b"x\x00y", b"\xed\xa0\x80",
                            "é".encode()])
        return f"record {i}: tag {r.tag[:12]!r}"
    if choice == 7:
        r.ttype, r.dims, r.content = b"str", rng.choice([[0], [], [1]]), _str_content(rng)
        return f"record {i}: str entry {r.content[:8]!r}"
    if choice == 8:
        r.packed = True
        return f"record {i}: packed dims"
    if choice == 9:
        r.reverse = True
        return f"record {i}: fields reversed"
    if choice == 10:
        r.extra = rng.choice([varint(4 << 3) + varint(7), _field(9, b"junk"), varint(3 << 3 | 2)
                              + varint(2 ** 40), varint(5 << 3 | 3), varint(6 << 3 | 1) + bytes(8),
                              _field(3, b"\x01\x02")])
        return f"record {i}: unknown field {r.extra[:6]!r}"
    if choice == 11:                                  # a MapTensor record
        recs[i] = dataclasses.replace(r)
        recs[i].extra = b"MAP"
        return f"record {i}: maptensor"
    if choice == 12:
        rng.shuffle(recs)
        return "records shuffled"
    if choice == 13:
        r.dims, r.ttype = [len(r.content) * rng.choice([1, 2, 8])], rng.choice([b"Int4", b"UInt8", b"Bool"])
        return f"record {i}: reinterpreted as {r.ttype!r}"
    if choice == 14:
        if 0 < len(r.dims) <= 4 and all(0 < d < 2 ** 16 for d in r.dims) and len(r.content) < 2 ** 16:
            r.dims = [d * 2 for d in r.dims]
            r.content = r.content * (2 ** len(r.dims))
        else:
            r.dims, r.content = [2], r.content * 2
        return f"record {i}: grown consistently"
    recs.extend(dataclasses.replace(r, tag=r.tag + str(k).encode()) for k in range(rng.choice([2, 50])))
    return f"record {i}: many copies"


def encode(recs) -> bytes:
    """Wire bytes of ``recs`` (a record whose ``extra`` is b"MAP" becomes a MapTensor)."""
    out = bytearray()
    for r in recs:
        if r.extra == b"MAP":
            inner = _field(1, _field(2, r.ttype) + _field(3, r.content))
            out += _field(1, _field(1, r.tag) + _field(3, inner))
        else:
            out += _encode_rec(r)
    return bytes(out)


def mutate_plain(rng, seed: bytes, crc: bool):
    """A structurally mutated plain .ckpt (``crc``: the CRC reader's file)."""
    recs = records(seed)
    notes = [mutate_records(rng, recs) for _ in range(rng.choice([1, 1, 2, 3]))]
    if rng.random() < 0.15:
        ck = checkpoint_pb2.Checkpoint.FromString(split_crc(seed)[0])
        m, note = mut_proto.mutate(rng, ck, TYPES)
        body = m.serialize()
        notes = [note]
    else:
        body = encode(recs)
    r = rng.random()
    if crc:
        trailer = crc_trailer(body) if r < 0.8 else b"" if r < 0.9 else \
            CRC_MAGIC + rng.getrandbits(rng.choice([32, 32, 33, 80])).to_bytes(10, "big")
    else:
        trailer = crc_trailer(body) if r < 0.1 else b""
    if crc and trailer and rng.random() < 0.1:
        trailer = CRC_MAGIC + (2 ** 80 - 1).to_bytes(10, "big")
    return body + trailer, "ckpt: " + "; ".join(notes) + (" (+trailer)" if trailer else "")


# --------------------------------------------------------------------------- encrypted framing

GCM_MAGIC = {"AES-GCM": 0x7F3A5ED8, "AES-CBC": 0x7F3A5ED9, "SM4-CBC": 0x7F3A5EDA}


@dataclasses.dataclass
class Block:
    magic: int
    tag: bytes | None
    block_len: int
    iv_len: int
    iv: bytes
    cipher_len: int
    cipher: bytes


def unframe(data: bytes, gcm: bool) -> list:
    """Parse well-formed encrypted blocks (the mutator's own, unmutated output)."""
    blocks, pos = [], 0
    while pos < len(data):
        magic, = struct.unpack_from("<I", data, pos)
        pos += 4
        tag = data[pos:pos + 16] if gcm else None
        pos += 16 if gcm else 0
        block_len, iv_len = struct.unpack_from("<ii", data, pos)
        pos += 8
        iv = data[pos:pos + iv_len]
        pos += iv_len
        cipher_len, = struct.unpack_from("<i", data, pos)
        pos += 4
        blocks.append(Block(magic, tag, block_len, iv_len, iv, cipher_len, data[pos:pos + cipher_len]))
        pos += cipher_len
    return blocks


def frame(blocks) -> bytes:
    out = bytearray()
    for b in blocks:
        out += struct.pack("<I", b.magic % 2 ** 32)
        if b.tag is not None:
            out += b.tag
        out += struct.pack("<II", b.block_len % 2 ** 32, b.iv_len % 2 ** 32) + b.iv
        out += struct.pack("<I", b.cipher_len % 2 ** 32)
        out += b.cipher
    return bytes(out)


def _i32(rng, around):
    return rng.choice([0, -1, -2 ** 31, 2 ** 31 - 1, around + 1, around - 1, around + 16,
                       around - 16, 64 * 1024 * 1024 + 32, 15, 16, 17])


def mutate_frames(rng, blocks, mode) -> str:
    """Edit one block's header fields or payload."""
    i = rng.randrange(len(blocks))
    b = blocks[i]
    choice = rng.randrange(10)
    if choice == 0:
        b.magic = rng.choice([v for k, v in GCM_MAGIC.items() if k != mode] + [0, b.magic ^ 1])
        return f"block {i}: magic {b.magic:#x}"
    if choice == 1:
        b.block_len = _i32(rng, b.block_len)
        return f"block {i}: block_len {b.block_len}"
    if choice == 2:
        b.iv_len = _i32(rng, b.iv_len)
        return f"block {i}: iv_len {b.iv_len}"
    if choice == 3:
        b.cipher_len = _i32(rng, b.cipher_len)
        if rng.random() < 0.5:
            b.block_len = 24 + b.cipher_len
        return f"block {i}: cipher_len {b.cipher_len}"
    if choice == 4:
        b.cipher = b.cipher[:rng.randrange(len(b.cipher) + 1)]
        return f"block {i}: ciphertext truncated to {len(b.cipher)}"
    if choice == 5 and b.tag is not None:
        b.tag = bytes(16) if rng.random() < 0.5 else b.tag[::-1]
        return f"block {i}: tag damaged"
    if choice == 6:
        b.iv = bytes(len(b.iv))
        return f"block {i}: iv zeroed"
    if choice == 7:
        blocks.insert(i, dataclasses.replace(b))
        return f"block {i}: duplicated"
    if choice == 8:
        del blocks[i]
        return f"block {i}: deleted"
    data = bytearray(b.cipher)
    data, note = mut_bytes.bit_flip(rng, data)
    b.cipher = bytes(data)
    return f"block {i}: ciphertext {note}"


def cbc_block(key: bytes, mode: str, plain: bytes, iv: bytes, pad: bytes) -> Block:
    """One CBC block whose padding is ``pad`` (possibly invalid PKCS#7)."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    algo = algorithms.SM4(key) if mode == "SM4-CBC" else algorithms.AES(key)
    data = plain + pad
    data += bytes(-len(data) % 16)
    enc = Cipher(algo, modes.CBC(iv)).encryptor()
    cipher = enc.update(data) + enc.finalize()
    return Block(GCM_MAGIC[mode], None, 24 + len(cipher), 16, iv, len(cipher), cipher)
