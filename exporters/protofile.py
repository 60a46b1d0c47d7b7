"""Reading and writing the protobuf files every format is made of (MINDIR, AIR, ONNX, graph.meta).

Writes are atomic (temporary file beside the target, fsync, rename), like checkpoint saves, so a
failed export never leaves half a file under the target name. Reads turn every failure into an
``ExportError`` that names the file and the format.
"""
from __future__ import annotations

import functools
import os

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError

from msjax.common.atomic import atomic_write
from msjax.errors import ExportError, ExportWriteError


def write_bytes(file_name, data: bytes) -> None:
    """Write ``data`` to ``file_name`` atomically; a failed write raises ``ExportWriteError``."""
    atomic_write(file_name, lambda f: f.write(data), error=ExportWriteError, what="export")


def read_message(file_name, message_type, what: str):
    """Parse ``file_name`` as ``message_type``; ``what`` names the format in errors ("a MINDIR file").

    Beyond what protobuf checks, every ``string`` field must be valid UTF-8: proto3 parsers reject
    it, but upb parses it in proto2 messages (MINDIR, graph.meta) and hands back ``bytes``.
    """
    file_name = os.fspath(file_name)
    try:
        with open(file_name, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ExportError(f"cannot read {what} ({exc.strerror})", file=file_name) from None
    return parse_message(data, message_type, file_name, what)


def parse_message(data, message_type, file_name, what: str, error=ExportError):
    """``data`` as ``message_type``, or ``error`` naming ``file_name``: not ``what`` when it does
    not parse or a proto2 string field is not UTF-8."""
    message = message_type()
    try:
        message.ParseFromString(data)
    except (DecodeError, RecursionError) as exc:
        raise error(f"not {what} ({message_type.__name__} does not parse: {exc})",
                    file=file_name) from None
    field = None if _checks_utf8(message_type) else _invalid_text(message)
    if field is not None:
        raise error(f"not {what}: string field {field} is not valid UTF-8", file=file_name)
    return message


_STRING, _MESSAGE = FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_MESSAGE


@functools.cache
def _checks_utf8(message_type) -> bool:
    """Whether protobuf itself rejects invalid UTF-8 in ``message_type`` (a proto3 file)."""
    file = descriptor_pb2.FileDescriptorProto.FromString(message_type.DESCRIPTOR.file.serialized_pb)
    return file.syntax == "proto3"


def _invalid_text(message):
    """The path of the first ``string`` field (or map entry) in ``message`` that is not valid
    UTF-8, or None. Walks with a stack (nesting depth is whatever the parser allowed); a path is
    a (parent, field name, index) chain, spelled out only for the answer."""
    stack = [(message, None)]
    while stack:
        msg, path = stack.pop()
        for field, value in msg.ListFields():
            if field.type == _STRING:
                if _has_bytes(value, field.is_repeated):
                    return _spell((path, field.name, None))
            elif field.type == _MESSAGE and field.message_type.GetOptions().map_entry:
                bad = _map_children(value, field.message_type, (path, field.name, None), stack)
                if bad is not None:
                    return bad
            elif field.type == _MESSAGE and field.is_repeated:
                stack.extend((child, (path, field.name, i)) for i, child in enumerate(value))
            elif field.type == _MESSAGE:
                stack.append((value, (path, field.name, None)))
    return None


def _spell(path) -> str:
    parts = []
    while path is not None:
        path, name, index = path
        parts.append(name if index is None else f"{name}[{index}]")
    return ".".join(reversed(parts))


def _has_bytes(value, repeated):
    return any(type(v) is bytes for v in value) if repeated else type(value) is bytes


def _map_children(mapping, entry, path, stack):
    """Check a map field's keys and string values; queue its message values. The bad path or None."""
    if any(type(k) is bytes for k in mapping):
        return f"{_spell(path)} (a key)"
    value_field = entry.fields_by_name["value"]
    for key in mapping:
        try:
            value = mapping[key]
        except UnicodeError:
            return f"{_spell(path)}[{key!r}]"
        if value_field.type == _STRING and type(value) is bytes:
            return f"{_spell(path)}[{key!r}]"
        if value_field.type == _MESSAGE:
            stack.append((value, (path[0], f"{path[1]}[{key!r}]", None)))
    return None
