"""Lazy imports: the one door from msjax to the exporters (the top-level ``exporters/`` folder, installed as
``msjax_exporters``).

The exporters are a client of msjax: they import msjax, never the reverse at import time. msjax's
public faces (``msjax.export``, ``msjax.load``, ``nn.GraphCell``, ModelCheckpoint's graph.meta)
reach them through ``exporters()`` when called, so ``import msjax`` loads none of them.

>>> exporters("to_onnx").__name__                                      # doctest: +SKIP
'msjax_exporters.to_onnx'
"""
from __future__ import annotations

import importlib

PACKAGE = "msjax_exporters"


def exporters(name=None):
    """The exporters package, or its submodule ``name``, imported on first use."""
    return importlib.import_module(f"{PACKAGE}.{name}" if name else PACKAGE)
