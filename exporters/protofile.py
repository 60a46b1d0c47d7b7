"""Reading and writing the protobuf files every format is made of (MINDIR, AIR, ONNX, graph.meta).

Writes are atomic (temporary file beside the target, fsync, rename), like checkpoint saves, so a
failed export never leaves half a file under the target name. Reads turn every failure into an
``ExportError`` that names the file and the format.
"""
from __future__ import annotations

import os

from google.protobuf.message import DecodeError

from msjax.common.atomic import atomic_write
from msjax.errors import ExportError, ExportWriteError


def write_bytes(file_name, data: bytes) -> None:
    """Write ``data`` to ``file_name`` atomically; a failed write raises ``ExportWriteError``."""
    atomic_write(file_name, lambda f: f.write(data), error=ExportWriteError, what="export")


def read_message(file_name, message_type, what: str):
    """Parse ``file_name`` as ``message_type``; ``what`` names the format in errors ("a MINDIR file")."""
    file_name = os.fspath(file_name)
    try:
        with open(file_name, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ExportError(f"{file_name}: cannot read {what} ({exc.strerror})") from None
    message = message_type()
    try:
        message.ParseFromString(data)
    except DecodeError as exc:
        raise ExportError(f"{file_name}: not {what} ({message_type.__name__} does not parse: {exc})") from None
    return message
