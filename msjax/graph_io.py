"""``export`` and ``load``: MindSpore's model export (MINDIR, AIR, ONNX) and MINDIR loading.

Both are thin: ``export`` is capture + one emitter looked up by format; ``load`` hands the file to
the MINDIR reader. The exporters package is imported inside the functions (no import cycle).
"""
from __future__ import annotations

import contextlib
import os
import stat

from msjax.common.atomic import write_error
from msjax.errors import ExportError, ExportWriteError

__all__ = ["export", "load"]


def export(net, *inputs, file_name, file_format, **kwargs):
    """Export ``net`` run on example ``inputs`` to ``file_name`` in ``file_format``.

    ``file_format`` is "MINDIR", "AIR" (old name "GEIR") or "ONNX"; the suffix (".mindir",
    ".air", ".onnx") is added when missing. Parameters are embedded under their dotted names.
    Other keyword arguments go to the emitter (ONNX: ``opset_version``, ``dynamic_batch``, ...).
    As in MindSpore, the written file is read-only for its owner.

    >>> export(LeNet5(), Tensor(np.ones((1, 1, 32, 32), np.float32)), file_name="lenet",
    ...        file_format="ONNX")                                   # doctest: +SKIP
    """
    import exporters
    from exporters.capture import capture

    if not isinstance(file_name, (str, os.PathLike)):
        raise ExportError(f"export: file_name must be a str, got {type(file_name).__name__}")
    emitter = exporters.get_emitter(file_format)
    file_name = os.path.realpath(os.fspath(file_name))
    suffix = exporters.suffix_for(file_format)
    if not file_name.endswith(suffix):
        file_name += suffix
    graph = capture(net, *inputs)
    try:
        os.makedirs(os.path.dirname(file_name), exist_ok=True)
    except OSError as err:
        raise write_error(err, file_name, ExportWriteError, "export") from err
    emitter.write(graph, file_name, **kwargs)    # replaces a read-only older file by rename
    with contextlib.suppress(OSError):
        os.chmod(file_name, stat.S_IRUSR)


def load(file_name, **kwargs):
    """Read a MINDIR file (msjax's or MindSpore's) into a graph that ``nn.GraphCell`` runs in JAX.

    >>> graph = load("lenet.mindir")                                 # doctest: +SKIP
    """
    if not isinstance(file_name, str):
        raise ExportError(f"load: file_name must be a str, got {type(file_name).__name__}")
    if not file_name.endswith(".mindir"):
        raise ExportError(f"load: {file_name!r} is not a MindIR file name; it must end with '.mindir'")
    if not os.path.exists(file_name):
        raise ExportError(f"load: MindIR file {file_name!r} does not exist")
    from exporters import from_mindir

    return from_mindir.load(file_name, **kwargs)
