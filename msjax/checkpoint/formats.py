"""The one registry of checkpoint formats: a format is a name, its file suffixes and a module with
the same small interface (a new format is one module and one line in ``FORMATS``).

    sniff(path) -> bool                 by content: does ``path`` hold this format?
    read(path, *, select, dec_key, dec_mode, crc_check) -> (name -> array or str, name -> dtype str)
    write(path, named, types, *, enc_key, enc_mode, crc_check, fsync, remove_redundancy)

A module is imported when its format is first used (orbax and torch cost time to import). torch is
read-only: ``torch_format`` gives ``sniff`` and ``read_torch_state_dict``.

>>> get("ckpt").read("lenet.ckpt")                                     # doctest: +SKIP
>>> detect("model.pth").name                                           # doctest: +SKIP
'torch'
"""
from __future__ import annotations

import dataclasses
import importlib
import os
from collections import OrderedDict

from msjax.errors import CheckpointError

__all__ = ["Format", "FORMATS", "get", "by_suffix", "detect"]


@dataclasses.dataclass(frozen=True)
class Format:
    """One checkpoint format. ``module`` is imported on first use; ``reader``/``writer`` name its
    functions (``writer=None``: msjax reads the format but does not write it)."""
    name: str
    suffixes: tuple
    module: str
    reader: str = "read"
    writer: str | None = "write"
    #: the reader returns only name -> array (no dtype strings, no selection, no options)
    plain_reader: bool = False

    def _module(self):
        return importlib.import_module(self.module)

    def sniff(self, path) -> bool:
        return bool(self._module().sniff(path))

    def read(self, path, *, select=None, dec_key=None, dec_mode="AES-GCM", crc_check=False):
        """(name -> array or str, name -> stored dtype string) of the file at ``path``."""
        reader = getattr(self._module(), self.reader)
        if not self.plain_reader:
            return reader(path, select=select, dec_key=dec_key, dec_mode=dec_mode, crc_check=crc_check)
        if dec_key is not None or crc_check:
            raise CheckpointError(f"a {self.name} file has no encryption or crc_num: load it without "
                                  f"dec_key and crc_check", file=path)
        named = reader(path)
        return OrderedDict((k, v) for k, v in named.items() if select is None or select(k)), {}

    def write(self, path, named, types, **options):
        """Write ``named``/``types`` (an ``items.snapshot``) to ``path`` in this format."""
        if self.writer is None:
            raise CheckpointError(f"msjax reads the {self.name} format but does not write it; save "
                                  f"as one of {', '.join(writable())}", file=path)
        getattr(self._module(), self.writer)(path, named, types, **options)


FORMATS = OrderedDict((f.name, f) for f in (
    Format("ckpt", (".ckpt",), "msjax.checkpoint.ckpt_format"),
    Format("safetensors", (".safetensors",), "msjax.checkpoint.safetensors_format"),
    Format("orbax", (), "msjax.checkpoint.orbax_format"),
    Format("torch", (".pth", ".pt", ".bin"), "msjax.checkpoint.torch_format",
           reader="read_torch_state_dict", writer=None, plain_reader=True),
))


def writable() -> list:
    return [f.name for f in FORMATS.values() if f.writer is not None]


def get(name) -> Format:
    """The format called ``name``; a CheckpointError lists the known ones."""
    found = FORMATS.get(name) if isinstance(name, str) else None
    if found is None:
        raise CheckpointError(f"unknown checkpoint format {name!r}; known: {', '.join(FORMATS)}")
    return found


def by_suffix(path, default="ckpt") -> Format:
    """The format whose suffix ``path`` ends with, else ``default``'s."""
    name = os.fspath(path)
    for fmt in FORMATS.values():
        if isinstance(name, str) and name.endswith(fmt.suffixes):
            return fmt
    return get(default)


def detect(path) -> Format:
    """The format of ``path`` by its content (``sniff``, the suffix's format asked first); a
    CheckpointError naming the file when none recognises it."""
    first = by_suffix(path)
    for fmt in [first, *(f for f in FORMATS.values() if f is not first)]:
        if fmt.sniff(path):
            return fmt
    raise CheckpointError(f"not a checkpoint msjax can read (none of {', '.join(FORMATS)})", file=path)
