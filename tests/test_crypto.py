"""Encrypted .ckpt framing: MindSpore's files, round trips, MindSpore reading ours, bad input."""
import io
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from msjax.checkpoint import crypto
from msjax.errors import CheckpointError
from oracle import requires_mindspore, run_mindspore

KEY = b"0123456789abcdef"
FIXTURES = {"AES-GCM": "lenet5_aes_gcm.ckpt", "AES-CBC": "lenet5_aes_cbc.ckpt",
            "SM4-CBC": "lenet5_sm4_cbc.ckpt"}
MAGIC = {"AES-GCM": 0x7F3A5ED8, "AES-CBC": 0x7F3A5ED9, "SM4-CBC": 0x7F3A5EDA}


@pytest.fixture(scope="module")
def plain(fixtures_dir):
    return (fixtures_dir / "lenet5.ckpt").read_bytes()


@pytest.mark.parametrize("mode", FIXTURES)
def test_decrypts_mindspore_files_exactly(fixtures_dir, plain, mode):
    path = fixtures_dir / FIXTURES[mode]
    data = path.read_bytes()
    assert crypto.decrypt(data, KEY, mode) == plain
    with open(path, "rb") as f:
        assert crypto.decrypt_file(f, KEY, mode, file=path) == plain
    assert b"".join(crypto.iter_decrypt(io.BytesIO(data), KEY, mode)) == plain
    assert crypto.is_encrypted(data[:4]) == mode and crypto.is_encrypted(plain[:4]) is None


@pytest.mark.parametrize("mode", FIXTURES)
def test_our_framing_matches_mindspore_layout(fixtures_dir, plain, mode):
    ours = crypto.encrypt(plain, KEY, mode)
    theirs = (fixtures_dir / FIXTURES[mode]).read_bytes()
    assert len(ours) == len(theirs)
    gcm = mode == "AES-GCM"
    head = 4 + 16 * gcm
    for data in (ours, theirs):
        assert struct.unpack_from("<I", data)[0] == MAGIC[mode]
        block_len, iv_len = struct.unpack_from("<ii", data, head)
        cipher_len = struct.unpack_from("<i", data, head + 8 + 16)[0]
        assert iv_len == 16 and block_len == 4 + 16 + 4 + cipher_len == len(data) - head - 4
        assert cipher_len == (len(plain) if gcm else (len(plain) // 16 + 1) * 16)
    again = crypto.encrypt(plain, KEY, mode)                 # a fresh random IV on every save
    assert again[head + 8:head + 24] != ours[head + 8:head + 24] and again != ours


_case = st.sampled_from(["AES-GCM", "AES-CBC", "SM4-CBC"]).flatmap(
    lambda mode: st.tuples(st.just(mode), st.binary(min_size=16, max_size=16) if mode == "SM4-CBC"
                           else st.sampled_from([16, 24, 32]).flatmap(
                               lambda n: st.binary(min_size=n, max_size=n))))


@settings(max_examples=40, deadline=None)
@given(_case, st.binary(max_size=300), st.integers(1, 64))
def test_round_trip_any_key_and_block_size(case, data, block):
    mode, key = case
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(crypto, "BLOCK_SIZE", block)
        enc = crypto.encrypt(data, key, mode)
        buf = io.BytesIO()
        assert crypto.write_encrypted(buf, data, key, mode) == len(enc) == len(buf.getvalue())
        blocks = list(crypto.iter_decrypt(io.BytesIO(enc), key, mode))
    assert crypto.decrypt(enc, key, mode) == data == crypto.decrypt(buf.getvalue(), key, mode)
    assert len(blocks) == -(-len(data) // block) and all(len(b) <= block for b in blocks)
    assert crypto.decrypt_file(io.BytesIO(buf.getvalue()), key, mode) == data


class _Stream(io.RawIOBase):
    """A non-seekable binary stream (a pipe) that returns at most 7 bytes per read."""

    def __init__(self, data):
        self._data = io.BytesIO(data)

    def readable(self):
        return True

    def readinto(self, b):                  # short reads, as a pipe gives
        return self._data.readinto(memoryview(b)[:7])


def test_non_seekable_stream_and_empty_plaintext(plain):
    enc = crypto.encrypt(plain, KEY, "SM4-CBC")
    assert crypto.decrypt_file(_Stream(enc), KEY, "SM4-CBC") == plain
    assert b"".join(crypto.iter_decrypt(_Stream(enc), KEY, "SM4-CBC")) == plain
    with pytest.raises(CheckpointError, match="truncated"):
        crypto.decrypt_file(_Stream(enc[:-7]), KEY, "SM4-CBC")
    assert crypto.encrypt(b"", KEY) == b"" and crypto.decrypt(b"", KEY) == b""  # as MindSpore


@pytest.mark.parametrize("mode", FIXTURES)
def test_wrong_key_or_mode(fixtures_dir, mode):
    path = fixtures_dir / FIXTURES[mode]
    data = path.read_bytes()
    with pytest.raises(CheckpointError, match="wrong dec_key or dec_mode") as info:
        crypto.decrypt(data, b"0123456789abcdeX", mode, file=path)
    assert info.value.file == str(path)
    other = "AES-CBC" if mode == "AES-GCM" else "AES-GCM"
    with pytest.raises(CheckpointError, match=f"wrong dec_mode: the file is encrypted with {mode}"):
        crypto.decrypt(data, KEY, other)
    if mode != "SM4-CBC":       # SM4 keys are 16 bytes only
        with pytest.raises(CheckpointError, match="wrong dec_key"):
            crypto.decrypt(data, KEY + b"01234567", mode)


def _patched(data, offset, fmt, value):
    data = bytearray(data)
    struct.pack_into(fmt, data, offset, value)
    return bytes(data)


def test_damaged_files_raise_checkpoint_error(fixtures_dir, plain):
    gcm = (fixtures_dir / FIXTURES["AES-GCM"]).read_bytes()
    cbc = (fixtures_dir / FIXTURES["AES-CBC"]).read_bytes()
    flipped = bytearray(gcm)
    flipped[200] ^= 1
    cases = [
        (gcm, "AES-GCM", bytes(flipped), "GCM tag mismatch"),
        (gcm, "AES-GCM", _patched(gcm, 4, "<B", gcm[4] ^ 1), "GCM tag mismatch"),
        (gcm, "AES-GCM", gcm[:-1], "truncated"),
        (gcm, "AES-GCM", gcm[:30], "truncated"),
        (gcm, "AES-GCM", gcm[:2], "truncated"),
        (gcm, "AES-GCM", gcm + b"\x01", "truncated"),
        (gcm, "AES-GCM", gcm + b"crc_num" + bytes(10), "crc_num' trailer"),
        (gcm, "AES-GCM", gcm + bytes(8), "bad block magic"),
        (gcm, "AES-GCM", _patched(gcm, 20, "<i", 2**31 - 1), "declares length"),
        (gcm, "AES-GCM", _patched(gcm, 20, "<i", -5), "declares length"),
        (gcm, "AES-GCM", _patched(gcm, 24, "<i", 12), "IV length 12"),
        (gcm, "AES-GCM", _patched(gcm, 44, "<i", 2**31 - 1), "impossible ciphertext length"),
        (gcm, "AES-GCM", _patched(gcm, 44, "<i", -1), "impossible ciphertext length"),
        (gcm, "AES-GCM", _patched(gcm, 44, "<i", 1000), "declares length"),
        (cbc, "AES-CBC", _patched(cbc, 28, "<i", 247023), "impossible ciphertext length"),
        (cbc, "AES-CBC", cbc[:-16], "truncated"),
        (plain, "AES-GCM", plain, "not an encrypted checkpoint"),
        (cbc, "AES-CBC", cbc[:-32] + bytes(16) + cbc[-16:], "bad PKCS#7 padding"),
    ]
    for _, mode, data, cause in cases:
        with pytest.raises(CheckpointError, match=cause) as info:
            crypto.decrypt(data, KEY, mode, file="x.ckpt")
        assert info.value.file == "x.ckpt"


def test_bad_keys_and_modes():
    for key, mode, param, cause in [
        (b"0123456789", "AES-GCM", "enc_key", "16 or 24 or 32 bytes long, got 10"),
        (b"0" * 64, "AES-CBC", "enc_key", "got 64"),
        (b"0" * 32, "SM4-CBC", "enc_key", "must be 16 bytes long, got 32"),
        ("0123456789abcdef", "AES-GCM", "enc_key", "must be bytes, got str"),
        (KEY, "aes-gcm", "enc_mode", "MindSpore's spelling"),
        (KEY, "SM4-GCM", "enc_mode", "'AES-GCM', 'AES-CBC', 'SM4-CBC'"),
    ]:
        with pytest.raises(CheckpointError, match=f"{param}.*{cause}"):
            crypto.encrypt(b"abc", key, mode)
        dec_param = param.replace("enc_", "dec_")
        with pytest.raises(CheckpointError, match=f"{dec_param}.*{cause}"):
            crypto.decrypt(b"", key, mode, file="f.ckpt")


@requires_mindspore
def test_mindspore_loads_our_encrypted_files(plain, tmp_path, monkeypatch):
    files = {}
    for mode, key in [("AES-GCM", KEY), ("AES-CBC", KEY), ("SM4-CBC", KEY),
                      ("AES-GCM", b"k" * 24), ("AES-CBC", b"k" * 32)]:
        path = tmp_path / f"{mode}_{len(key)}.ckpt"
        path.write_bytes(crypto.encrypt(plain, key, mode))
        files[str(path)] = (key, mode)
    monkeypatch.setattr(crypto, "BLOCK_SIZE", 100_000)      # three blocks, as a >64 MiB file has
    for mode in ("AES-GCM", "SM4-CBC"):
        path = tmp_path / f"{mode}_blocks.ckpt"
        with open(path, "wb") as f:
            crypto.write_encrypted(f, plain, KEY, mode)
        files[str(path)] = (KEY, mode)
    out = run_mindspore(f"""
        want = ms.load_checkpoint(FIXTURES + "/lenet5.ckpt")
        for i, (path, (key, mode)) in enumerate({files!r}.items()):
            got = ms.load_checkpoint(path, dec_key=key, dec_mode=mode)
            assert list(got) == list(want), (path, list(got))
            outputs[f"same{{i}}"] = np.array(all(
                np.array_equal(got[k].asnumpy(), want[k].asnumpy()) for k in want))
            try:
                ms.load_checkpoint(path, dec_key=b"0123456789abcdeX", dec_mode=mode)
                outputs[f"wrong{{i}}"] = np.array("loaded")
            except ValueError as e:
                outputs[f"wrong{{i}}"] = np.array(type(e).__name__ + ": " + str(e))
    """)
    for i in range(len(files)):
        assert out[f"same{i}"], list(files)[i]
        assert str(out[f"wrong{i}"]).startswith("ValueError: Failed to read the checkpoint file")
