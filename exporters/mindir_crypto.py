"""Encrypted MINDIR files (``export(enc_key=, enc_mode=)``, ``load(dec_key=, dec_mode=)``).

What MindSpore 2.10 does, and so what msjax does:

* The whole serialized ``ModelProto`` (parameters embedded) is encrypted, nothing else: the file
  has no plaintext header. The framing is the one of encrypted checkpoints
  (``msjax.checkpoint.crypto``): per block of at most 64 MiB of plaintext, magic
  (0x7F3A5ED8 AES-GCM, 0x7F3A5ED9 AES-CBC, 0x7F3A5EDA SM4-CBC), the GCM tag, block_len,
  IV length 16, IV, cipher_len, ciphertext. ``_encrypt`` itself cuts the model into 64 MiB
  blocks, as the checkpoint writer does.
* ``enc_mode`` is "AES-GCM" (the default when only ``enc_key`` is given), "AES-CBC", "SM4-CBC"
  or a function ``enc_mode(model_bytes, enc_key) -> bytes`` whose result is written as is.
  Keys are ``bytes``: 16, 24 or 32 long for AES, 16 for SM4 (any length for a function).
* ``load``'s ``dec_mode`` is one of the three names or a function
  ``dec_mode(file_name, dec_key) -> bytes`` (MindSpore hands it the file's real path, not its
  bytes) that returns the serialized ``ModelProto``.
* ``enc_mode`` without ``enc_key`` (and ``dec_mode`` without ``dec_key``) is ignored.

Errors keep MindSpore's exception types. Argument types (``enc_key``/``dec_key`` not ``bytes``,
a mode that is neither a str nor a function), an unknown ``enc_mode`` and a bad ``enc_key`` length
are ``ValueError`` in MindSpore: here ``ExportError``. What ``mindspore.load`` reports as
``RuntimeError`` (wrong key, wrong mode, unknown ``dec_mode``, bad ``dec_key`` length, an encrypted
file loaded without a key, a plain file loaded with one) raises ``MindIRDecryptError``, an
``ExportError`` that is also a ``RuntimeError``; every one names the file.

>>> write_model("net.mindir", data, b"0123456789abcdef", "AES-CBC")      # doctest: +SKIP
>>> read_model("net.mindir", pb.ModelProto, b"0123456789abcdef", "AES-CBC")   # doctest: +SKIP
"""
from __future__ import annotations

import os


from .protofile import parse_message, read_message, write_bytes
from msjax.checkpoint import crypto
from msjax.common.atomic import atomic_write
from msjax.common.untrusted import reading
from msjax.common.validator import NOT_GIVEN
from msjax.errors import CheckpointError, ExportError, ExportWriteError

__all__ = [
    "MODES",
    "MindIRDecryptError",
    "encryption_of",
    "export_options",
    "load_options",
    "read_model",
    "write_model",
]

#: the named modes, MindSpore's spelling (a function is the fourth, "customized", mode)
MODES = tuple(crypto.MODES)
_WHAT = "a MINDIR file"


class MindIRDecryptError(ExportError, RuntimeError):
    """An encrypted MINDIR cannot be decrypted (wrong key or mode, no key, not encrypted...).

    A ``RuntimeError`` as well, because ``mindspore.load`` raises ``RuntimeError`` for these.
    """


# ================================================================ arguments
def _check_bytes(name, value, file=None):
    if not isinstance(value, bytes):
        raise ExportError(f"The parameter '{name}' must be isinstance of <class 'bytes'>, but got "
                          f"{value!r}.", file=file)
    return value


def _key_lengths_ok(key, mode):
    return len(key) in crypto.MODES[mode].key_lengths


def _lengths(mode):
    *most, last = map(str, crypto.MODES[mode].key_lengths)
    return f"{', '.join(most)} or {last}" if most else last


def export_options(file_format, enc_key=NOT_GIVEN, enc_mode=NOT_GIVEN):
    """``export``'s ``enc_key``/``enc_mode`` checked; ``(key, mode)``, or None without a key.

    MindSpore's ``_check_key_mode_type``: a key given (even None) must be ``bytes``; a function
    ``enc_mode`` is accepted for every format, a named one only for MINDIR; the name defaults to
    "AES-GCM". msjax also checks the key length here, before anything is traced or written
    (MindSpore fails the same way, ``ValueError``, only when it encrypts).

    >>> export_options("MINDIR", enc_key=b"k" * 16)
    (b'kkkkkkkkkkkkkkkk', 'AES-GCM')
    """
    key, mode = enc_key, enc_mode
    if key is NOT_GIVEN:
        return None                               # enc_mode alone is ignored, as in MindSpore
    key = _check_bytes("enc_key", key)
    if callable(mode):
        return key, mode
    if mode is NOT_GIVEN:
        mode = "AES-GCM"
    elif not isinstance(mode, str):
        raise ExportError(f"The parameter 'enc_mode' must be isinstance of <class 'str'>, but got "
                          f"{mode!r}.")
    if file_format in ("AIR", "GEIR", "ONNX"):
        raise ExportError(f"AIR/ONNX only support customized encryption, but got {mode}.")
    if mode not in MODES:
        raise ExportError(f"MindIR only support AES-GCM/AES-CBC/SM4-CBC encryption, but got {mode}")
    if not _key_lengths_ok(key, mode):
        raise ExportError(f"enc_key for {mode} must be {_lengths(mode)} bytes long, got {len(key)}")
    return key, mode


def load_options(dec_key=NOT_GIVEN, dec_mode=NOT_GIVEN, file=None):
    """``load``'s ``dec_key``/``dec_mode`` checked; ``(key, mode)``, or None without a key.

    As ``mindspore.load``: a key given (even None) must be ``bytes``; ``dec_mode`` is a function or
    a str (default "AES-GCM"); an unknown name or a bad key length is found when decrypting.

    >>> load_options(dec_key=b"k" * 16, dec_mode="SM4-CBC")
    (b'kkkkkkkkkkkkkkkk', 'SM4-CBC')
    """
    key, mode = dec_key, dec_mode
    if key is NOT_GIVEN:
        return None                               # dec_mode alone is ignored, as in MindSpore
    key = _check_bytes("dec_key", key, file)
    if mode is NOT_GIVEN:
        mode = "AES-GCM"
    elif not callable(mode) and not isinstance(mode, str):
        raise ExportError(f"The parameter 'dec_mode' must be isinstance of <class 'str'>, but got "
                          f"{mode!r}.", file=file)
    return key, mode


# ================================================================ writing
def write_model(file_name, data: bytes, enc_key=None, enc_mode="AES-GCM") -> None:
    """Write the serialized ModelProto ``data`` to ``file_name`` atomically, encrypted when
    ``enc_key`` is given (``enc_mode``: a name or ``f(data, key) -> bytes``)."""
    if enc_key is None:
        write_bytes(file_name, data)
        return
    key, mode = export_options("MINDIR", enc_key, enc_mode)
    if callable(mode):
        out = mode(data, key)
        if not isinstance(out, (bytes, bytearray, memoryview)):
            raise TypeError(f"export: the enc_mode function {_name(mode)} must return bytes, got "
                            f"{type(out).__name__}")
        write_bytes(file_name, out)
        return
    # one 64 MiB block in flight at a time, not a second copy of the whole model
    atomic_write(file_name, lambda f: crypto.write_encrypted(f, data, key, mode),
                 error=ExportWriteError, what="export")


# ================================================================ reading
def encryption_of(file_name) -> str | None:
    """The mode whose block magic starts ``file_name`` ("AES-GCM", ...), else None."""
    try:
        with open(file_name, "rb") as f:
            return crypto.is_encrypted(f.read(4))
    except OSError as exc:
        raise ExportError(f"cannot read {_WHAT} ({exc.strerror})", file=file_name) from None


def read_model(file_name, message_type, dec_key=None, dec_mode="AES-GCM"):
    """Parse ``file_name`` as ``message_type`` (a ``ModelProto``), decrypting it with ``dec_key``.

    Without a key, a file that starts with an encryption magic is refused (MindSpore:
    ``RuntimeError``); with one, the decrypted bytes must parse and hold a graph, or the key or
    mode was wrong.
    """
    file_name = os.fspath(file_name)
    if dec_key is None:
        with reading(file_name, ExportError, "MINDIR file"):
            mode = encryption_of(file_name)
            if mode is not None:
                raise MindIRDecryptError(f"the MINDIR file is encrypted ({mode}); load it with "
                                         f"dec_key= and dec_mode={mode!r}", file=file_name)
            return read_message(file_name, message_type, _WHAT)
    key, mode = load_options(dec_key, dec_mode, file_name)
    if callable(mode):                  # the user's function: what it raises is left alone
        data = mode(os.path.realpath(file_name), key)
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"load: the dec_mode function {_name(mode)} must return bytes, got "
                            f"{type(data).__name__}")
        how = f"the dec_mode function {_name(mode)}"
    else:
        with reading(file_name, ExportError, "encrypted MINDIR file"):
            data = _decrypt(file_name, key, mode)
        how = f"dec_key and dec_mode {mode!r}"
    return _parse(data, message_type, file_name, how)


def _decrypt(file_name, key, mode):
    if mode not in MODES:
        raise MindIRDecryptError(f"dec_mode must be one of {', '.join(map(repr, MODES))} or a "
                                 f"function, got {mode!r}", file=file_name)
    if not _key_lengths_ok(key, mode):
        raise MindIRDecryptError(f"dec_key for {mode} must be {_lengths(mode)} bytes long, got "
                                 f"{len(key)}", file=file_name)
    try:
        with open(file_name, "rb") as f:
            return crypto.decrypt_file(f, key, mode)
    except OSError as exc:
        raise ExportError(f"cannot read {_WHAT} ({exc.strerror})", file=file_name) from None
    except CheckpointError as exc:            # crypto's message, about this file's kind
        message = str(exc).replace("encrypted checkpoint", "encrypted MINDIR file")
        raise MindIRDecryptError(message, file=file_name) from None


def _parse(data, message_type, file_name, how):
    """The decrypted ``data`` as ``message_type``; anything else means a wrong key or mode."""
    what = (f"a MINDIR model after decryption with {how}: wrong dec_key or dec_mode (they must be "
            f"those given to export), or the file was tampered with")
    with reading(file_name, ExportError, "decrypted MINDIR file"):
        message = parse_message(data, message_type, file_name, what, MindIRDecryptError)
    if not message.HasField("graph") or not message.graph.node:
        raise MindIRDecryptError(f"not {what} (no graph)", file=file_name)
    return message


def _name(fn):
    return getattr(fn, "__qualname__", None) or repr(fn)
