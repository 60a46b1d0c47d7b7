"""read_torch_state_dict trusts no file: every crafted defect is a CheckpointError naming the file
and the cause, never another exception, a hang, or memory out of proportion to the file.

The files are built here without torch: a tiny pickle assembler writes the opcodes torch.save
writes (checked against real torch files in test_torch_format.py), and zipfile packs them.
"""
import pickle
import random
import struct
import time
import zipfile

import numpy as np
import pytest

from msjax.checkpoint import torch_format
from msjax.checkpoint.torch_format import (
    read_torch_state_dict,
    torch_to_mindspore_names,
)
from msjax.errors import CheckpointError

# ---------------------------------------------------------------- a pickle assembler (protocol 2)


def s(text):
    """BINUNICODE"""
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def i(n):
    """BININT, or LONG1 for ints outside int32"""
    if -2**31 <= n < 2**31:
        return b"J" + struct.pack("<i", n)
    raw = pickle.encode_long(n)
    return b"\x8a" + bytes([len(raw)]) + raw


def glob(module, name):
    return b"c" + f"{module}\n{name}\n".encode()


def tup(*items):
    return b"(" + b"".join(items) + b"t"


def pid(key, numel, storage="FloatStorage"):
    """a persistent id as torch writes it, loaded with BINPERSID"""
    return tup(s("storage"), glob("torch", storage), s(key), s("cpu"), i(numel)) + b"Q"


def tensor(key, numel, offset, size, stride, storage="FloatStorage", persistent=None):
    args = tup(persistent or pid(key, numel, storage), i(offset), tup(*map(i, size)),
               tup(*map(i, stride)), b"\x89", glob("collections", "OrderedDict") + b")R")
    return glob("torch._utils", "_rebuild_tensor_v2") + args + b"R"


def state_dict(**items):
    """a plain dict of name -> tensor opcodes, as torch.save({...}) writes it"""
    return b"\x80\x02}(" + b"".join(s(k) + v for k, v in items.items()) + b"u."


def bomb(levels=100):
    """a tuple whose hash (and repr) costs 2**levels: t[k+1] = (t[k], t[k]) through the memo"""
    ops = b")q\x000"
    for k in range(levels):
        ops += b"h" + bytes([k]) + b"h" + bytes([k]) + b"\x86q" + bytes([k + 1]) + b"0"
    return ops + b"h" + bytes([levels])


# ---------------------------------------------------------------- zip files

FLOATS = np.arange(6, dtype=np.float32)


def write_pth(path, pkl, storages=None, root="archive", deflate=()):
    storages = {"0": FLOATS.tobytes()} if storages is None else storages
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in [("data.pkl", pkl), ("byteorder", b"little"),
                           *((f"data/{k}", v) for k, v in storages.items())]:
            method = zipfile.ZIP_DEFLATED if name in deflate else zipfile.ZIP_STORED
            zf.writestr(f"{root}/{name}", data, compress_type=method)
    return path


def base_pickle():
    return state_dict(w=tensor("0", 6, 0, (2, 3), (3, 1)), t=tensor("0", 6, 0, (3, 2), (1, 3)),
                      tail=tensor("0", 6, 4, (2,), (1,)), one=tensor("0", 6, 5, (), ()))


def headers(data, name):
    """offsets of ``name``'s central and local headers in zip bytes"""
    raw, pos = name.encode(), 0
    while (pos := data.find(b"PK\x01\x02", pos)) >= 0:
        nlen, = struct.unpack_from("<H", data, pos + 28)
        if data[pos + 46:pos + 46 + nlen] == raw:
            return pos, struct.unpack_from("<I", data, pos + 42)[0]
        pos += 4
    raise AssertionError(f"{name} not in the archive")


def patch(path, name, *, central=(), local=()):
    """overwrite (offset, struct format, value) fields of an entry's central and local headers"""
    data = bytearray(path.read_bytes())
    cpos, lpos = headers(data, name)
    for base, fields in ((cpos, central), (lpos, local)):
        for offset, fmt, value in fields:
            struct.pack_into(fmt, data, base + offset, value)
    path.write_bytes(bytes(data))
    return path


def assert_refused(path, *phrases):
    with pytest.raises(CheckpointError) as info:
        read_torch_state_dict(path)
    message = str(info.value)
    assert path.name in message
    for phrase in phrases:
        assert phrase in message, message
    return message


@pytest.fixture
def pth(tmp_path):
    return tmp_path / "hostile.pth"


def test_crafted_base_file_loads(pth):
    """The assembler writes what the reader accepts, so each refusal below is the defect's."""
    state = read_torch_state_dict(write_pth(pth, base_pickle()))
    np.testing.assert_array_equal(state["w"], FLOATS.reshape(2, 3))
    np.testing.assert_array_equal(state["t"], FLOATS.reshape(2, 3).T)
    np.testing.assert_array_equal(state["tail"], FLOATS[4:])
    assert state["one"].shape == () and state["one"] == 5


# ---------------------------------------------------------------- strides, sizes, offsets


def test_negative_stride_is_refused(pth):
    """as_strided with a negative stride read 400 kB before the buffer (SIGSEGV or heap bytes)."""
    assert_refused(write_pth(pth, state_dict(w=tensor("0", 6, 0, (2,), (-100000,)))),
            "tensor 'w' has a negative stride", "[-100000]")
    ok = read_torch_state_dict(write_pth(pth, state_dict(w=tensor("0", 6, 2, (1, 2), (-5, 1)))))
    np.testing.assert_array_equal(ok["w"], FLOATS[2:4].reshape(1, 2))   # as torch: n == 1 ignores it


def test_expanded_view_is_refused_before_allocating(pth):
    """stride 0 made 2 GiB out of one float in a 690-byte file."""
    pkl = state_dict(w=tensor("0", 1, 0, (1 << 15, 1 << 14), (0, 0)))
    message = assert_refused(write_pth(pth, pkl, {"0": FLOATS[:1].tobytes()}), "536870912 elements",
                      "holds only 1", ".contiguous()")
    assert pth.stat().st_size < 1000, message


@pytest.mark.parametrize("offset, size", [(-1, (2,)), (-1, ()), (6, ()), (5, (2,)), (7, (0,))])
def test_offset_outside_the_storage_is_refused(pth, offset, size):
    """a negative offset wrapped around; a 0-d tensor's offset was not checked at all."""
    stride = (1,) * len(size)
    assert_refused(write_pth(pth, state_dict(w=tensor("0", 6, offset, size, stride))), f"offset {offset}")


@pytest.mark.parametrize("size, stride, phrase", [
    ((2.0,), (1,), "size must be a tuple of ints"),
    ((True,), (1,), "size must be a tuple of ints"),
    ((2,), ("1",), "stride must be a tuple of ints"),
    ((2, 3), (1,), "2 sizes but 1 strides"),
    ((1,) * 65, (1,) * 65, "65 dims"),
    ((-2,), (1,), "tensor 'w' has a negative size"),
    ((1 << 70,), (1,), "size holds an int of 71 bits, outside int64"),
    ((1, 2), (1 << 62, 1), None),            # a size-1 dim's stride is irrelevant: loads
])
def test_size_and_stride_are_checked(pth, size, stride, phrase):
    def op(v):
        return i(v) if type(v) is int else s(v) if isinstance(v, str) else (
            b"G" + struct.pack(">d", v) if isinstance(v, float) else b"\x88")
    args = tup(pid("0", 6), i(0), tup(*map(op, size)), tup(*map(op, stride)), b"\x89",
               glob("collections", "OrderedDict") + b")R")
    path = write_pth(pth, state_dict(w=glob("torch._utils", "_rebuild_tensor_v2") + args + b"R"))
    if phrase is None:
        np.testing.assert_array_equal(read_torch_state_dict(path)["w"], FLOATS[:2].reshape(1, 2))
    else:
        assert_refused(path, phrase)


@pytest.mark.parametrize("persistent, phrase", [
    (b"K\x07Q", "persistent id"),
    (tup(s("storage"), glob("torch", "FloatStorage"), s("0")) + b"Q", "persistent id"),
    (tup(s("storage"), s("FloatStorage"), s("0"), s("cpu"), i(6)) + b"Q", "storage type"),
    (tup(s("storage"), glob("torch", "FloatStorage"), i(0), s("cpu"), i(6)) + b"Q", "storage key"),
    (tup(s("storage"), glob("torch", "FloatStorage"), s("../0"), s("cpu"), i(6)) + b"Q", "storage key"),
    (tup(s("storage"), glob("torch", "FloatStorage"), s("0"), s("cpu"), i(-1)) + b"Q", "element count -1"),
    (tup(s("storage"), glob("torch", "FloatStorage"), s("9"), s("cpu"), i(6)) + b"Q", "missing"),
    (tup(bomb(), glob("torch", "FloatStorage"), s("0"), s("cpu"), i(6)) + b"Q", "persistent id"),
], ids=["int", "3 items", "type is a str", "int key", "key with a slash", "negative numel", "missing",
        "hash bomb"])
def test_persistent_id_shape_is_checked(pth, persistent, phrase):
    message = assert_refused(write_pth(pth, state_dict(w=tensor("0", 6, 0, (2,), (1,), persistent=persistent))),
                      phrase)
    assert len(message) < 400


def test_storage_bytes_must_match_declared_numel(pth):
    assert_refused(write_pth(pth, state_dict(w=tensor("0", 8, 0, (8,), (1,)))), "storage 0",
            "24 bytes", "8 elements of FloatStorage (32 bytes)")


def test_one_storage_with_two_dtypes_is_refused(pth):
    pkl = state_dict(a=tensor("0", 6, 0, (6,), (1,)), b=tensor("0", 3, 0, (3,), (1,), "LongStorage"))
    assert_refused(write_pth(pth, pkl, {"0": FLOATS.tobytes()}), "storage 0", "FloatStorage", "LongStorage")


def test_storage_must_be_a_storage(pth):
    rebuild = glob("torch._utils", "_rebuild_tensor_v2")
    pkl = state_dict(w=rebuild + tup(s("not a storage"), i(0), tup(i(1)), tup(i(1))) + b"R")
    assert_refused(write_pth(pth, pkl), "storage", "str")


def test_copies_beyond_the_files_size_are_refused(pth):
    """Each rebuild of a transposed view copies its storage: 200 of them stay in proportion to the file."""
    big = np.zeros(64 * 64, np.float32)
    rebuild = glob("torch._utils", "_rebuild_tensor_v2") + b"q\x05"
    args = tup(pid("0", big.size), i(0), tup(i(64), i(64)), tup(i(1), i(64))) + b"q\x06"
    again = {f"t{k}": b"h\x05h\x06R" for k in range(1, 200)}     # the same call, 4 bytes each
    pkl = state_dict(t0=rebuild + args + b"R", **again)
    assert_refused(write_pth(pth, pkl, {"0": big.tobytes()}), "copies", ".contiguous()")


# ---------------------------------------------------------------- the pickle


@pytest.mark.parametrize("ops, phrase", [
    (b"}" + bomb() + b"K\x01s.", "dict key"),                       # SETITEM
    (b"}(" + bomb() + b"K\x01u.", "dict key"),                      # SETITEMS
    (b"(" + bomb() + b"K\x01d.", "dict key"),                       # DICT (protocol 0)
    (b"\x8f(" + bomb() + b"\x90.", "set item"),                     # ADDITEMS
    (b"(" + bomb() + b"\x91.", "set item"),                         # FROZENSET
    (glob("collections", "OrderedDict") + b"]" + bomb() + b"K\x01\x86a\x85R.", "OrderedDict"),
    (b"]" + bomb() + b"K\x01s.", "SETITEM"),                        # item assignment on a list
])
def test_hash_bomb_keys_are_refused_before_hashing(pth, ops, phrase):
    """hashing a tuple of shared tuples costs 2**100: such a key used to hang the reader."""
    start = time.perf_counter()
    assert_refused(write_pth(pth, b"\x80\x04" + ops), phrase)
    assert time.perf_counter() - start < 2


def test_build_is_only_accepted_as_state_dict_metadata(pth):
    """torch writes BUILD to attach _metadata to an OrderedDict; on anything else it is refused."""
    ok = glob("collections", "OrderedDict") + b")R(" + s("w") + tensor("0", 6, 0, (6,), (1,)) + b"u}" \
        + s("_metadata") + b"}s" + b"b."
    assert list(read_torch_state_dict(write_pth(pth, b"\x80\x02" + ok))) == ["w"]
    bad = b"\x80\x02}(" + s("w") + tensor("0", 6, 0, (6,), (1,)) + b"}" + s("shape") + b"Kds" + b"bu."
    assert_refused(write_pth(pth, bad), "BUILD")


def test_deep_marks_are_refused(pth):
    assert_refused(write_pth(pth, b"\x80\x02" + b"(" * 100_000 + b"."), "nested", "marks")


@pytest.mark.parametrize("op", [b"}", b"]", b"\x8f", b"\x85", b"\x94"])
def test_pickle_bomb_is_refused_in_proportion(pth, op):
    """One byte builds a 64-byte dict (or list, set, 1-tuple, memo slot): 200k of them are
    refused before ~32x the pickle's size is built."""
    assert_refused(write_pth(pth, b"\x80\x04N" + op * 200_000 + b"."), "pickle bomb", "32x")


def test_oversized_pickle_is_refused(pth, monkeypatch):
    monkeypatch.setattr(torch_format, "MAX_PICKLE_BYTES", 100)
    assert_refused(write_pth(pth, base_pickle()), "data.pkl", "more than 100 bytes")


def test_self_referential_dict_is_refused(pth):
    """{'state_dict': itself} made _find_state_dict recurse until RecursionError."""
    assert_refused(write_pth(pth, b"\x80\x02}q\x00" + s("state_dict") + b"h\x00s."), "refers to itself")


def test_deeply_nested_state_dicts_are_refused(pth):
    ops = b"".join(b"}" + s("state_dict") for _ in range(200)) + b"}" + b"s" * 200 + b"."
    assert_refused(write_pth(pth, b"\x80\x02" + ops), "nested more than")


# ---------------------------------------------------------------- the zip archive


def test_truncated_archive_is_refused(pth):
    write_pth(pth, base_pickle())
    pth.write_bytes(pth.read_bytes()[:300])
    assert_refused(pth, "not a zip archive")


def test_invalid_utf8_entry_name_is_refused(pth):
    """UnicodeDecodeError escaped from ZipFile() for a UTF-8-flagged name that is not UTF-8."""
    write_pth(pth, base_pickle(), root="arch\u00e9")
    pth.write_bytes(pth.read_bytes().replace("\u00e9".encode(), b"\xff\xfe"))
    assert_refused(pth, "not valid UTF-8")


def test_unknown_compression_method_is_refused(pth):
    """NotImplementedError escaped from ZipFile.open."""
    write_pth(pth, base_pickle())
    patch(pth, "archive/data.pkl", central=[(10, "<H", 99)], local=[(8, "<H", 99)])
    assert_refused(pth, "archive/data.pkl", "compression method 99")


def test_encrypted_entry_is_refused(pth):
    """RuntimeError (password required) escaped from ZipFile.open."""
    write_pth(pth, base_pickle())
    patch(pth, "archive/data.pkl", central=[(8, "<H", 1)], local=[(6, "<H", 1)])
    assert_refused(pth, "archive/data.pkl", "encrypted")


def test_bad_local_header_is_refused(pth):
    """BadZipFile escaped from ZipFile.open."""
    write_pth(pth, base_pickle())
    patch(pth, "archive/data.pkl", local=[(0, "<I", 0x04034B51)])
    assert_refused(pth, "archive/data.pkl", "damaged", "magic")


def test_bad_crc_is_refused(pth):
    write_pth(pth, base_pickle())
    patch(pth, "archive/data.pkl", central=[(16, "<I", 1)])
    assert_refused(pth, "archive/data.pkl", "damaged", "CRC")


def test_corrupt_deflate_stream_is_refused(pth):
    """zlib.error escaped while reading a deflated entry."""
    write_pth(pth, base_pickle(), deflate=("data.pkl",))
    data = bytearray(pth.read_bytes())
    _, local = headers(data, "archive/data.pkl")
    data[local + 30 + len("archive/data.pkl")] = 0xFF     # BTYPE 11: an invalid deflate block
    pth.write_bytes(bytes(data))
    assert_refused(pth, "archive/data.pkl", "damaged")


def test_entry_past_the_end_of_the_archive_is_refused(pth):
    """EOFError escaped when an entry's declared bytes ran past the end of the file."""
    write_pth(pth, base_pickle())
    n = 1 << 20
    patch(pth, "archive/data.pkl", central=[(20, "<I", n), (24, "<I", n)],
          local=[(18, "<I", n), (22, "<I", n)])
    assert_refused(pth, "archive/data.pkl", "runs past the end")


def test_header_offset_past_the_end_is_refused(pth):
    """OverflowError/OSError escaped from seeking to an entry's absurd header offset."""
    write_pth(pth, base_pickle())
    patch(pth, "archive/data.pkl", central=[(42, "<I", 0xFFFFFF00)])
    assert_refused(pth, "archive/data.pkl")


def test_zip64_header_offset_past_the_end_is_refused(pth):
    """ValueError (cannot fit 'int' into an offset-sized integer) escaped for a zip64 offset of 2**63."""
    with zipfile.ZipFile(pth, "w") as zf:
        info = zipfile.ZipInfo("archive/data.pkl")
        info.extra = struct.pack("<HHQ", 1, 8, (1 << 63) + 5)    # zip64 extra: the header offset
        zf.writestr(info, base_pickle())
        zf.writestr("archive/data/0", FLOATS.tobytes())
    patch(pth, "archive/data.pkl", central=[(42, "<I", 0xFFFFFFFF)])
    assert_refused(pth, "archive/data.pkl", "runs past the end")


@pytest.mark.parametrize("pkl, phrase", [
    (b"\x80\x02}J\x01\x00", "unpack requires a buffer of 4 bytes (struct.error)"),   # truncated BININT
    (b"\x80\x02}", "ends before its STOP opcode"),
    (b"\x80\x02}\xff.", "unknown opcode 0xff"),
    (b"\x80\x02s.", "not a valid state-dict pickle: pop from empty list (IndexError)"),
])
def test_truncated_or_garbled_pickle_is_refused(pth, pkl, phrase):
    assert_refused(write_pth(pth, pkl), "data.pkl", phrase)


@pytest.mark.parametrize("entry", ["data.pkl", "data/0"])
def test_deflate_bomb_is_refused_before_reading(pth, entry):
    """A declared size deflate cannot reach from the compressed bytes: refused before reading."""
    n = 1 << 31
    pkl = state_dict(w=tensor("0", n // 4, 0, (4,), (1,)))
    write_pth(pth, pkl, {"0": bytes(4096)}, deflate=(entry,))
    patch(pth, f"archive/{entry}", central=[(24, "<I", n)], local=[(22, "<I", n)])
    assert_refused(pth, f"archive/{entry}", f"declares {n} bytes", "1032:1")


def test_stored_entry_size_mismatch_is_refused(pth):
    write_pth(pth, base_pickle())
    patch(pth, "archive/data.pkl", central=[(24, "<I", 1 << 30)], local=[(22, "<I", 1 << 30)])
    assert_refused(pth, "archive/data.pkl", "stored", f"declares {1 << 30} bytes")


def test_many_data_pkl_entries(pth):
    with zipfile.ZipFile(pth, "w") as zf:
        zf.writestr("a/data.pkl", base_pickle())
        zf.writestr("b/data.pkl", base_pickle())
    assert_refused(pth, "2 data.pkl entries")


# ---------------------------------------------------------------- mutations


def _mutate(rng, data):
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        kind, pos = rng.randrange(5), rng.randrange(len(data))
        if kind == 0:
            data[pos] ^= 1 << rng.randrange(8)
        elif kind == 1:
            data[pos] = rng.choice((0x00, 0x01, 0x7F, 0x80, 0xFF))
        elif kind == 2:
            data[pos:pos + 4] = struct.pack("<i", rng.choice((-1, -2**31, 2**31 - 1, 1 << 20, 0)))
        elif kind == 3:
            del data[pos:pos + rng.randint(1, 8)]
        else:
            data[pos:pos] = bytes(rng.choice(b"()tu}sRhqQ\x85\x86\x87KJ\x8a") for _ in range(rng.randint(1, 4)))
    return bytes(data)


def test_mutations_only_ever_raise_checkpoint_error(tmp_path):
    """A few hundred deterministic mutations of the pickle and of the zip bytes."""
    rng = random.Random(1234)
    pkl = base_pickle()
    zipped = write_pth(tmp_path / "base.pth", pkl).read_bytes()
    start, outcomes = time.perf_counter(), {"loaded": 0, "refused": 0}
    for case in range(400):
        path = tmp_path / f"m{case}.pth"
        if case % 2:
            write_pth(path, _mutate(rng, pkl), deflate=("data.pkl",) if case % 4 == 1 else ())
        else:
            path.write_bytes(_mutate(rng, zipped))
        try:
            read_torch_state_dict(path)
            outcomes["loaded"] += 1
        except CheckpointError as err:
            assert path.name in str(err)
            outcomes["refused"] += 1
        path.unlink()
    assert outcomes["refused"] > 200 and time.perf_counter() - start < 8, outcomes




# ---------------------------------------------------------------- names (the rename rule lives next door)


def test_layer_norm_renamed_by_shape_embedding_kept():
    """Given the state dict, a layer whose only parameters are a weight and a bias of one shape
    (LayerNorm, GroupNorm) gets gamma/beta; Embedding cannot be told from a bias-free Linear."""
    state = {"ln.weight": np.ones((4, 5)), "ln.bias": np.zeros((4, 5)), "fc.weight": np.ones((3, 3)),
             "fc.bias": np.ones(3), "emb.weight": np.ones((10, 4)), "head.weight": np.ones((2, 4)),
             "prelu.weight": np.ones(1), "bn.weight": np.ones(2), "bn.running_mean": np.ones(2)}
    assert torch_to_mindspore_names(state) == {
        "ln.weight": "ln.gamma", "ln.bias": "ln.beta", "fc.weight": "fc.weight", "fc.bias": "fc.bias",
        "emb.weight": "emb.weight", "head.weight": "head.weight", "prelu.weight": "prelu.weight",
        "bn.weight": "bn.gamma", "bn.running_mean": "bn.moving_mean"}
    assert torch_to_mindspore_names(list(state))["ln.weight"] == "ln.weight"   # names alone: no shapes
