"""Files from real MindSpore 2.10 load exactly, re-save byte-identically; the codec's rules hold."""
import hashlib
import io
import json
import os
import shutil

import numpy as np
import pytest

import msjax
from msjax.checkpoint import codec
from msjax.common import dtype as mstype
from msjax.common.tensor import Parameter
from msjax.errors import CheckpointError

KEY = b"0123456789abcdef"
LOAD_OPTIONS = {
    "lenet5_aes_gcm.ckpt": dict(dec_key=KEY, dec_mode="AES-GCM"),
    "lenet5_aes_cbc.ckpt": dict(dec_key=KEY, dec_mode="AES-CBC"),
    "lenet5_sm4_cbc.ckpt": dict(dec_key=KEY, dec_mode="SM4-CBC"),
    "lenet5_crc.ckpt": dict(crc_check=True),
    "lenet5.safetensors": dict(format="safetensors"),
}
SAVE_OPTIONS = {"lenet5_crc.ckpt": dict(crc_check=True), "lenet5.safetensors": dict(format="safetensors")}


@pytest.fixture(scope="module")
def manifest(fixtures_dir):
    return json.loads((fixtures_dir / "manifest.json").read_text())


def _checkpoints(manifest):
    return [n for n in manifest["files"] if n.endswith((".ckpt", ".safetensors"))]


def _raw(value):
    return np.array(value).tobytes() if isinstance(value, str) else np.asarray(value.get_value()).tobytes()


def test_every_fixture_loads_exactly(fixtures_dir, manifest):
    names = _checkpoints(manifest)
    assert len(names) == 12
    for name in names:
        loaded = msjax.load_checkpoint(str(fixtures_dir / name), **LOAD_OPTIONS.get(name, {}))
        tensors = manifest["files"][name]["tensors"]
        assert list(loaded) == [t["name"] for t in tensors], name
        for t in tensors:
            value = loaded[t["name"]]
            assert hashlib.sha256(_raw(value)).hexdigest() == t["sha256"], (name, t["name"])
            if t["ms_dtype"] == "str":
                assert isinstance(value, str)
                continue
            assert isinstance(value, Parameter) and value.name == t["name"]
            assert list(value.shape) == t["shape"], (name, t["name"])
            stored = value.get_metadata("ms_dtype", None) or value.dtype.ckpt
            assert mstype.to_type(stored).ckpt == t["ms_dtype"], (name, t["name"])
            assert value.get_value().dtype == mstype.BY_CKPT[t["ms_dtype"]].numpy
            assert isinstance(value.get_value(), np.ndarray)        # host arrays, no device copy


def test_append_dict_values_come_back_as_mindspore_returns_them(fixtures_dir):
    d = msjax.load_checkpoint(str(fixtures_dir / "lenet5_append.ckpt"))
    assert d["tag"] == "hello"
    assert d["epoch_num"].asnumpy().dtype == np.int64 and d["epoch_num"].asnumpy() == 3
    assert d["lr"].asnumpy().dtype == np.float32 and d["flag"].asnumpy().dtype == np.bool_


def test_resaving_fixture_dicts_gives_identical_bytes(fixtures_dir, manifest, tmp_path):
    checked = 0
    for name in _checkpoints(manifest):
        entry = manifest["files"][name]
        if not entry["deterministic"] or name == "dtypes_save_only.ckpt":
            continue
        loaded = msjax.load_checkpoint(str(fixtures_dir / name), **LOAD_OPTIONS.get(name, {}))
        out = tmp_path / os.path.basename(name)
        msjax.save_checkpoint(loaded, str(out), **SAVE_OPTIONS.get(name, {}))
        assert out.read_bytes() == (fixtures_dir / name).read_bytes(), name
        checked += 1
    assert checked == 8


def test_save_only_dtypes_load_and_resave_identically(fixtures_dir, tmp_path):
    """Complex64/128, Float8E4M3FN, Float8E5M2 and HiFloat8: MindSpore writes but cannot read them."""
    src = fixtures_dir / "dtypes_save_only.ckpt"
    loaded = msjax.load_checkpoint(str(src))
    assert loaded["complex64"].asnumpy().dtype == np.complex64
    msjax.save_checkpoint(loaded, str(tmp_path / "x.ckpt"))
    assert (tmp_path / "x.ckpt").read_bytes() == src.read_bytes()


def test_zero_element_tensors_get_no_record(tmp_path):
    path = str(tmp_path / "e.ckpt")
    msjax.save_checkpoint({"empty": np.zeros((2, 0), np.float32), "x": np.ones(1, np.float32)}, path)
    assert list(msjax.load_checkpoint(path)) == ["x"]


# ----------------------------------------------------------------------------- slicing rule

def test_large_tensors_are_written_in_slices_and_joined(tmp_path):
    a = np.arange(1000, dtype=np.float32).reshape(10, 100)
    buf = io.BytesIO()
    codec.write_records(buf, {"a": a, "b": np.ones(3, np.int8)}, slice_size=1024)
    records = codec.index(io.BytesIO(buf.getvalue()), len(buf.getvalue()))
    assert [(r.tag, r.nbytes) for r in records] == [("a", 1024)] * 3 + [("a", 4000 - 3072), ("b", 3)]
    assert all(r.dims == (10, 100) for r in records[:4])          # every slice carries the full dims
    out = codec.read_records(io.BytesIO(buf.getvalue()))
    np.testing.assert_array_equal(out["a"], a)
    assert codec.slices(4000, 1024) == [(0, 1024), (1024, 2048), (2048, 3072), (3072, 4000)]
    assert codec.SLICE_SIZE == 512 * 1024 * 1024


# ----------------------------------------------------------------------------- bad input

def _good_file(tmp_path, **kwargs):
    path = tmp_path / "good.ckpt"
    msjax.save_checkpoint({"w": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.ones(4, np.float16)},
                          str(path), **kwargs)
    return path


def _expect_error(path, match=None, **kwargs):
    with pytest.raises(CheckpointError, match=match) as info:
        msjax.load_checkpoint(str(path), **kwargs)
    assert info.value.file and info.value.file.endswith(os.path.basename(str(path)))
    assert isinstance(info.value, ValueError)
    return info.value


def test_every_truncation_is_a_checkpoint_error(tmp_path):
    data = _good_file(tmp_path).read_bytes()
    bad = tmp_path / "bad.ckpt"
    for cut in list(range(1, 40)) + list(range(40, len(data) - 1, 7)):
        bad.write_bytes(data[:cut])
        _expect_error(bad)


def test_not_a_checkpoint(tmp_path):
    bad = tmp_path / "bad.ckpt"
    for payload in (b"", b"hello world, not protobuf", bytes(range(256)) * 4, b"PK\x03\x04" + bytes(60)):
        bad.write_bytes(payload)
        _expect_error(bad)


def test_random_bytes_never_crash(tmp_path):
    rng = np.random.default_rng(0)
    data = bytearray(_good_file(tmp_path).read_bytes())
    bad = tmp_path / "bad.ckpt"
    for _ in range(60):
        mutated = bytearray(data)
        for pos in rng.integers(0, len(data), 3):
            mutated[pos] = rng.integers(0, 256)
        bad.write_bytes(bytes(mutated))
        try:
            msjax.load_checkpoint(str(bad))
        except CheckpointError:
            pass


def test_absurd_length_is_refused_before_allocating(tmp_path):
    bad = tmp_path / "bad.ckpt"
    # a record claiming 2**62 bytes in a 30-byte file
    bad.write_bytes(b"\x0a" + codec._varint(1 << 62) + b"\x0a\x01w" + bytes(20))
    _expect_error(bad, "claims|past the end")


def test_unknown_dtype_and_dims_mismatch(tmp_path):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(codec.record_header("w", [2], "Float33", 8) + bytes(8))
    _expect_error(bad, "unknown tensor_type 'Float33'")
    bad.write_bytes(codec.record_header("w", [3], "Float32", 8) + bytes(8))
    _expect_error(bad, r"dims \[3\].*12 bytes.*holds 8")


def test_crc_mismatch_and_missing_trailer(tmp_path):
    path = _good_file(tmp_path, crc_check=True)
    data = bytearray(path.read_bytes())
    data[30] ^= 0xFF
    path.write_bytes(bytes(data))
    _expect_error(path, "CRC check failed", crc_check=True)
    msjax.load_checkpoint(str(path))                     # without crc_check the trailer is just stripped
    plain = _good_file(tmp_path)
    with pytest.warns(UserWarning, match="no crc_num"):
        msjax.load_checkpoint(str(plain), crc_check=True)


def test_encrypted_without_key_wrong_key_and_wrong_mode(fixtures_dir, tmp_path):
    src = tmp_path / "enc.ckpt"
    shutil.copy(fixtures_dir / "lenet5_aes_gcm.ckpt", src)
    _expect_error(src, "encrypted .*AES-GCM.*dec_key")
    _expect_error(src, None, dec_key=b"fedcba9876543210")
    _expect_error(src, None, dec_key=KEY, dec_mode="AES-CBC")
    cbc = tmp_path / "cbc.ckpt"
    shutil.copy(fixtures_dir / "lenet5_aes_cbc.ckpt", cbc)
    with pytest.raises(CheckpointError):
        msjax.load_checkpoint(str(cbc), dec_key=b"fedcba9876543210", dec_mode="AES-CBC")


def test_missing_file_and_wrong_suffix(tmp_path):
    _expect_error(tmp_path / "nope.ckpt", "does not exist")
    with pytest.raises(ValueError, match="format"):
        msjax.load_checkpoint(str(tmp_path / "x.safetensors"))
