"""The generated protobuf modules are current, and checkpoint_pb2 matches MindSpore's schema."""
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import descriptor_pb2

ROOT = Path(__file__).resolve().parents[1]


def _generate_module():
    spec = importlib.util.spec_from_file_location("msjax_proto_generate", ROOT / "proto" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_proto_has_a_current_module():
    gen = _generate_module()
    protos = sorted((ROOT / "proto").glob("*.proto"))
    assert any(p.name == "checkpoint.proto" for p in protos)
    assert gen.stale(protos) == [], "run: python proto/generate.py (needs grpcio-tools)"
    for proto in protos:
        importlib.import_module(f"msjax._proto.{proto.stem}_pb2")


def test_a_changed_proto_is_reported_stale(tmp_path):
    gen = _generate_module()
    proto = tmp_path / "checkpoint.proto"
    proto.write_text((ROOT / "proto" / "checkpoint.proto").read_text() + "\n// edited\n")
    assert gen.proto_hash(proto) != gen.recorded_hash(gen.module_path(ROOT / "proto" / "checkpoint.proto"))


def test_checkpoint_descriptor_equals_mindsporess():
    """Same messages, fields, numbers, labels and types as MindSpore 2.10's checkpoint_pb2.

    MindSpore's module is loaded by path (it imports only google.protobuf), into a separate
    descriptor pool from ours: msjax keeps its own pool, so both coexist in one process.
    """
    spec = importlib.util.find_spec("mindspore")
    if spec is None:
        pytest.skip("mindspore is not installed")
    path = Path(spec.origin).parent / "train" / "checkpoint_pb2.py"
    ms_spec = importlib.util.spec_from_file_location("_ms_checkpoint_pb2", path)
    ms_module = importlib.util.module_from_spec(ms_spec)
    ms_spec.loader.exec_module(ms_module)
    from msjax._proto import checkpoint_pb2
    ours, theirs = descriptor_pb2.FileDescriptorProto(), descriptor_pb2.FileDescriptorProto()
    checkpoint_pb2.DESCRIPTOR.CopyToProto(ours)
    ms_module.DESCRIPTOR.CopyToProto(theirs)
    assert ours == theirs


def test_codec_bytes_parse_with_generated_module():
    import io
    from msjax.checkpoint import codec
    from msjax._proto import checkpoint_pb2
    buf = io.BytesIO()
    named = {"a.weight": np.arange(6, dtype=np.float32).reshape(2, 3), "s": np.float32(2.5) * np.ones(()),
             "tag": "hello", "big": np.arange(300, dtype=np.int64)}
    codec.write_records(buf, named, slice_size=1000)
    msg = checkpoint_pb2.Checkpoint.FromString(buf.getvalue())
    assert [v.tag for v in msg.value] == ["a.weight", "s", "tag", "big", "big", "big"]
    assert list(msg.value[0].tensor.dims) == [2, 3] and msg.value[0].tensor.tensor_type == "Float32"
    assert msg.value[0].tensor.tensor_content == named["a.weight"].tobytes()
    assert list(msg.value[1].tensor.dims) == []
    assert msg.value[2].tensor.tensor_type == "str" and list(msg.value[2].tensor.dims) == [0]
    assert b"".join(v.tensor.tensor_content for v in msg.value[3:]) == named["big"].tobytes()
    # and the generated module's own serialization is what the codec writes
    assert checkpoint_pb2.Checkpoint(value=msg.value[:1]).SerializeToString() == \
        buf.getvalue()[:len(checkpoint_pb2.Checkpoint(value=msg.value[:1]).SerializeToString())]
    assert "google.protobuf" in sys.modules
