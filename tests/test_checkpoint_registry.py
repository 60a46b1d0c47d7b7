"""One registry of formats (msjax/checkpoint/formats.py), one item layer (items.py), and every check
collecting all its problems before raising.

Each format sniffs its own files and none of the others'; read/write round-trip through the
registry; torch is read-only with a CheckpointError naming the file; a save names every unstorable
entry, and load_param_into_net every mismatching parameter, in one error whose first line is the
one-problem message MindSpore-parity tests pin.
"""
from __future__ import annotations

import collections
import zipfile

import numpy as np
import pytest

import msjax
from msjax.checkpoint import formats, items
from msjax.common.tensor import Parameter
from msjax.errors import CheckpointError, ParameterLoadError
from msjax.nn.cell import Cell

NAMED = collections.OrderedDict([("b.w", np.arange(6, dtype=np.float32).reshape(2, 3)),
                                 ("a.step", np.array(3, np.int64))])


def _files(tmp_path):
    """format name -> a path holding that format."""
    ckpt, st, enc = tmp_path / "n.ckpt", tmp_path / "n.safetensors", tmp_path / "e.ckpt"
    msjax.save_checkpoint(dict(NAMED), str(ckpt))
    msjax.save_checkpoint(dict(NAMED), str(st), format="safetensors")
    msjax.save_checkpoint(dict(NAMED), str(enc), enc_key=b"0123456789abcdef")
    formats.get("orbax").write(tmp_path / "orbax", NAMED, {})
    pth = tmp_path / "n.pth"
    with zipfile.ZipFile(pth, "w") as z:         # the torch.save layout sniff looks for
        z.writestr("n/data.pkl", b"\x80\x02}q\x00.")
        z.writestr("n/version", b"3\n")
    return {"ckpt": [ckpt, enc], "safetensors": [st], "orbax": [tmp_path / "orbax"], "torch": [pth]}


def test_each_format_sniffs_its_own_files_and_no_other(tmp_path):
    files = _files(tmp_path)
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint at all")
    for name, fmt in formats.FORMATS.items():
        for owner, paths in files.items():
            for path in paths:
                assert fmt.sniff(path) == (owner == name), (name, path)
        assert not fmt.sniff(tmp_path / "junk.ckpt") and not fmt.sniff(tmp_path / "missing")
    for owner, paths in files.items():
        assert all(formats.detect(p).name == owner for p in paths)
    with pytest.raises(CheckpointError, match="junk.ckpt.*not a checkpoint msjax can read"):
        formats.detect(tmp_path / "junk.ckpt")


@pytest.mark.parametrize("name", ["ckpt", "safetensors", "orbax"])
def test_registry_write_then_read_round_trips(tmp_path, name):
    fmt = formats.get(name)
    path = tmp_path / ("x" + (fmt.suffixes[0] if fmt.suffixes else ""))
    fmt.write(path, NAMED, {})
    named, types = fmt.read(path, select=lambda n: n != "a.step")
    assert list(named) == ["b.w"] and not any(types.get(n) not in (None, "Float32") for n in named)
    np.testing.assert_array_equal(np.asarray(named["b.w"]), NAMED["b.w"])


def test_torch_is_read_only_and_says_so_naming_the_file(tmp_path):
    torch = formats.get("torch")
    with pytest.raises(CheckpointError, match=r"out\.pth.*reads the torch format but does not write it"):
        torch.write(tmp_path / "out.pth", NAMED, {})
    assert formats.by_suffix("m.pth") is torch and formats.by_suffix("m.weird").name == "ckpt"
    with pytest.raises(CheckpointError, match="unknown checkpoint format 'npz'"):
        formats.get("npz")


def test_save_names_every_unstorable_entry_at_once(tmp_path):
    bad = {"ok": np.ones(2, np.float32), "c": np.zeros(2, np.complex256) if hasattr(np, "complex256")
           else np.zeros(2, object), "o": np.zeros(2, object), "n": 3}
    with pytest.raises(TypeError) as info:
        msjax.save_checkpoint(bad, str(tmp_path / "x.ckpt"))
    message = str(info.value)
    assert message.startswith("save_checkpoint: parameter 'c' has dtype ")
    assert "MindSpore cannot store; 2 more cannot be stored" in message
    assert "'o' has dtype object" in message and "entry 'n' is a int" in message
    assert not (tmp_path / "x.ckpt").exists()


def test_safetensors_save_names_every_unstorable_tensor(tmp_path):
    from msjax.checkpoint import safetensors_format as sf
    with pytest.raises(CheckpointError, match=r"'a' has dtype complex128; tensor 's' has dtype <U1, which the "
                                              r"safetensors format cannot store"):
        sf.save({"a": np.zeros(2, np.complex128), "s": np.array(["x"]), "f": np.ones(1)}, tmp_path / "x.st")


class Net(Cell):
    def __init__(self):
        super().__init__()
        self.fc1_weight = Parameter(np.zeros((3, 4), np.float32), name="fc1.weight")
        self.fc1_bias = Parameter(np.zeros(3, np.float32), name="fc1.bias")
        self.fc2_weight = Parameter(np.zeros((2, 3), np.float32), name="fc2.weight")
        self.step = Parameter(np.zeros((), np.int32), name="step")

    def construct(self, x):
        return x


def test_load_param_into_net_reports_every_mismatch_at_once_and_assigns_nothing():
    net = Net()
    d = {"fc1.weight": Parameter(np.ones((5, 4), np.float32)),      # shape
         "fc1.bias": Parameter(np.ones(3, np.float32)),             # fine
         "fc2.weight": Parameter(np.ones((2, 3), np.int32)),        # int -> float: never converted
         "step": Parameter(np.ones((), np.float32))}                # float -> int: never converted
    with pytest.raises(ParameterLoadError) as info:
        msjax.load_param_into_net(net, d)
    lines = str(info.value).splitlines()
    assert lines[0] == ("parameter 'fc1.weight' has shape (3, 4) in the network but 'fc1.weight' has shape "
                        "(5, 4) in parameter_dict; check that the checkpoint belongs to this network")
    assert lines[1] == "2 more parameter(s) do not match either:"
    assert "'fc2.weight' has dtype Int32" in lines[2] and "'step' has dtype Float32" in lines[3]
    assert len(lines) == 4
    assert not net.fc1_bias.get_value().any()      # checked before anything is assigned


def test_strict_load_reports_every_dtype_difference():
    d = {"fc1.bias": Parameter(np.ones(3, np.float16)), "fc2.weight": Parameter(np.ones((2, 3), np.float64))}
    with pytest.raises(ParameterLoadError, match=r"(?s)'fc1.bias' has dtype Float16.*'fc2.weight' has dtype Float64"):
        msjax.load_param_into_net(Net(), d, strict_load=True)
    msjax.load_param_into_net(Net(), d)             # not strict: both converted


def test_prefix_matches_and_ambiguities_are_collected_too():
    d = {"a.fc1.weight": Parameter(np.ones((3, 4), np.float32)),
         "b.fc1.weight": Parameter(np.ones((3, 4), np.float32)),
         "step": Parameter(np.ones((2,), np.int32))}
    with pytest.raises(ParameterLoadError) as info:
        msjax.load_param_into_net(Net(), d)
    first, *rest = str(info.value).splitlines()
    assert "'step' has shape () in the network" in first
    assert any("'fc1.weight' matches several checkpoint names by suffix: 'a.fc1.weight' and 'b.fc1.weight'" in r
               for r in rest)


def test_item_layer_rules():
    assert items.reshapable((3,), (3, 1, 1)) and not items.reshapable((3,), (1, 3))
    assert items.problem("w", "w", (3,), np.float32, (3, 1), np.float16, False, "f") is None
    assert "only float<->float" in items.problem("w", "w", (3,), np.float32, (3,), np.int8, False, "f")
    named, types = items.snapshot(items.entries({"w": np.ones(2, np.float32), "w2": "s"}, None, {"w": 1}),
                                  copy=True)
    assert list(named) == ["w", "w2"] and named["w"].dtype == np.int64 and types == {}


def test_processes_num_converts_rank_trees_in_parallel_with_the_same_result(tmp_path):
    for rank in range(2):
        for i in range(2):
            (tmp_path / "src" / f"rank{rank}").mkdir(parents=True, exist_ok=True)
            msjax.save_checkpoint({"w": np.full(3, rank * 10 + i, np.float32)},
                                  str(tmp_path / "src" / f"rank{rank}" / f"n{i}.ckpt"))
    msjax.ckpt_to_safetensors(str(tmp_path / "src"), save_path=str(tmp_path / "one"))
    msjax.ckpt_to_safetensors(str(tmp_path / "src"), save_path=str(tmp_path / "two"), processes_num=2)
    outs = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*.safetensors"))
    assert len(outs) == 4
    for rel in outs:
        assert (tmp_path / "one" / rel).read_bytes() == (tmp_path / "two" / rel).read_bytes()
    with pytest.raises(ValueError, match="'processes_num' must be at least 1"):
        msjax.ckpt_to_safetensors(str(tmp_path / "src"), processes_num=0)
    with pytest.raises(TypeError, match="'processes_num' must be an int"):
        msjax.safetensors_to_ckpt(str(tmp_path / "one"), processes_num="2")


def test_unknown_save_keywords_warn_once_and_mindspore_keywords_are_arguments(tmp_path):
    import warnings
    path = str(tmp_path / "k.ckpt")
    with pytest.warns(UserWarning, match="'no_such_option_xyz' is ignored: it is not a keyword argument MindSpore 2.10 reads"):
        msjax.save_checkpoint(dict(NAMED), path, no_such_option_xyz=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        msjax.save_checkpoint(dict(NAMED), path, no_such_option_xyz=1)        # once per name
        msjax.save_checkpoint(dict(NAMED), path, incremental=True, global_step_num=7)    # MapParameter only
    for key, value in (("incremental", True), ("global_step_num", 3)):
        with pytest.raises(ValueError, match=f"format is 'safetensors', the parameter '{key}' must be set"):
            msjax.save_checkpoint(dict(NAMED), str(tmp_path / "k.safetensors"), format="safetensors",
                                  **{key: value})


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")   # the re-raise, seen
def test_a_worker_thread_records_system_exit_for_the_caller(tmp_path):
    """The handle gets the SystemExit (result() raises it, never hangs); the thread re-raises it."""
    import threading
    from msjax.checkpoint import io as ckpt_io

    def job():
        raise SystemExit(3)
    handle = ckpt_io.start_thread(str(tmp_path / "exit.ckpt"), job)
    with pytest.raises(SystemExit):
        handle.result(timeout=10)
    for thread in threading.enumerate():
        if thread.name == "msjax-save:exit.ckpt":
            thread.join(10)


def test_the_registry_and_crypto_agree_with_the_shared_name_tables():
    from msjax.checkpoint import crypto
    from msjax.common.formats import CHECKPOINT_FORMATS, CIPHER_MODES
    assert tuple(crypto.MODES) == CIPHER_MODES
    assert set(CHECKPOINT_FORMATS) <= set(formats.writable())
    assert all(formats.by_suffix(f"x.{name}").name == name for name in CHECKPOINT_FORMATS)
