"""Exporters: one capture step (``capture``) and one emitter module per file format.

This folder installs as ``msjax_exporters`` (pyproject's package-dir), a client of msjax: it imports
msjax, and msjax reaches it only lazily, through ``msjax._exporters``. Format choice is a dict
lookup; emitter modules import lazily, so ``import msjax_exporters`` is cheap.
Each emitter module exposes ``write(graph: ir.Graph, file_name: str, **options) -> None``.

>>> get_emitter("ONNX").__name__
'msjax_exporters.to_onnx'
"""
from __future__ import annotations

import importlib

from msjax.common.formats import EXPORT_SUFFIXES
from msjax.errors import ExportError

__all__ = ["FORMATS", "SUFFIXES", "get_emitter", "suffix_for"]

#: file_format -> emitter module (GEIR is the old name of AIR); the names and suffixes are
#: msjax.common.formats' table, which the CLI reads without importing the exporters
FORMATS = {"ONNX": ".to_onnx", "MINDIR": ".to_mindir", "AIR": ".to_air", "GEIR": ".to_air"}
#: file_format -> file suffix added when the file name lacks it
SUFFIXES = dict(EXPORT_SUFFIXES)


def _check(file_format):
    if file_format not in FORMATS:
        raise ExportError(f"file_format {file_format!r} is not supported; use one of {sorted(FORMATS)}")
    return file_format


def get_emitter(file_format):
    """The emitter module for ``file_format`` ("MINDIR", "AIR", "GEIR" or "ONNX")."""
    return importlib.import_module(FORMATS[_check(file_format)], __name__)


def suffix_for(file_format):
    """The suffix MindSpore gives files of ``file_format`` (".mindir", ".air", ".onnx")."""
    return SUFFIXES[_check(file_format)]
