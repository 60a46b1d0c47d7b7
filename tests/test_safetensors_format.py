"""MindSpore's safetensors flavour: golden bytes, the library, real MindSpore, bad files."""
import binascii
import hashlib
import json
import struct

import ml_dtypes
import numpy as np
import pytest
import safetensors.numpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from msjax.checkpoint import safetensors_format as sf
from msjax.errors import CheckpointError
from oracle import requires_mindspore, run_mindspore

# dtypes that MindSpore and the safetensors library both handle, with their safetensors codes
DTYPES = [np.bool_, np.uint8, np.int8, np.int16, np.uint16, np.float16, ml_dtypes.bfloat16,
          np.int32, np.uint32, np.float32, np.complex64, np.float64, np.int64, np.uint64,
          ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e5m2]


def _bytes(path):
    with open(path, "rb") as f:
        return f.read()


def test_lenet5_fixture_loads_and_resaves_to_identical_bytes(fixtures_dir, tmp_path):
    path = fixtures_dir / "lenet5.safetensors"
    files = json.loads((fixtures_dir / "manifest.json").read_text())["files"]
    manifest = files["lenet5.safetensors"]
    named = sf.load(path)
    assert list(named) == sorted(t["name"] for t in manifest["tensors"])
    for t in manifest["tensors"]:
        array = named[t["name"]]
        assert array.shape == tuple(t["shape"]) and array.dtype == np.float32
        assert hashlib.sha256(array.tobytes()).hexdigest() == t["sha256"]
    assert sf.read_metadata(path) == {"format": "ms"}
    out = tmp_path / "out.safetensors"
    sf.save(dict(reversed(named.items())), out)       # input order does not matter
    assert _bytes(out) == _bytes(path)


_names = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=6
                 ).filter(lambda s: s != "__metadata__")
_tensors = st.dictionaries(
    _names, st.tuples(st.sampled_from(DTYPES), st.lists(st.integers(0, 3), max_size=3),
                      st.integers(0, 2**31)), min_size=1, max_size=6)


def _make(spec):
    out = {}
    for name, (dtype, shape, seed) in spec.items():
        size = int(np.prod(shape)) * np.dtype(dtype).itemsize
        raw = np.random.default_rng(seed).integers(0, 256, size=size, dtype=np.uint8)
        if dtype == np.bool_:
            raw &= 1
        out[name] = raw.view(dtype).reshape(shape)
    return out


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_tensors)
def test_same_bytes_as_the_safetensors_library_and_round_trip(tmp_path, spec):
    named = _make(spec)
    path = tmp_path / "x.safetensors"
    sf.save(named, path)
    assert _bytes(path) == safetensors.numpy.save(named, metadata={"format": "ms"})
    back = sf.load(path)
    assert set(back) == set(named)
    for name, array in named.items():
        assert back[name].dtype == array.dtype and back[name].shape == array.shape
        assert back[name].tobytes() == array.tobytes()


def test_bfloat16_round_trip_and_selection(tmp_path):
    third = np.array([[1 / 3, -2.5, 3e4]], np.float32).astype(ml_dtypes.bfloat16)
    assert third.view(np.uint16)[0, 0] == 0x3EAB
    named = {"b": third, "a": np.arange(4, dtype=np.int64), "s": np.array(7.5, np.float32),
             "e": np.zeros((2, 0), np.float16), "t": np.arange(6, dtype=np.float32).reshape(2, 3).T}
    path = tmp_path / "bf.safetensors"
    sf.save(named, path, metadata={"format": "ms", "remove_redundancy": "False"})
    back = sf.load(path)
    assert list(back) == ["a", "s", "t", "b", "e"]    # the library's order: wide dtypes first
    assert back["b"].dtype == ml_dtypes.bfloat16 and back["b"].tobytes() == third.tobytes()
    assert back["s"].shape == () and back["s"] == 7.5 and back["e"].shape == (2, 0)
    np.testing.assert_array_equal(back["t"], named["t"])       # non-contiguous input, C order
    assert sf.read_metadata(path) == {"format": "ms", "remove_redundancy": "False"}
    assert list(sf.load(path, names=lambda n: n in "ab")) == ["a", "b"]
    assert list(sf.load(path, names={"s", "missing"})) == ["s"]
    with pytest.raises(TypeError):
        sf.load(path, names="s")


def test_load_reads_only_the_selected_tensors(tmp_path, monkeypatch):
    named = {"big": np.zeros(4096, np.float64), "small": np.arange(3, dtype=np.int16)}
    path = tmp_path / "sel.safetensors"
    sf.save(named, path)
    read = []

    class Spy:
        def __init__(self, f):
            self.f = f

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def read(self, n=-1):
            data = self.f.read(n)
            read.append(len(data))
            return data

        def readinto(self, view):
            n = self.f.readinto(view)
            read.append(n)
            return n

    monkeypatch.setattr(sf, "open", lambda *a: Spy(open(*a)), raising=False)
    back = sf.load(path, names=["small"])
    header = struct.unpack("<Q", path.read_bytes()[:8])[0]
    assert list(back) == ["small"] and sum(read) == 8 + header + 6


def test_empty_dict_writes_no_metadata_like_mindspore(tmp_path):
    path = tmp_path / "empty.safetensors"
    sf.save({}, path)
    assert _bytes(path) == safetensors.numpy.save({})
    assert sf.load(path) == {} and sf.read_metadata(path) == {}


def test_crc_num_round_trip_and_damage(tmp_path):
    path = tmp_path / "crc.safetensors"
    named = {"w": np.arange(4, dtype=np.float32), "b": np.ones(2, np.float16)}
    sf.save(named, path, crc_check=True)
    meta = sf.read_metadata(path)
    assert list(meta) == ["format", "crc_num"]
    assert list(sf.load(path, crc_check=True, names=["w"])) == ["w"]
    data = bytearray(_bytes(path))
    data[-1] ^= 0x40
    path.write_bytes(bytes(data))
    sf.load(path)                                             # no check asked: loads
    with pytest.raises(CheckpointError, match="CRC check failed"):
        sf.load(path, crc_check=True)
    sf.save({"w": np.zeros(1, np.float32)}, path)
    with pytest.warns(UserWarning, match="no crc_num"):
        sf.load(path, crc_check=True)
    # MindSpore's CRC takes bytes(array): a 0-d int array counts as that many zero bytes
    sf.save({"epoch": np.array(3, np.int64)}, path, crc_check=True)
    crc = binascii.crc32(bytes(3), binascii.crc32(b"epoch"))
    assert sf.read_metadata(path)["crc_num"] == str(crc)
    with pytest.raises(CheckpointError, match="negative or huge"):
        sf.save({"epoch": np.array(-1, np.int64)}, path, crc_check=True)


def _header_file(path, header, data=b"", pad=True):
    text = json.dumps(header).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)
    return path


F32 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}


@pytest.mark.parametrize("header, data, cause", [
    ({"w": dict(F32, dtype="F4")}, bytes(8), "unknown safetensors dtype 'F4'"),
    ({"w": dict(F32, data_offsets=[0, 12])}, bytes(12), "needs 8"),
    ({"w": dict(F32, data_offsets=[4, 12])}, bytes(12), "start at 4, expected 0"),
    ({"w": F32, "v": F32}, bytes(16), "overlapping"),
    ({"w": F32}, bytes(4), "truncated or has trailing"),
    ({"w": F32}, bytes(12), "truncated or has trailing"),
    ({"w": dict(F32, shape=[-2])}, bytes(8), "malformed"),
    ({"w": {"dtype": "F32"}}, bytes(8), "malformed"),
    ({"w": dict(F32, data_offsets=[0, 8, 9])}, bytes(8), "malformed"),
    ([1, 2], b"", "not a JSON object"),
])
def test_bad_headers_raise_checkpoint_error(tmp_path, header, data, cause):
    path = _header_file(tmp_path / "bad.safetensors", header, data)
    with pytest.raises(CheckpointError, match=cause) as info:
        sf.load(path)
    assert info.value.file == str(path)


def test_bad_files_raise_checkpoint_error(tmp_path, fixtures_dir):
    good = _bytes(fixtures_dir / "lenet5.safetensors")
    path = tmp_path / "t.safetensors"
    cases = [
        (good[:5], "shorter than the 8-byte"),
        (good[:300], "impossible for a file"),                      # cut inside the header
        (good[:-1], "truncated or has trailing"),                   # cut inside the data
        (struct.pack("<Q", 2**63) + good[8:], "impossible for a file"),
        (struct.pack("<Q", 4) + b"{x: " + good[12:], "not valid JSON"),
        (good[:8] + b"\xff" + good[9:], "not valid JSON"),
    ]
    for data, cause in cases:
        path.write_bytes(data)
        with pytest.raises(CheckpointError, match=cause):
            sf.load(path)
    with pytest.raises(CheckpointError, match="cannot open"):
        sf.load(tmp_path / "missing.safetensors")


def test_save_rejects_what_safetensors_cannot_hold(tmp_path):
    path = tmp_path / "x.safetensors"
    for named, cause in [({"c": np.zeros(2, np.complex128)}, "cannot store"),
                         ({"s": np.array(["a"])}, "cannot store"),
                         ({"": np.zeros(1)}, "not a valid"),
                         ({"__metadata__": np.zeros(1)}, "not a valid")]:
        with pytest.raises(CheckpointError, match=cause):
            sf.save(named, path)
    with pytest.raises(CheckpointError, match="str to str"):
        sf.save({"w": np.zeros(1)}, path, metadata={"epoch": 3})


@requires_mindspore
def test_mindspore_loads_our_files_and_writes_the_same_bytes(tmp_path):
    rng = np.random.default_rng(0)
    named = {"fc.weight": rng.standard_normal((3, 4)).astype(np.float32),
             "fc.bias": rng.standard_normal(3).astype(np.float16),
             "step": np.array([7], np.int32), "count": np.array(3, np.int64),
             "lr": np.array(0.5, np.float32),
             "mask": np.array([True, False, True]), "raw": np.arange(4, dtype=np.uint8),
             "f64": rng.standard_normal((2, 1)), "i8": np.array([-128, 127], np.int8)}
    ours, ours_crc, bf16 = (tmp_path / f"{n}.safetensors" for n in ("ours", "ours_crc", "bf16"))
    sf.save(named, ours)
    sf.save(named, ours_crc, crc_check=True)
    sf.save({"g": np.ones(2, ml_dtypes.bfloat16)}, bf16)
    out = run_mindspore(f"""
        loaded = ms.load_checkpoint({str(ours)!r}, format="safetensors")
        ms.load_checkpoint({str(ours_crc)!r}, format="safetensors", crc_check=True)
        outputs["order"] = np.array(list(loaded))
        for k, p in loaded.items():
            outputs["dtype:" + k] = np.array(str(p.dtype))
            outputs[k] = p.asnumpy()
        items = [{{"name": k, "data": Tensor(v)}} for k, v in inputs.items()]
        ms.save_checkpoint(items, "ms.safetensors", format="safetensors")
        ms.save_checkpoint(items, "ms_crc.safetensors", format="safetensors", crc_check=True)
        outputs["ms_bytes"] = np.fromfile("ms.safetensors", np.uint8)
        outputs["ms_crc_bytes"] = np.fromfile("ms_crc.safetensors", np.uint8)
        try:
            ms.load_checkpoint({str(bf16)!r}, format="safetensors")
            outputs["bf16_error"] = np.array("")
        except TypeError as e:
            outputs["bf16_error"] = np.array(str(e))
    """, named)
    assert list(out["order"]) == sorted(named)               # MindSpore returns sorted names
    for k, v in named.items():
        np.testing.assert_array_equal(out[k], v)
        assert out[k].shape == v.shape and out[k].dtype == v.dtype
    assert str(out["dtype:mask"]) == "Bool" and str(out["dtype:count"]) == "Int64"
    assert out["ms_bytes"].tobytes() == _bytes(ours)
    # two metadata keys: the library writes them in random (HashMap) order, so compare parsed
    theirs, mine = out["ms_crc_bytes"].tobytes(), _bytes(ours_crc)
    n = struct.unpack("<Q", mine[:8])[0]
    assert theirs[:8] == mine[:8] and theirs[8 + n:] == mine[8 + n:]
    assert json.loads(theirs[8:8 + n]) == json.loads(mine[8:8 + n])
    # MindSpore 2.10 with numpy 2.4 refuses BF16 safetensors (its numpy bfloat16 is disabled);
    # if a later build loads them, extend the comparison above with a bfloat16 tensor.
    assert "bfloat16 data type is not supported" in str(out["bf16_error"])
