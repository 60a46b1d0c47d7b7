"""Encrypted MINDIR, byte-compatible with MindSpore 2.10 both ways.

One MindSpore subprocess exports LeNet5 (lenet5.ckpt weights) encrypted with AES-GCM, AES-CBC,
SM4-CBC and a custom function, runs msjax's encrypted exports of the same network through
``mindspore.load(dec_key=, dec_mode=)`` + ``nn.GraphCell``, and records which exception type
MindSpore raises for each wrong key / missing key / wrong mode / bad argument case; msjax must
run MindSpore's files to MindSpore's output and raise the same exception types, naming the file.
"""
import builtins
import inspect
import os
import re
import struct

import numpy as np
import pytest
from oracle import FIXTURES, requires_mindspore, run_mindspore

import msjax
from msjax_exporters.mindir_crypto import MindIRDecryptError
from msjax import nn
from msjax.checkpoint import crypto
from msjax.common.tensor import Tensor
from msjax.errors import ExportError
from msjax.models import LeNet5

KEY = b"0123456789abcdef"
MODES = ("AES-GCM", "AES-CBC", "SM4-CBC")
TAGS = MODES + ("custom",)
X = np.random.default_rng(0).normal(size=(2, 1, 32, 32)).astype(np.float32)


# the custom pair: MindSpore calls enc_mode(model_bytes, key) and dec_mode(file_name, key)
def xor(data, key):
    return bytes(b ^ key[i % len(key)] for i, b in enumerate(data))


def xor_dec(path, key):
    with open(path, "rb") as f:
        return xor(f.read(), key)


def garbage_dec(path, key):
    return b"\xff" * 16


_HELPERS = "\n\n".join(inspect.getsource(f) for f in (xor, xor_dec, garbage_dec))

# load cases: name -> (file stem, load kwargs as an expression over KEY / xor_dec / garbage_dec)
LOAD_CASES = {
    **{f"wrong_key_{m}": (f"ms_{m}", f"dict(dec_key=b'X' * 16, dec_mode={m!r})") for m in MODES},
    **{f"missing_key_{m}": (f"ms_{m}", "dict()") for m in MODES},
    "mode_without_key": ("ms_AES-GCM", "dict(dec_mode='AES-GCM')"),
    "wrong_mode_gcm_as_cbc": ("ms_AES-GCM", "dict(dec_key=KEY, dec_mode='AES-CBC')"),
    "wrong_mode_sm4_as_gcm": ("ms_SM4-CBC", "dict(dec_key=KEY)"),
    "unknown_mode": ("ms_AES-GCM", "dict(dec_key=KEY, dec_mode='AES-XTS')"),
    "short_key": ("ms_AES-GCM", "dict(dec_key=b'12345', dec_mode='AES-GCM')"),
    "plain_with_key": ("ms_plain", "dict(dec_key=KEY)"),
    "key_is_str": ("ms_AES-GCM", "dict(dec_key=KEY.decode())"),
    "key_is_none": ("ms_AES-GCM", "dict(dec_key=None)"),
    "mode_is_int": ("ms_AES-GCM", "dict(dec_key=KEY, dec_mode=3)"),
    "custom_gives_garbage": ("ms_custom", "dict(dec_key=KEY, dec_mode=garbage_dec)"),
    "named_mode_on_custom_file": ("ms_custom", "dict(dec_key=KEY, dec_mode='AES-CBC')"),
    # msjax's files, as MindSpore sees them
    "ours_wrong_key_gcm": ("mj_AES-GCM", "dict(dec_key=b'Y' * 16)"),
    "ours_missing_key_cbc": ("mj_AES-CBC", "dict()"),
    "ours_wrong_mode_sm4": ("mj_SM4-CBC", "dict(dec_key=KEY, dec_mode='AES-CBC')"),
}
# export cases: name -> (file_format, export kwargs expression)
EXPORT_CASES = {
    "key_is_str": ("MINDIR", "dict(enc_key=KEY.decode())"),
    "key_is_none": ("MINDIR", "dict(enc_key=None)"),
    "key_is_bytearray": ("MINDIR", "dict(enc_key=bytearray(KEY))"),
    "unknown_mode": ("MINDIR", "dict(enc_key=KEY, enc_mode='AES-XTS')"),
    "mode_is_int": ("MINDIR", "dict(enc_key=KEY, enc_mode=3)"),
    "short_key": ("MINDIR", "dict(enc_key=b'12345', enc_mode='AES-GCM')"),
    "sm4_key_32": ("MINDIR", "dict(enc_key=b'k' * 32, enc_mode='SM4-CBC')"),
    "mode_without_key": ("MINDIR", "dict(enc_mode='AES-CBC')"),
    "onnx_named_mode": ("ONNX", "dict(enc_key=KEY, enc_mode='AES-GCM')"),
}

_MS_CODE = '''
import builtins
from ms_models import LeNet5

KEY, MODES, d = {KEY!r}, {MODES!r}, str(inputs["dir"])
LOAD_CASES, EXPORT_CASES = {LOAD_CASES!r}, {EXPORT_CASES!r}
net = LeNet5()
ms.load_param_into_net(net, ms.load_checkpoint(os.path.join(FIXTURES, "lenet5.ckpt")))
net.set_train(False)
x = ms.Tensor(inputs["x"])
outputs["ms_out"] = net(x).asnumpy()
ms.export(net, x, file_name=os.path.join(d, "ms_plain"), file_format="MINDIR")
for m in MODES:
    ms.export(net, x, file_name=os.path.join(d, "ms_" + m), file_format="MINDIR", enc_key=KEY, enc_mode=m)
ms.export(net, x, file_name=os.path.join(d, "ms_custom"), file_format="MINDIR", enc_key=KEY, enc_mode=xor)
for tag, kw in [(m, dict(dec_key=KEY, dec_mode=m)) for m in MODES] + [("custom", dict(dec_key=KEY, dec_mode=xor_dec))]:
    outputs["ms_runs_mj_" + tag] = nn.GraphCell(ms.load(os.path.join(d, "mj_" + tag + ".mindir"), **kw))(x).asnumpy()


def outcome(fn):
    try:
        fn()
    except Exception as exc:
        assert type(exc).__name__ in dir(builtins), exc
        return type(exc).__name__
    return "ok"


for name, (stem, expr) in LOAD_CASES.items():
    outputs["load|" + name] = np.array(outcome(lambda: ms.load(os.path.join(d, stem + ".mindir"), **eval(expr))))
for name, (fmt, expr) in EXPORT_CASES.items():
    outputs["export|" + name] = np.array(outcome(lambda: ms.export(
        net, x, file_name=os.path.join(d, "ms_bad_" + name), file_format=fmt, **eval(expr))))
'''


def _net():
    net = LeNet5()
    assert msjax.load_param_into_net(net, msjax.load_checkpoint(str(FIXTURES / "lenet5.ckpt"))) == ([], [])
    net.set_train(False)
    return net


def _enc_kwargs(tag):
    return {"enc_key": KEY, "enc_mode": xor if tag == "custom" else tag}


def _dec_kwargs(tag):
    return {"dec_key": KEY, "dec_mode": xor_dec if tag == "custom" else tag}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """msjax's encrypted exports, then one MindSpore run over them and its own exports."""
    d = tmp_path_factory.mktemp("encrypted_mindir")
    net = _net()
    ours = np.asarray(net(Tensor(X)))
    msjax.export(net, Tensor(X), file_name=str(d / "mj_plain"), file_format="MINDIR")
    for tag in TAGS:
        msjax.export(net, Tensor(X), file_name=str(d / f"mj_{tag}"), file_format="MINDIR", **_enc_kwargs(tag))
    code = _HELPERS + _MS_CODE.format(KEY=KEY, MODES=MODES, LOAD_CASES=LOAD_CASES, EXPORT_CASES=EXPORT_CASES)
    ms = run_mindspore(code, {"x": X, "dir": np.array(str(d))})
    return d, net, ours, ms


def _blocks(data, mode):
    """(magic, block_len, iv_len, cipher_len) of each block: the framing as written."""
    gcm, out, pos = mode == "AES-GCM", [], 0
    while pos < len(data):
        magic, = struct.unpack_from("<I", data, pos)
        pos += 4 + (16 if gcm else 0)
        block_len, iv_len = struct.unpack_from("<ii", data, pos)
        cipher_len, = struct.unpack_from("<i", data, pos + 8 + iv_len)
        out.append((magic, block_len, iv_len, cipher_len))
        pos += 4 + block_len
    assert pos == len(data)
    return out


# ------------------------------------------------------------------ (1) MindSpore's files, run by msjax
@requires_mindspore
@pytest.mark.parametrize("tag", TAGS)
def test_msjax_runs_mindspores_encrypted_mindir(world, tag):
    d, _, _, ms = world
    cell = nn.GraphCell(msjax.load(str(d / f"ms_{tag}.mindir"), **_dec_kwargs(tag)))
    got = np.asarray(cell(Tensor(X)))
    assert got.shape == ms["ms_out"].shape == (2, 10)
    np.testing.assert_allclose(got, ms["ms_out"], rtol=1e-5, atol=1e-5)


@requires_mindspore
@pytest.mark.parametrize("mode", MODES)
def test_mindspore_encrypts_the_whole_model_proto_in_checkpoint_framing(world, mode):
    """The file is crypto's framing of MindSpore's plain export, every byte, nothing else."""
    d, _, _, _ = world
    plain, data = (d / "ms_plain.mindir").read_bytes(), (d / f"ms_{mode}.mindir").read_bytes()
    assert crypto.is_encrypted(data[:4]) == mode
    assert crypto.decrypt(data, KEY, mode) == plain
    (magic, block_len, iv_len, cipher_len), = _blocks(data, mode)       # < 64 MiB: one block
    assert (magic, iv_len, block_len) == (crypto.MODES[mode].magic, 16, 4 + 16 + 4 + cipher_len)
    assert cipher_len == (len(plain) if mode == "AES-GCM" else (len(plain) // 16 + 1) * 16)
    assert xor((d / "ms_custom.mindir").read_bytes(), KEY) == plain    # enc_mode's result, as is


# ------------------------------------------------------------------ (2) msjax's files, run by MindSpore
@requires_mindspore
@pytest.mark.parametrize("tag", TAGS)
def test_mindspore_runs_msjaxs_encrypted_mindir(world, tag):
    _, _, ours, ms = world
    np.testing.assert_allclose(ms[f"ms_runs_mj_{tag}"], ours, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_msjax_file_is_its_plain_export_encrypted(world, mode):
    d, _, ours, _ = world
    plain, data = (d / "mj_plain.mindir").read_bytes(), (d / f"mj_{mode}.mindir").read_bytes()
    assert crypto.decrypt(data, KEY, mode) == plain
    (magic, _, iv_len, cipher_len), = _blocks(data, mode)
    assert (magic, iv_len) == (crypto.MODES[mode].magic, 16)
    assert len(data) == len(plain) + {"AES-GCM": 48}.get(mode, 32 + cipher_len - len(plain))
    assert os.stat(d / f"mj_{mode}.mindir").st_mode & 0o777 == 0o400           # read-only, as MindSpore
    cell = nn.GraphCell(msjax.load(str(d / f"mj_{mode}.mindir"), dec_key=KEY, dec_mode=mode))
    np.testing.assert_allclose(np.asarray(cell(Tensor(X))), ours, rtol=1e-6, atol=1e-6)


def test_custom_functions_get_bytes_on_export_and_the_file_name_on_load(world, tmp_path):
    d, net, _, _ = world
    assert xor((d / "mj_custom.mindir").read_bytes(), KEY) == (d / "mj_plain.mindir").read_bytes()
    seen = []
    msjax.load(str(d / "mj_custom.mindir"), dec_key=KEY, dec_mode=lambda *a: seen.append(a) or xor_dec(*a))
    assert seen == [(os.path.realpath(d / "mj_custom.mindir"), KEY)]
    with pytest.raises(TypeError, match="must return bytes"):
        msjax.export(net, Tensor(X), file_name=str(tmp_path / "s"), file_format="MINDIR", enc_key=KEY,
                     enc_mode=lambda data, key: "not bytes")
    with pytest.raises(ZeroDivisionError):           # the function's own errors stay its own
        msjax.load(str(d / "mj_custom.mindir"), dec_key=KEY, dec_mode=lambda p, k: 1 / 0)


# ------------------------------------------------------------------ (3) the same exception types
def _ours(fn):
    try:
        fn()
    except Exception as exc:                         # noqa: BLE001  (compared with MindSpore's)
        return exc
    return None


@requires_mindspore
@pytest.mark.parametrize("name", LOAD_CASES)
def test_load_errors_match_mindspore(world, name):
    d, _, _, ms = world
    stem, expr = LOAD_CASES[name]
    path = str(d / f"{stem}.mindir")
    want = str(ms[f"load|{name}"])
    exc = _ours(lambda: msjax.load(path, **eval(expr)))
    if want == "ok":
        assert exc is None, exc
        return
    assert want in ("RuntimeError", "ValueError"), want
    assert isinstance(exc, getattr(builtins, want)), (want, repr(exc))
    assert isinstance(exc, ExportError) and exc.file == path and path in str(exc), repr(exc)
    # MindSpore's RuntimeError cases are decryption failures; its ValueErrors are argument types
    assert isinstance(exc, MindIRDecryptError) == (want == "RuntimeError"), repr(exc)


def test_load_error_messages_say_what_to_do(world):
    d, _, _, _ = world
    gcm, sm4, plain = (str(d / f"ms_{s}.mindir") for s in ("AES-GCM", "SM4-CBC", "plain"))
    cases = [(gcm, {}, "is encrypted (AES-GCM); load it with dec_key"),
             (sm4, {"dec_key": b"X" * 16, "dec_mode": "SM4-CBC"}, "wrong dec_key or dec_mode"),
             (gcm, {"dec_key": b"X" * 16}, "GCM tag mismatch"),
             (gcm, {"dec_key": KEY, "dec_mode": "SM4-CBC"}, "encrypted with AES-GCM, but dec_mode is 'SM4-CBC'"),
             (plain, {"dec_key": KEY}, "not an encrypted MINDIR file"),
             (gcm, {"dec_key": b"1" * 20}, "16, 24 or 32 bytes long, got 20")]
    for path, kwargs, phrase in cases:
        with pytest.raises(MindIRDecryptError, match=re.escape(phrase)) as info:
            msjax.load(path, **kwargs)
        assert str(info.value).startswith(path + ": ")


@requires_mindspore
@pytest.mark.parametrize("name", EXPORT_CASES)
def test_export_errors_match_mindspore(world, tmp_path, name):
    _, net, _, ms = world
    fmt, expr = EXPORT_CASES[name]
    want = str(ms[f"export|{name}"])
    exc = _ours(lambda: msjax.export(net, Tensor(X), file_name=str(tmp_path / "e"), file_format=fmt, **eval(expr)))
    if want == "ok":
        assert exc is None, exc
        msjax.load(str(tmp_path / "e.mindir"))        # enc_mode without enc_key: a plain file
        return
    assert want == "ValueError", want
    assert isinstance(exc, ExportError), repr(exc)   # ExportError is a ValueError
    assert not os.listdir(tmp_path), os.listdir(tmp_path)   # refused before writing (MindSpore: an empty file)
