"""Every checkpoint reader trusts no file: crafted cases per defect, then a seeded mutation loop.

Each crafted case asserts a ``CheckpointError`` naming the file and its cause. The loop mutates
small seed files (built here with ``save_checkpoint``) byte by byte and field by field, for every
variant (plain, crc_check, AES-GCM/AES-CBC/SM4-CBC, safetensors), and asserts that nothing but a
``CheckpointError`` escapes and that a specific check, not the last-resort guard, caught it.
"""
import io
import json
import random
import struct
import warnings
import zlib

import numpy as np
import pytest

import msjax
from msjax.checkpoint import ckpt_format, codec, crypto
from msjax.checkpoint import safetensors_format as sf
from msjax.checkpoint.ckpt_format import Memory as _Memory
from msjax.checkpoint.items import to_parameters as _to_parameters
from msjax.errors import CheckpointError

KEY = b"0123456789abcdef"
MODES = ("AES-GCM", "AES-CBC", "SM4-CBC")
U64 = 1 << 64


# --------------------------------------------------------------------------- builders

def _tensor(dims=(2,), tensor_type=b"Float32", content=bytes(8), packed=False) -> bytes:
    dims = [d % U64 for d in dims]          # negative int64 -> two's complement, as protobuf
    if packed:
        dim_bytes = codec._field(1, b"".join(codec._varint(d) for d in dims))
    else:
        dim_bytes = b"".join(codec._varint(8) + codec._varint(d) for d in dims)
    return dim_bytes + codec._field(2, tensor_type) + codec._field(3, content)


def _record(tag=b"w", tensor=None) -> bytes:
    tensor = _tensor() if tensor is None else tensor
    return codec._field(1, codec._field(1, tag) + codec._field(2, tensor))


def _ten_byte_varint(last: int) -> bytes:
    return b"\xff" * 9 + bytes([last])


def _header_file(path, header, data=bytes(8)):
    """A safetensors file: ``header`` (a JSON value, or the header's raw bytes), then ``data``."""
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)
    return path


def _expect(path, cause, **kw):
    with pytest.raises(CheckpointError, match=cause) as info:
        msjax.load_checkpoint(str(path), **kw)
    assert path.name in str(info.value) and info.value.file.endswith(path.name)
    return info.value


# --------------------------------------------------------------------------- .ckpt, crafted

F32 = b"Float32"
CKPT_CASES = {
    "65 dims": (_record(tensor=_tensor([1] * 65, content=bytes(4))), "more than 64 dims"),
    "65 packed dims": (_record(tensor=_tensor([1] * 65, content=bytes(4), packed=True)),
                       "more than 64 dims"),
    "a million packed dims": (_record(tensor=_tensor([1] * 1_000_000, content=bytes(4),
                                                     packed=True)), "more than 64 dims"),
    "zero dim beside 2**62": (_record(tensor=_tensor([0, 1 << 62], content=b"")),
                              "more than numpy can address"),
    "2**63-1 beside a zero dim": (_record(tensor=_tensor([(1 << 63) - 1, 0], content=b"")),
                                  "more than numpy can address"),
    "negative dim": (_record(tensor=_tensor([-1], content=b"")), r"negative dims \[-1\]"),
    "most negative dim": (_record(tensor=_tensor([-(1 << 63), 0], content=b"")),
                          "negative dims"),
    "dims the bytes cannot back": (_record(tensor=_tensor([1 << 40], content=bytes(8))),
                                   r"needs 4398046511104 bytes but the file holds 8"),
    "str not UTF-32": (_record(b"s", _tensor([0], b"str", b"\xff\xff\xff\xff")),
                       "str entry 's' is not valid UTF-32: code point ffffffff"),
    "str of 5 bytes": (_record(b"s", _tensor([0], b"str", b"abcde")), "not a multiple of 4"),
    "tensor_type not UTF-8": (_record(tensor=_tensor(tensor_type=b"Float\xff2")),
                              "tensor_type of parameter 'w' at offset .* is not UTF-8"),
    "tag not UTF-8": (_record(b"w\xff"), "parameter name at offset .* is not UTF-8"),
    "unknown tensor_type": (_record(tensor=_tensor(tensor_type=b"Float33")),
                            "unknown tensor_type 'Float33'"),
    "dim varint over 64 bits": (_record(tensor=b"\x08" + _ten_byte_varint(0x7F)
                                        + _tensor((), content=bytes(4))), "overflows 64 bits"),
    "unterminated varint": (b"\x0a" + b"\xff" * 11, "unterminated varint"),
    "record longer than the file": (b"\x0a" + codec._varint(1 << 62) + _record()[2:],
                                    "claims 4611686018427387904 bytes"),
    "group wire type": (_record(tensor=b"\x0b" + _tensor()), "unsupported wire type 3"),
    "cut crc_num trailer": (_record() + codec.CRC_MAGIC + bytes(3),
                            "crc_num trailer at offset .* is cut short"),
    "two crc_num trailers": (_record() + ckpt_format.crc_trailer(1) + ckpt_format.crc_trailer(2),
                             "crc_num trailer at offset .* followed by more bytes"),
}


@pytest.mark.parametrize("case", CKPT_CASES)
def test_crafted_ckpt_is_refused_with_its_cause(tmp_path, case):
    data, cause = CKPT_CASES[case]
    path = tmp_path / "crafted.ckpt"
    path.write_bytes(data)
    _expect(path, cause)


def test_a_valid_crc_over_malformed_records_still_names_the_record(tmp_path):
    data, cause = CKPT_CASES["zero dim beside 2**62"]
    path = tmp_path / "crc.ckpt"
    path.write_bytes(data + ckpt_format.crc_trailer(zlib.crc32(data)))
    _expect(path, cause, crc_check=True)
    _expect(path, cause)


@pytest.mark.parametrize("stored, cause", [
    (1 << 70, "crc_num trailer holds 1180591620717411303424, which is no CRC32"),
    (5, "CRC check failed: stored 5"),
])
def test_crc_trailer_values(tmp_path, stored, cause):
    path = tmp_path / "crc.ckpt"
    path.write_bytes(_record() + codec.CRC_MAGIC + stored.to_bytes(10, "big"))
    _expect(path, cause, crc_check=True)
    assert list(msjax.load_checkpoint(str(path))) == ["w"]      # unchecked, the trailer is stripped


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", ["65 dims", "zero dim beside 2**62", "str not UTF-32",
                                  "tensor_type not UTF-8", "cut crc_num trailer"])
def test_decrypted_plaintext_is_checked_like_a_plain_file(tmp_path, mode, case):
    data, cause = CKPT_CASES[case]
    path = tmp_path / "enc.ckpt"
    path.write_bytes(crypto.encrypt(data, KEY, mode))
    _expect(path, cause, dec_key=KEY, dec_mode=mode)


def test_memory_source_behaves_like_a_file():
    m = _Memory(b"abc")
    with pytest.raises(ValueError, match="negative seek"):
        m.seek(-1)
    m.seek(10)
    out = bytearray(2)
    assert m.read(2) == b"" and m.readinto(out) == 0 and m.seek(0, 2) == 3


def test_a_tensor_type_that_contradicts_the_data_is_refused():
    with pytest.raises(CheckpointError, match=r"x.ckpt: parameter 'w' is marked Int4.*float32"):
        _to_parameters({"w": np.zeros(2, np.float32)}, {"w": "Int4"}, "x.ckpt")
    with pytest.raises(CheckpointError, match=r"x.ckpt: .*unknown tensor_type 'Float33'"):
        _to_parameters({"w": np.zeros(2, np.float32)}, {"w": "Float33"}, "x.ckpt")
    loaded = _to_parameters({"w": np.zeros(2, np.int8)}, {"w": "Int4"}, "x.ckpt")
    assert loaded["w"].get_metadata("ms_dtype") == "Int4"


def test_choice_func_errors_are_the_callers_own(tmp_path):
    """Never taken for a malformed file. As in MindSpore 2.10 (tests/test_mindspore_parity_api.py),
    a .ckpt load raises ValueError chained to the caller's error; safetensors lets it through."""
    path = tmp_path / "ok.ckpt"
    msjax.save_checkpoint({"w": np.ones(2, np.float32)}, str(path))

    def choose(name):
        raise KeyError("caller bug")
    with pytest.raises(ValueError, match="choice_func raised KeyError: 'caller bug'") as info:
        msjax.load_checkpoint(str(path), choice_func=choose)
    assert isinstance(info.value.__cause__, KeyError) and not isinstance(info.value, CheckpointError)
    msjax.save_checkpoint({"w": np.ones(2, np.float32)}, str(tmp_path / "ok.safetensors"), format="safetensors")
    with pytest.raises(KeyError, match="caller bug"):
        msjax.load_checkpoint(str(tmp_path / "ok.safetensors"), format="safetensors", choice_func=choose)


# --------------------------------------------------------------------------- safetensors, crafted

ENTRY = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
DEEP = 100_000
W_DATA = bytes(8)         # the data part of most cases: one F32 [2] tensor's bytes
ST_CASES = {
    "nested header": (b"[" * DEEP + b"]" * DEEP, W_DATA, "nests JSON deeper"),
    "nested shape": (b'{"w": {"dtype": "F32", "shape": ' + b"[" * DEEP + b"]" * DEEP
                     + b', "data_offsets": [0, 8]}}', W_DATA, "nests JSON deeper"),
    "header not UTF-8": (b'{"w\xff": 1}', W_DATA, "not valid JSON: not UTF-8"),
    "4301-digit integer": (b'{"w": {"dtype": "F32", "shape": [' + b"9" * 4301
                           + b'], "data_offsets": [0, 8]}}', W_DATA,
                           "not valid JSON: Exceeds the limit"),
    "list as dtype": ({"w": dict(ENTRY, dtype=["F32"])}, W_DATA, "dtype must be a string"),
    "object as dtype": ({"w": dict(ENTRY, dtype={"F32": 1})}, W_DATA, "dtype must be a string"),
    "bool in shape": ({"w": dict(ENTRY, shape=[True, 2])}, W_DATA, "shape must be a list"),
    "float in shape": ({"w": dict(ENTRY, shape=[2.0])}, W_DATA, "shape must be a list"),
    "object as shape": ({"w": dict(ENTRY, shape={})}, W_DATA, "shape must be a list"),
    "nested shape list": ({"w": dict(ENTRY, shape=[[2]])}, W_DATA, "shape must be a list"),
    "65 dims": ({"w": dict(ENTRY, shape=[1] * 64 + [2])}, W_DATA, "65 dims; at most 64"),
    "zero dim beside 2**62": ({"w": dict(ENTRY, shape=[0, 1 << 62], data_offsets=[0, 0])}, b"",
                              "more than numpy can address"),
    "size the file cannot back": ({"w": dict(ENTRY, shape=[1 << 40], data_offsets=[0, 1 << 42])},
                                  W_DATA, "data holds 8 bytes but the tensors cover 4398046511104"),
    "offsets reversed": ({"w": dict(ENTRY, data_offsets=[8, 0])}, W_DATA, "end 0 lies before"),
    "bool offsets": ({"w": dict(ENTRY, data_offsets=[False, 8])}, W_DATA, "data_offsets must be"),
    "float offsets": ({"w": dict(ENTRY, data_offsets=[0, 8.0])}, W_DATA, "data_offsets must be"),
    "entry not an object": ({"w": [1, 2]}, W_DATA, "must be an object with dtype"),
    "entry a string": ({"w": "F32"}, W_DATA, "must be an object with dtype"),
    "metadata a list": ({"__metadata__": ["format"], "w": ENTRY}, W_DATA,
                        "__metadata__ is not a JSON object"),
    "metadata an int": ({"__metadata__": 5, "w": ENTRY}, W_DATA,
                        "__metadata__ is not a JSON object"),
    "metadata value an int": ({"__metadata__": {"crc_num": 5}, "w": ENTRY}, W_DATA,
                              "maps 'crc_num' to 5; metadata values must be strings"),
    "metadata value nested": ({"__metadata__": {"format": [[["ms"]]]}, "w": ENTRY}, W_DATA,
                              "metadata values must be strings"),
    "Int4 on float data": ({"__metadata__": {"w": "Int4"}, "w": ENTRY}, W_DATA,
                           "'w' is marked Int4, which is stored as int8, but its data is float32"),
}


@pytest.mark.parametrize("case", ST_CASES)
def test_crafted_safetensors_is_refused_with_its_cause(tmp_path, case):
    header, data, cause = ST_CASES[case]
    path = _header_file(tmp_path / "crafted.safetensors", header, data)
    _expect(path, cause, format="safetensors")
    if "metadata" in case or isinstance(header, bytes):
        with pytest.raises(CheckpointError, match=cause) as info:
            sf.read_metadata(path)
        assert path.name in str(info.value)


def test_safetensors_null_metadata_is_absent(tmp_path):
    path = _header_file(tmp_path / "null.safetensors", {"__metadata__": None, "w": ENTRY}, bytes(8))
    assert sf.read_metadata(path) == {} and list(sf.load(path)) == ["w"]


def test_read_metadata_of_a_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="missing.safetensors: cannot open"):
        sf.read_metadata(tmp_path / "missing.safetensors")


# --------------------------------------------------------------------------- mutation loop

_VALUES = [0, 1, 2, 4, 8, 24, 64, 65, 127, 128, 2**31, 2**32, 2**62, 2**63 - 1, 2**63, U64 - 1]
_TYPES = [b"Float32", b"Int64", b"str", b"Int4", b"Bool", b"Float\xff", b"", b"HiFloat8"]


def _seed_ckpt(tmp_path):
    path = tmp_path / "seed.ckpt"
    msjax.save_checkpoint({"conv.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 4),
                           "b": np.array([1, 2, 3], np.int64), "h": np.ones((2, 2), np.float16)},
                          str(path), append_dict={"epoch": 3, "lr": 0.5, "name": "hello"})
    return path.read_bytes()


def _mutate_bytes(rng, data):
    """1-3 byte-level edits, half of them within a record header's first bytes."""
    data = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(len(data) + 1)
        if rng.random() < 0.5:
            at = min(len(data), rng.randrange(48))
        kind = rng.random()
        if kind < 0.35 and data:
            data[min(at, len(data) - 1)] = rng.choice([0, 1, 8, 0x0A, 0x12, 0x1A, 0x80, 0xFF,
                                                       rng.randrange(256)])
        elif kind < 0.5:
            del data[at:at + rng.randint(1, 8)]
        elif kind < 0.75:
            key = bytes([rng.choice([0x08, 0x0A, 0x12, 0x1A])]) if rng.random() < 0.6 else b""
            data[at:at] = key + codec._varint(rng.choice(_VALUES))
        elif kind < 0.85:
            data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        else:
            del data[rng.randrange(len(data) + 1):]
    return bytes(data)


def _mutate_fields(rng, data):
    """Re-encode the records with some dims, tensor_types or contents replaced."""
    out = b""
    for rec in codec.index(io.BytesIO(data), len(data)):
        dims, tensor_type = list(rec.dims), rec.tensor_type.encode()
        content = data[rec.offset:rec.offset + rec.nbytes]
        kind = rng.random()
        if kind < 0.15:
            dims = [rng.choice(_VALUES + [-1, -(1 << 63)]) for _ in range(rng.randint(0, 3))]
        elif kind < 0.25:
            dims = [1] * rng.choice([64, 65, 200])
        elif kind < 0.35:
            dims, content = [0, rng.choice(_VALUES)], b""
        elif kind < 0.45:
            tensor_type = rng.choice(_TYPES)
        elif kind < 0.55:
            content = bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 4, 8, 24])))
        out += _record(rec.tag.encode(), _tensor(dims, tensor_type, content, rng.random() < 0.2))
    return out


def _mutate_ckpt(rng, seed):
    return _mutate_bytes(rng, seed) if rng.random() < 0.5 else _mutate_fields(rng, seed)


def _wrap_crc(rng, seed):
    plain = _mutate_ckpt(rng, seed)
    whole = plain + ckpt_format.crc_trailer(zlib.crc32(plain))
    return whole if rng.random() < 0.7 else _mutate_bytes(rng, whole)


def _wrap_cipher(mode):
    def wrap(rng, seed):
        whole = crypto.encrypt(_mutate_ckpt(rng, seed), KEY, mode)
        return whole if rng.random() < 0.7 else _mutate_bytes(rng, whole)
    return wrap


_JSON_VALUES = [[], {}, "x", 1, 1.5, True, None, [1], ["F32"], {"a": 1}, [0, 2**62], [True, 2],
                [1.0], [2**64], -1, [1] * 65, "F32", "I8", "Int4", [0, 0], [8, 0]]


def _mutate_safetensors(rng, seed):
    (n,) = struct.unpack("<Q", seed[:8])
    header, body = json.loads(seed[8:8 + n]), seed[8 + n:]
    kind = rng.random()
    if kind < 0.6:
        name = rng.choice(list(header))
        if rng.random() < 0.2:
            header[name] = rng.choice(_JSON_VALUES)
        else:
            field = rng.choice(["crc_num", "format", "w"] if name == "__metadata__"
                               else ["dtype", "shape", "data_offsets", "extra"])
            header[name][field] = rng.choice(_JSON_VALUES)
        text = json.dumps(header).encode()
    elif kind < 0.7:
        depth = rng.choice([10, 5000])
        text = b"[" * depth + b"]" * depth
    else:
        text = _mutate_bytes(rng, seed[8:8 + n])
    if rng.random() < 0.2:
        body = _mutate_bytes(rng, body)
    length = len(text) if rng.random() < 0.9 else rng.choice(_VALUES)
    return struct.pack("<Q", length) + text + body


def _seed_safetensors(tmp_path):
    path = tmp_path / "seed.safetensors"
    msjax.save_checkpoint({"conv.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 4),
                           "b": np.array([1, 2, 3], np.int64)}, str(path), format="safetensors",
                          crc_check=True)
    return path.read_bytes()


VARIANTS = {
    "plain": ("ckpt", _mutate_ckpt, {}),
    "crc": ("ckpt", _wrap_crc, {"crc_check": True}),
    **{mode: ("ckpt", _wrap_cipher(mode), {"dec_key": KEY, "dec_mode": mode}) for mode in MODES},
    "safetensors": ("safetensors", _mutate_safetensors, {"format": "safetensors"}),
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_mutated_files_raise_only_checkpoint_errors(tmp_path, variant):
    ext, mutate, kwargs = VARIANTS[variant]
    seed = _seed_safetensors(tmp_path) if ext == "safetensors" else _seed_ckpt(tmp_path)
    rng = random.Random(f"hostile-{variant}")
    path = tmp_path / f"mutated.{ext}"
    refused = 0
    for i in range(100):
        path.write_bytes(mutate(rng, seed))
        check = kwargs if ext == "ckpt" else dict(kwargs, crc_check=rng.random() < 0.4)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)       # crc_check without crc_num
                msjax.load_checkpoint(str(path), **check)
        except CheckpointError as err:
            refused += 1
            assert path.name in str(err), (i, err)
            assert err.__cause__ is None, f"case {i}: only the last-resort guard caught: {err}"
        # anything else propagates and fails the test, with the case's traceback
    assert refused > 50                    # most mutations break the file; the loop tests them


class _Stream(io.RawIOBase):
    """A non-seekable source, so the decrypters cannot size anything from the file."""

    def __init__(self, data):
        self.inner = io.BytesIO(data)

    def readable(self):
        return True

    def readinto(self, out):
        return self.inner.readinto(out)


def _decrypters(mode):
    file = "s.ckpt"
    return (lambda d: b"".join(crypto.iter_decrypt(_Stream(d), KEY, mode, file=file)),
            lambda d: crypto.decrypt_file(_Stream(d), KEY, mode, file=file),
            lambda d: crypto.decrypt(d, KEY, mode, file=file))


@pytest.mark.parametrize("mode", MODES)
def test_mutated_ciphertext_streams_raise_only_checkpoint_errors(mode):
    rng = random.Random(f"stream-{mode}")
    good = crypto.encrypt(bytes(range(200)), KEY, mode)
    for i in range(60):
        data = _mutate_bytes(rng, good)
        for decrypt in _decrypters(mode):
            try:
                decrypt(data)
            except CheckpointError as err:
                assert err.file == "s.ckpt" and err.__cause__ is None, (i, err)
