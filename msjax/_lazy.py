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


def attribute(package, table, name):
    """A lazy package's ``__getattr__``: ``name`` from the module ``table`` maps it to (the module
    itself when ``name`` is that module's last part), else the submodule ``package.name`` (which
    an eager ``__init__`` used to leave reachable), else AttributeError. Cached in the package.

    >>> def __getattr__(name): return attribute(__name__, _LAZY, name)    # doctest: +SKIP
    """
    module = table.get(name)
    if module is not None:
        value = importlib.import_module(module)
        if module.rpartition(".")[2] != name:
            value = getattr(value, name)
    elif name.startswith("__"):
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    else:
        try:
            value = importlib.import_module(f"{package}.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"{package}.{name}":
                raise
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
    setattr(importlib.import_module(package), name, value)
    return value
