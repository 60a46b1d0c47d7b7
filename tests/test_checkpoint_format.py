"""Each numbered statement of msjax/checkpoint/FORMAT.md, checked (test_sN <-> statement N)."""
import io
import json
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

import msjax
from msjax._proto import checkpoint_pb2
from msjax.checkpoint import ckpt_format, codec
from msjax.common import dtype as mstype
from msjax.errors import CheckpointError
from msjax.nn.cell import Cell
from msjax.common.tensor import Parameter

DOC = Path(msjax.__file__).parent / "checkpoint" / "FORMAT.md"


def _bytes(named, **kw):
    buf = io.BytesIO()
    codec.write_records(buf, named, **kw)
    return buf.getvalue()


def test_every_statement_has_a_test():
    numbers = [int(n) for n in re.findall(r"^(\d+)\. ", DOC.read_text(), flags=re.M)]
    tests = {int(m) for m in re.findall(r"def test_s(\d+)_", Path(__file__).read_text())}
    assert numbers == list(range(1, len(numbers) + 1)) and set(numbers) == tests


def test_s1_records_are_single_value_messages(fixtures_dir):
    data = (fixtures_dir / "lenet5.ckpt").read_bytes()
    records = codec.index(io.BytesIO(data), len(data))
    whole = checkpoint_pb2.Checkpoint.FromString(data)
    assert [r.tag for r in records] == [v.tag for v in whole.value]
    first_len = records[1].offset - 0  # any record boundary: each record alone parses with one value
    one = checkpoint_pb2.Checkpoint()
    one.ParseFromString(_bytes({"x": np.ones(2, np.float32)}))
    assert len(one.value) == 1 and first_len > 0


def test_s2_schema_fields():
    d = checkpoint_pb2.DESCRIPTOR
    value = d.message_types_by_name["Checkpoint"].nested_types_by_name["Value"]
    tensor = d.message_types_by_name["TensorProto"]
    from google.protobuf import descriptor_pb2
    fdp = descriptor_pb2.FileDescriptorProto()
    d.CopyToProto(fdp)
    assert d.package == "" and fdp.syntax in ("", "proto2")
    assert [(f.name, f.number) for f in value.fields] == [("tag", 1), ("tensor", 2), ("maptensor", 3)]
    assert [(f.name, f.number) for f in tensor.fields] == [("dims", 1), ("tensor_type", 2), ("tensor_content", 3)]
    assert value.oneofs_by_name["value"].fields[1].name == "maptensor"
    msg = checkpoint_pb2.Checkpoint()
    v = msg.value.add(tag="m")
    v.maptensor.tensor.add(dims=[1], tensor_type="Float32", tensor_content=bytes(4))
    with pytest.raises(CheckpointError, match="MapTensor"):
        codec.read_records(io.BytesIO(msg.SerializeToString()))


def test_s3_record_bytes():
    data = _bytes({"ab": np.zeros((2, 3), np.int8)})
    assert data == bytes([0x0A, 0x18, 0x0A, 0x02]) + b"ab" + bytes([0x12, 0x12, 0x08, 2, 0x08, 3, 0x12, 4]) \
        + b"Int8" + bytes([0x1A, 6]) + bytes(6)
    msg = checkpoint_pb2.Checkpoint(value=[checkpoint_pb2.Checkpoint.Value(
        tag="ab", tensor=checkpoint_pb2.TensorProto(dims=[2, 3], tensor_type="Int8", tensor_content=bytes(6)))])
    assert msg.SerializeToString() == data


def test_s4_content_scalars_and_empty_tensors():
    a = np.arange(6, dtype=">i4").reshape(2, 3)            # big-endian input is stored little-endian
    rec = checkpoint_pb2.Checkpoint.FromString(_bytes({"a": a.astype("<i4"), "s": np.array(2.0, np.float32),
                                                       "e": np.zeros((0, 3), np.float32)}))
    assert rec.value[0].tensor.tensor_content == np.arange(6, dtype="<i4").tobytes()
    assert list(rec.value[1].tensor.dims) == [] and [v.tag for v in rec.value] == ["a", "s"]


def test_s5_dtype_strings(fixtures_dir):
    listed = re.search(r"one of `([^`]*)`", DOC.read_text().replace("\n   ", " ")).group(1).split()
    assert listed == [t.ckpt for t in (mstype.bool_, mstype.int8, mstype.int16, mstype.int32, mstype.int64,
                                       mstype.uint8, mstype.uint16, mstype.uint32, mstype.uint64, mstype.float16,
                                       mstype.float32, mstype.float64, mstype.bfloat16, mstype.qint4x2,
                                       mstype.complex64, mstype.complex128, mstype.float8_e4m3fn,
                                       mstype.float8_e5m2, mstype.hifloat8)]
    assert set(listed) == set(mstype.BY_CKPT)
    manifest = json.loads((fixtures_dir / "manifest.json").read_text())["files"]
    loadable = {t["ms_dtype"] for t in manifest["dtypes.ckpt"]["tensors"]}
    save_only = {t["ms_dtype"] for t in manifest["dtypes_save_only.ckpt"]["tensors"]}
    assert loadable == set(listed[:14]) and save_only == set(listed[14:])
    msjax.load_checkpoint(str(fixtures_dir / "dtypes_save_only.ckpt"))
    with pytest.raises(CheckpointError, match="unknown tensor_type"):
        codec.read_records(io.BytesIO(codec.record_header("x", [1], "Float128", 16) + bytes(16)))


def test_s6_int4_is_one_byte_per_element(fixtures_dir):
    d = msjax.load_checkpoint(str(fixtures_dir / "dtypes.ckpt"))
    p = d["int4x2"]
    assert p.get_metadata("ms_dtype") == "Int4" and p.asnumpy().dtype == np.int8 and p.asnumpy().nbytes == 6


def test_s7_strings(tmp_path):
    rec = checkpoint_pb2.Checkpoint.FromString(_bytes({"t": "hello"})).value[0].tensor
    assert list(rec.dims) == [0] and rec.tensor_type == "str" and rec.tensor_content == "hello".encode("utf-32-le")
    assert codec.read_records(io.BytesIO(_bytes({"t": "hello"})))["t"] == "hello"


def test_s8_append_dict_entries(tmp_path):
    path = str(tmp_path / "a.ckpt")
    msjax.save_checkpoint({"w": np.ones(1, np.float32)}, path, append_dict={"i": 3, "f": 0.5, "b": True, "s": "x"})
    recs = checkpoint_pb2.Checkpoint.FromString(Path(path).read_bytes()).value
    assert [(v.tag, list(v.tensor.dims), v.tensor.tensor_type) for v in recs] == [
        ("w", [1], "Float32"), ("i", [], "Int64"), ("f", [], "Float32"), ("b", [], "Bool"), ("s", [0], "str")]


def test_s9_definition_order(tmp_path):
    class Bn(Cell):
        def __init__(self):
            super().__init__()
            self.moving_mean = Parameter(np.zeros(2, np.float32))
            self.moving_variance = Parameter(np.ones(2, np.float32))
            self.gamma = Parameter(np.ones(2, np.float32))
            self.beta = Parameter(np.zeros(2, np.float32))
    path = str(tmp_path / "bn.ckpt")
    msjax.save_checkpoint(Bn(), path)
    assert list(msjax.load_checkpoint(path)) == ["moving_mean", "moving_variance", "gamma", "beta"]


def test_s10_slices():
    a = np.arange(100, dtype=np.float32)
    data = _bytes({"a": a}, slice_size=128)
    recs = checkpoint_pb2.Checkpoint.FromString(data).value
    assert [len(v.tensor.tensor_content) for v in recs] == [128, 128, 128, 16]
    assert all(list(v.tensor.dims) == [100] and v.tag == "a" for v in recs)
    np.testing.assert_array_equal(codec.read_records(io.BytesIO(data))["a"], a)
    assert codec.SLICE_SIZE == 512 << 20


def test_s11_crc_trailer(fixtures_dir):
    data = (fixtures_dir / "lenet5_crc.ckpt").read_bytes()
    body, trailer = data[:-17], data[-17:]
    assert body == (fixtures_dir / "lenet5.ckpt").read_bytes()
    assert trailer[:7] == b"crc_num" and int.from_bytes(trailer[7:], "big") == zlib.crc32(body)
    buf = io.BytesIO()
    crc = codec.write_records(buf, {"x": np.ones(3, np.float32)}, crc=0)
    assert ckpt_format.crc_trailer(crc) == b"crc_num" + zlib.crc32(buf.getvalue()).to_bytes(10, "big")


def test_s12_encryption_framing(tmp_path):
    path = str(tmp_path / "e.ckpt")
    for mode, magic in (("AES-GCM", 0x7F3A5ED8), ("AES-CBC", 0x7F3A5ED9), ("SM4-CBC", 0x7F3A5EDA)):
        msjax.save_checkpoint({"w": np.ones(10, np.float32)}, path, enc_key=b"0123456789abcdef", enc_mode=mode)
        data = Path(path).read_bytes()
        assert struct.unpack("<I", data[:4])[0] == magic
        pos = 4 + (16 if mode == "AES-GCM" else 0)
        block_len, iv_len = struct.unpack("<ii", data[pos:pos + 8])
        cipher_len = struct.unpack("<i", data[pos + 8 + iv_len:pos + 12 + iv_len])[0]
        assert iv_len == 16 and pos + 12 + iv_len + cipher_len == len(data)
    with pytest.raises(ValueError, match="crc_check"):
        msjax.save_checkpoint({"w": np.ones(1, np.float32)}, path, enc_key=b"0123456789abcdef", crc_check=True)


def test_s13_safetensors_flavour(tmp_path, fixtures_dir):
    path = tmp_path / "x.safetensors"
    msjax.save_checkpoint({"b": np.ones(1, np.float32), "a": np.ones(2, np.float32)}, str(path), format="safetensors")
    header = json.loads(path.read_bytes()[8:8 + struct.unpack("<Q", path.read_bytes()[:8])[0]])
    assert header["__metadata__"] == {"format": "ms"}
    assert list(msjax.load_checkpoint(str(path), format="safetensors")) == ["a", "b"]
