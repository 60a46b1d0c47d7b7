"""Checkpoint files as plain entries (name -> numpy array or str), read and written without jax.

What ``load_checkpoint``/``save_checkpoint`` do minus the Parameters: the same format modules
(``formats``), the same checks on what a file declares, the same bytes written. The CLI's file
commands use it; orbax directories still import jax (orbax needs it), and only then.

The format follows the path: its suffix (.ckpt, .safetensors; .pth/.pt/.bin read as torch) or a
directory (orbax); anything else is refused by name, never guessed.

>>> named, types = read("lenet5.ckpt")                                 # doctest: +SKIP
>>> dtype_name(named["fc1.weight"])                                    # doctest: +SKIP
'Float32'
>>> write("lenet5.safetensors", named, types)                          # doctest: +SKIP
"""
from __future__ import annotations

import os
from collections import OrderedDict

import numpy as np

from msjax.checkpoint import formats
from msjax.common import dtype as mstype
from msjax.common.untrusted import reading
from msjax.errors import CheckpointError

__all__ = ["format_of", "read", "write", "dtype_name", "stored_types"]


def _suffixes(writing):
    return ", ".join(s for f in formats.FORMATS.values() if not writing or f.writer for s in f.suffixes)


def format_of(path, *, writing=False) -> formats.Format:
    """The format ``path`` names: a directory (existing, or given with a trailing slash) is orbax,
    else its suffix's; a CheckpointError naming the path and the known suffixes otherwise."""
    name = os.fspath(path)
    if os.path.isdir(name) or name.endswith(("/", os.sep)):
        return formats.get("orbax")
    for fmt in formats.FORMATS.values():
        if fmt.suffixes and name.endswith(fmt.suffixes) and (fmt.writer or not writing):
            return fmt
    verb = "write" if writing else "read"
    raise CheckpointError(f"unknown checkpoint format: msjax can {verb} {_suffixes(writing)} files "
                          f"or an orbax directory", file=name)


def read(path, *, format=None, dec_key=None, dec_mode="AES-GCM", crc_check=False, select=None):
    """(name -> numpy array or str in the file's order, name -> stored dtype string where numpy's
    dtype does not tell it, e.g. "Int4"), checked as ``load_checkpoint`` checks them."""
    fmt = format_of(path) if format is None else formats.get(format)
    name = os.path.realpath(os.fspath(path))
    if not os.path.exists(name):
        raise CheckpointError("checkpoint file does not exist", file=name)
    if fmt.name != "orbax" and not os.path.isfile(name):
        raise CheckpointError(f"is not a file (a {fmt.name} checkpoint is one file)", file=name)
    with reading(name, CheckpointError, "checkpoint"):
        named, types = fmt.read(name, select=select, dec_key=dec_key, dec_mode=dec_mode, crc_check=crc_check)
        if not named:
            raise CheckpointError("the checkpoint holds no entries (empty file, or the selection "
                                  "picked nothing)", file=name)
        named = OrderedDict((k, v if isinstance(v, str) else np.asarray(v)) for k, v in named.items())
        return named, stored_types(named, types, name)


def stored_type(name, value, tensor_type, file):
    """The msjax type the file declares for ``value`` (None: none declared); it must be stored
    as ``value``'s numpy dtype (Int4: one int8 byte per element). ``load_checkpoint`` checks
    with it too."""
    if not tensor_type:
        return None
    stored = mstype.BY_CKPT.get(tensor_type)
    if stored is None:
        raise CheckpointError(f"parameter {name!r} has unknown tensor_type {tensor_type!r}", file=file)
    if stored.numpy != value.dtype:
        raise CheckpointError(f"parameter {name!r} is marked {tensor_type}, which is stored as "
                              f"{stored.numpy}, but its data is {value.dtype}; the file's "
                              f"metadata contradicts its data", file=file)
    return stored


def stored_types(named, types, file) -> dict:
    """The stored dtype strings that say more than each array's numpy dtype (``Int4`` in int8
    bytes), after checking each against its data as ``load_checkpoint`` does."""
    kept = {}
    for name, tensor_type in types.items():
        value = named.get(name)
        if not tensor_type or value is None or isinstance(value, str):
            continue
        stored = stored_type(name, value, tensor_type, file)
        if stored is not mstype.from_numpy(value.dtype):
            kept[name] = stored.ckpt
    return kept


def write(path, named, types=None, *, format=None, enc_key=None, enc_mode="AES-GCM", crc_check=False,
          fsync=True):
    """Write ``named`` (name -> numpy array or str) to ``path`` in its format, as ``save_checkpoint``
    writes the same entries (atomically); ``types`` as ``read`` returns them."""
    fmt = format_of(path, writing=True) if format is None else formats.get(format)
    name = os.path.abspath(os.fspath(path))
    if fmt.name != "orbax" and os.path.isdir(name):
        raise CheckpointError("is a directory; give a file name", file=name)
    bad = [n for n, v in named.items() if not isinstance(v, str) and not storable(v.dtype)]
    if bad:
        raise CheckpointError(f"{len(bad)} entries have a dtype MindSpore cannot store: "
                              + ", ".join(f"{n!r} ({named[n].dtype})" for n in bad), file=name)
    fmt.write(name, named, dict(types or {}), enc_key=enc_key, enc_mode=enc_mode, crc_check=crc_check,
              fsync=fsync, remove_redundancy=None)


def dtype_name(value) -> str:
    """The MindSpore dtype an entry loads as ("Float32"; "str" for a string entry)."""
    return "str" if isinstance(value, str) else str(mstype.from_numpy(value.dtype))


def storable(dtype) -> bool:
    """Whether a .ckpt can hold ``dtype`` (a MindSpore dtype exists for it)."""
    try:
        mstype.from_numpy(dtype)
    except TypeError:
        return False
    return True
