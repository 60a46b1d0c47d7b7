"""MindSpore's encrypted .ckpt framing (``enc_key``/``enc_mode``), built on ``cryptography``.

The plaintext (the serialized .ckpt bytes) is cut into blocks of at most 64 MiB. Each block is::

    magic        uint32 LE   0x7F3A5ED8 AES-GCM | 0x7F3A5ED9 AES-CBC | 0x7F3A5EDA SM4-CBC
    tag          16 bytes    AES-GCM only: the GCM tag (no AAD)
    block_len    int32 LE    = 4 + iv_len + 4 + cipher_len (the bytes that follow this field)
    iv_len       int32 LE    always 16
    iv           16 bytes    fresh os.urandom per block; GCM uses only the first 12 as its nonce
    cipher_len   int32 LE    GCM: the plaintext length; CBC: PKCS#7-padded length (multiple of 16)
    ciphertext

Keys: AES 16, 24 or 32 bytes; SM4 16 bytes. An empty plaintext gives an empty file, as in MindSpore.

    >>> data = encrypt(b"hello", b"0123456789abcdef", "AES-CBC")
    >>> decrypt(data, b"0123456789abcdef", "AES-CBC")
    b'hello'
"""
from __future__ import annotations

import dataclasses
import io
import os
import struct
from collections.abc import Iterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from msjax.common.untrusted import reading
from msjax.errors import CheckpointError

__all__ = ["MODES", "BLOCK_SIZE", "encrypt", "decrypt", "write_encrypted", "decrypt_file",
           "iter_decrypt", "is_encrypted"]

BLOCK_SIZE = 64 * 1024 * 1024          # MindSpore's ENCRYPT_BLOCK_SIZE * 1024: plaintext per block
_IV_LEN = 16
_TAG_LEN = 16
_MAX_CIPHER_LEN = BLOCK_SIZE + 16       # a full block plus one block of CBC padding
_INT = struct.Struct("<i")


@dataclasses.dataclass(frozen=True)
class _Mode:
    name: str
    magic: int
    algorithm: type
    key_lengths: tuple
    gcm: bool

    @property
    def head_len(self):                 # magic (+ tag) + block_len
        return 4 + (_TAG_LEN if self.gcm else 0) + 4


MODES = {m.name: m for m in (
    _Mode("AES-GCM", 0x7F3A5ED8, algorithms.AES, (16, 24, 32), gcm=True),
    _Mode("AES-CBC", 0x7F3A5ED9, algorithms.AES, (16, 24, 32), gcm=False),
    _Mode("SM4-CBC", 0x7F3A5EDA, algorithms.SM4, (16,), gcm=False),
)}
_BY_MAGIC = {m.magic: m for m in MODES.values()}
_WHAT = "encrypted checkpoint"
_WRONG_KEY = "decryption failed: wrong dec_key or dec_mode, or the file was tampered with"


def _mode(mode, param, file):
    try:
        return MODES[mode]
    except (KeyError, TypeError):
        raise CheckpointError(f"{param} must be one of {', '.join(map(repr, MODES))} "
                              f"(MindSpore's spelling), got {mode!r}", file=file) from None


def _key(key, mode, param, file):
    if not isinstance(key, (bytes, bytearray, memoryview)):
        raise CheckpointError(f"{param} must be bytes, got {type(key).__name__}", file=file)
    key = bytes(key)
    if len(key) not in mode.key_lengths:
        lengths = " or ".join(map(str, mode.key_lengths))
        raise CheckpointError(f"{param} for {mode.name} must be {lengths} bytes long, "
                              f"got {len(key)}", file=file)
    return key


def _cipher_len(mode, plain_len):
    return plain_len if mode.gcm else (plain_len // 16 + 1) * 16


def _framed_len(mode, plain_len):
    return mode.head_len + 4 + _IV_LEN + 4 + _cipher_len(mode, plain_len)


def _encrypt_block_into(mode, key, plain, out):
    """Frame and encrypt one block of ``plain`` into ``out``; return the bytes written.

    ``out`` needs 15 spare bytes past the block (``update_into`` writes whole cipher blocks).
    """
    iv = os.urandom(_IV_LEN)
    n_plain = len(plain)
    n_cipher = _cipher_len(mode, n_plain)
    head = mode.head_len
    body = head + 4 + _IV_LEN + 4
    if mode.gcm:
        enc = Cipher(mode.algorithm(key), modes.GCM(iv[:12])).encryptor()
        n = enc.update_into(plain, out[body:])
        out[body + n:body + n_cipher] = enc.finalize()
        out[4:4 + _TAG_LEN] = enc.tag
    else:
        enc = Cipher(mode.algorithm(key), modes.CBC(iv)).encryptor()
        full = n_plain - n_plain % 16
        pad = n_cipher - n_plain
        last = bytes(plain[full:]) + bytes([pad]) * pad    # the final 16 bytes, PKCS#7
        n = enc.update_into(plain[:full], out[body:]) if full else 0
        n += enc.update_into(last, out[body + n:])
        out[body + n:body + n_cipher] = enc.finalize()
    struct.pack_into("<I", out, 0, mode.magic)
    struct.pack_into("<iii", out, head - 4, 4 + _IV_LEN + 4 + n_cipher, _IV_LEN, 0)
    out[head + 4:head + 4 + _IV_LEN] = iv
    _INT.pack_into(out, head + 4 + _IV_LEN, n_cipher)
    return body + n_cipher


def _plain_blocks(plaintext):
    view = memoryview(plaintext).cast("B")
    for start in range(0, len(view), BLOCK_SIZE):
        yield view[start:start + BLOCK_SIZE]


def encrypt(plaintext, key: bytes, mode: str = "AES-GCM") -> bytes:
    """Encrypt ``plaintext`` in MindSpore's framing (``save_checkpoint(enc_key=, enc_mode=)``).

    >>> len(encrypt(bytes(100), b"0123456789abcdef"))      # 4 + 16 + 4 + 4 + 16 + 4 + 100
    148
    """
    spec = _mode(mode, "enc_mode", None)
    key = _key(key, spec, "enc_key", None)
    blocks = list(_plain_blocks(plaintext))
    out = bytearray(sum(_framed_len(spec, len(b)) for b in blocks) + 16)
    pos = 0
    with memoryview(out) as view:
        for block in blocks:
            pos += _encrypt_block_into(spec, key, block, view[pos:])
        return bytes(view[:pos])


def write_encrypted(f, plaintext, key: bytes, mode: str = "AES-GCM") -> int:
    """Encrypt ``plaintext`` block by block into the binary file ``f``; return the bytes written.

    Holds one encrypted block (at most 64 MiB) at a time instead of the whole ciphertext.

    >>> buf = io.BytesIO(); write_encrypted(buf, b"abc", b"0123456789abcdef", "SM4-CBC")
    48
    """
    spec = _mode(mode, "enc_mode", None)
    key = _key(key, spec, "enc_key", None)
    total = 0
    scratch = None
    for block in _plain_blocks(plaintext):
        need = _framed_len(spec, len(block)) + 16
        if scratch is None or len(scratch) < need:
            scratch = bytearray(need)
        n = _encrypt_block_into(spec, key, block, memoryview(scratch))
        f.write(memoryview(scratch)[:n])
        total += n
    return total


class _Reader:
    """Exact reads from a binary file with offsets and the number of bytes left (None: unknown)."""

    def __init__(self, f, file):
        self.f, self.file = f, file
        self.offset = 0
        self.left = None
        try:
            if f.seekable():
                here = f.tell()
                self.left = f.seek(0, io.SEEK_END) - here
                f.seek(here)
        except (OSError, AttributeError, ValueError):
            self.left = None

    def fail(self, message):
        raise CheckpointError(message, file=self.file)

    def need(self, n, what):
        if self.left is not None and n > self.left:
            self.fail(f"encrypted checkpoint is truncated: {what} needs {n} bytes at offset "
                      f"{self.offset}, only {self.left} left")

    def read_upto(self, n):
        """Up to ``n`` bytes, fewer only at the end of the file (raw streams may return less)."""
        data = self.f.read(n) or b""
        while len(data) < n and (more := self.f.read(n - len(data))):
            data += more
        return data

    def read(self, n, what):
        self.need(n, what)
        data = self.read_upto(n)
        if len(data) != n:
            self.fail(f"encrypted checkpoint is truncated: {what} needs {n} bytes at offset "
                      f"{self.offset}, only {len(data)} left")
        self._advance(n)
        return data

    def readinto(self, view, what):
        n = len(view)
        self.need(n, what)
        got = 0
        while got < n:
            k = self.f.readinto(view[got:])
            if not k:
                self.fail(f"encrypted checkpoint is truncated: {what} needs {n} bytes at offset "
                          f"{self.offset}, only {got} left")
            got += k
        self._advance(n)

    def _advance(self, n):
        self.offset += n
        if self.left is not None:
            self.left -= n


def _block_headers(r, spec):
    """Parse block headers from ``r``; yield (tag, iv, cipher_len), ``r`` at the ciphertext."""
    index = 0
    while True:
        start = r.offset
        first = r.read_upto(4)
        if not first:
            return
        if len(first) < 4:
            r.fail(f"encrypted checkpoint is truncated: block {index} header at offset {start}")
        r._advance(4)
        (magic,) = struct.unpack("<I", first)
        if magic != spec.magic:
            _bad_magic(r, spec, magic, first, index, start)
        tag = r.read(_TAG_LEN, f"block {index} GCM tag") if spec.gcm else None
        (block_len,) = _INT.unpack(r.read(4, f"block {index} length"))
        iv_len, = _INT.unpack(r.read(4, f"block {index} IV length"))
        if iv_len != _IV_LEN:
            r.fail(f"block {index} at offset {start} has IV length {iv_len}, expected 16: "
                   f"not a MindSpore {spec.name} checkpoint, or it is corrupt")
        iv = r.read(_IV_LEN, f"block {index} IV")
        (cipher_len,) = _INT.unpack(r.read(4, f"block {index} ciphertext length"))
        cbc_bad = not spec.gcm and (cipher_len == 0 or cipher_len % 16)
        if not 0 <= cipher_len <= _MAX_CIPHER_LEN or cbc_bad:
            r.fail(f"block {index} at offset {start} declares an impossible ciphertext length "
                   f"{cipher_len} for {spec.name}: the file is corrupt")
        if block_len != 4 + _IV_LEN + 4 + cipher_len:
            r.fail(f"block {index} at offset {start} declares length {block_len}, but its IV and "
                   f"ciphertext take {4 + _IV_LEN + 4 + cipher_len}: the file is corrupt")
        r.need(cipher_len, f"block {index} ciphertext")
        yield tag, iv, cipher_len
        index += 1


def _bad_magic(r, spec, magic, first, index, start):
    other = _BY_MAGIC.get(magic)
    if other is not None:
        r.fail(f"decryption failed: wrong dec_mode: the file is encrypted with {other.name}, "
               f"but dec_mode is {spec.name!r}")
    if index and first + r.read_upto(3) == b"crc_num":
        r.fail(f"an encrypted checkpoint ends with a 'crc_num' trailer at offset {start} "
               "(saved with enc_key and crc_check=True); MindSpore cannot load such a file either")
    if index == 0:
        r.fail(f"not an encrypted checkpoint (first bytes {first.hex()} are no {spec.name} block "
               f"magic {spec.magic:#010x}); load it without dec_key")
    r.fail(f"bad block magic {magic:#010x} at offset {start} (block {index}), expected "
           f"{spec.magic:#010x} for {spec.name}: the file is corrupt or has trailing data")


def _decrypt_block_into(spec, key, tag, iv, cipher, out, r):
    """Decrypt one block of ``cipher`` into ``out`` (len(cipher) + 15 bytes); return its length."""
    algo = spec.algorithm(key)
    dec = Cipher(algo, modes.GCM(iv[:12], tag) if spec.gcm else modes.CBC(iv)).decryptor()
    try:
        n = dec.update_into(cipher, out)
        tail = dec.finalize()
    except InvalidTag:
        r.fail(f"{_WRONG_KEY} (GCM tag mismatch)")
    out[n:n + len(tail)] = tail
    n += len(tail)
    if not spec.gcm:
        pad = out[n - 1]
        if not 1 <= pad <= 16 or bytes(out[n - pad:n]) != bytes([pad]) * pad:
            r.fail(f"{_WRONG_KEY} (bad PKCS#7 padding)")
        n -= pad
    return n


def _setup(key, mode, file):
    spec = _mode(mode, "dec_mode", file)
    return spec, _key(key, spec, "dec_key", file)


def iter_decrypt(f, key: bytes, mode: str = "AES-GCM", *, file=None) -> Iterator[bytearray]:
    """Yield the plaintext of each encrypted block read from the binary file ``f``, in order.

    >>> b"".join(iter_decrypt(io.BytesIO(encrypt(b"x", b"k" * 16)), b"k" * 16))
    b'x'
    """
    spec, key = _setup(key, mode, file)
    r = _Reader(f, file)
    blocks = _block_headers(r, spec)
    while True:
        with reading(file, CheckpointError, _WHAT):
            header = next(blocks, None)
            if header is None:
                return
            tag, iv, cipher_len = header
            cipher = bytearray(cipher_len)
            r.readinto(memoryview(cipher), "ciphertext")
            out = bytearray(cipher_len + 16)
            del out[_decrypt_block_into(spec, key, tag, iv, cipher, out, r):]
        yield out                   # outside the guard: the consumer's errors stay its own


def decrypt_file(f, key: bytes, mode: str = "AES-GCM", *, file=None) -> bytearray:
    """Decrypt a whole encrypted checkpoint from the binary file ``f`` (read from its position on).

    Holds the plaintext plus one ciphertext block; a seekable ``f`` gets one buffer sized from
    the file, so no join copy is made.

    >>> with open(path, "rb") as f:                                         # doctest: +SKIP
    ...     plain = decrypt_file(f, b"0123456789abcdef", "AES-GCM", file=path)
    """
    spec, key = _setup(key, mode, file)
    r = _Reader(f, file)
    if r.left is None:
        return bytearray(b"".join(iter_decrypt(f, key, mode, file=file)))
    with reading(file, CheckpointError, _WHAT):
        out = bytearray(r.left + 16)        # plaintext <= ciphertext <= what the file holds
        cipher = bytearray(min(r.left, _MAX_CIPHER_LEN))
        pos = 0
        with memoryview(out) as view, memoryview(cipher) as cview:
            for tag, iv, cipher_len in _block_headers(r, spec):
                r.readinto(cview[:cipher_len], "ciphertext")
                pos += _decrypt_block_into(spec, key, tag, iv, cview[:cipher_len], view[pos:], r)
        del out[pos:]
    return out


def decrypt(data, key: bytes, mode: str = "AES-GCM", *, file=None) -> bytes:
    """Decrypt MindSpore-encrypted checkpoint bytes (``load_checkpoint(dec_key=, dec_mode=)``).

    >>> decrypt(encrypt(b"abc", b"0123456789abcdef"), b"0123456789abcdef")
    b'abc'
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"decrypt: data must be bytes, got {type(data).__name__}")
    return bytes(decrypt_file(io.BytesIO(data), key, mode, file=file))


def is_encrypted(head: bytes) -> str | None:
    """The mode whose block magic starts ``head`` (the file's first 4+ bytes), else None.

    >>> is_encrypted(encrypt(b"abc", b"0123456789abcdef", "AES-CBC")[:4])
    'AES-CBC'
    """
    if len(head) < 4:
        return None
    found = _BY_MAGIC.get(struct.unpack("<I", bytes(head[:4]))[0])
    return None if found is None else found.name
