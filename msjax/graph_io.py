"""``export`` and ``load``: MindSpore's model export (MINDIR, AIR, ONNX) and MINDIR loading.

Both are thin: ``export`` is capture + one emitter looked up by format; ``load`` hands the file to
the MINDIR reader. Both reach the exporters through ``msjax._lazy`` when called, so
``import msjax`` loads none of them.
"""
from __future__ import annotations

import contextlib
import os
import stat

from msjax.common.atomic import write_error
from msjax.common.validator import NOT_GIVEN
from msjax.common.warn_once import warn_ignored
from msjax.errors import ExportError, ExportWriteError

__all__ = ["export", "load"]


def export(net, *inputs, file_name, file_format, enc_key=NOT_GIVEN, enc_mode=NOT_GIVEN, obf_func=NOT_GIVEN,
           **kwargs):
    """Export ``net`` run on example ``inputs`` to ``file_name`` in ``file_format``.

    ``file_format`` is "MINDIR", "AIR" (old name "GEIR") or "ONNX"; the suffix (".mindir",
    ".air", ".onnx") is added when missing. Parameters are embedded under their dotted names.
    Other keyword arguments go to the emitter (ONNX: ``opset_version``, ``dynamic_batch``, ...).
    As in MindSpore, the written file is read-only for its owner.

    Encryption, as in MindSpore: ``enc_key`` (bytes: 16, 24 or 32 long; 16 for SM4) and
    ``enc_mode``, "AES-GCM" (default), "AES-CBC" or "SM4-CBC" for MINDIR (the whole model is
    encrypted; MindSpore's ``load(dec_key=, dec_mode=)`` reads it), or, for MINDIR and ONNX, a
    function ``enc_mode(model_bytes, enc_key) -> bytes`` whose result is written (msjax's AIR
    emitter takes no encryption). ``enc_mode`` without ``enc_key`` is ignored. Bad arguments raise
    ``ExportError`` (a ``ValueError``, as MindSpore), before anything is traced or written.

    >>> export(LeNet5(), Tensor(np.ones((1, 1, 32, 32), np.float32)), file_name="lenet",
    ...        file_format="ONNX")                                   # doctest: +SKIP
    >>> export(net, x, file_name="lenet", file_format="MINDIR", enc_key=b"0123456789abcdef",
    ...        enc_mode="AES-CBC")                                   # doctest: +SKIP
    """
    from msjax._lazy import exporters

    capture = exporters("capture").capture
    export_options = exporters("mindir_crypto").export_options

    if obf_func is not NOT_GIVEN:
        raise NotImplementedError("Dynamic model structure obfuscation is no longer supported.")
    if not isinstance(file_name, (str, os.PathLike)):
        raise TypeError(f"export: file_name must be a str, got {type(file_name).__name__}")   # MindSpore: TypeError
    emitter = exporters().get_emitter(file_format)
    encryption = export_options(file_format, enc_key, enc_mode)    # checked before anything is traced
    if encryption is not None:
        kwargs["enc_key"], kwargs["enc_mode"] = encryption
    file_name = os.path.realpath(os.fspath(file_name))
    suffix = exporters().suffix_for(file_format)
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


def load(file_name, *, dec_key=NOT_GIVEN, dec_mode=NOT_GIVEN, obf_func=NOT_GIVEN, **kwargs):
    """Read a MINDIR file (msjax's or MindSpore's) into a graph that ``nn.GraphCell`` runs in JAX.

    An encrypted file (``export(enc_key=, enc_mode=)``, msjax's or MindSpore's) needs
    ``dec_key`` (bytes) and ``dec_mode``: "AES-GCM" (default), "AES-CBC", "SM4-CBC", or a
    function ``dec_mode(file_name, dec_key) -> bytes`` returning the plain model (MindSpore hands
    it the file's path). A wrong key or mode, a missing key, or a key for a plain file raise
    ``msjax_exporters.mindir_crypto.MindIRDecryptError``: an ``ExportError`` naming the file, and a
    ``RuntimeError`` as MindSpore's are. Key or mode of a wrong type: ``ExportError`` (a
    ``ValueError``, as MindSpore).

    >>> graph = load("lenet.mindir")                                 # doctest: +SKIP
    >>> graph = load("lenet.mindir", dec_key=b"0123456789abcdef", dec_mode="AES-CBC")  # doctest: +SKIP
    """
    if obf_func is not NOT_GIVEN:
        raise NotImplementedError("Dynamic model structure obfuscation is no longer supported.")
    for name in kwargs:                 # mindspore.load takes **kwargs and reads only its own
        warn_ignored("load", name, "msjax.load reads only dec_key, dec_mode and obf_func")
    if not isinstance(file_name, str):
        raise ExportError(f"load: file_name must be a str, got {type(file_name).__name__}")
    if not file_name.endswith(".mindir"):
        raise ExportError(f"load: {file_name!r} is not a MindIR file name; it must end with '.mindir'")
    if not os.path.exists(file_name):
        raise ExportError(f"load: MindIR file {file_name!r} does not exist")
    from msjax._lazy import exporters

    return exporters("graph_cell").load(file_name, dec_key=dec_key, dec_mode=dec_mode)
