"""The ``msjax`` command on MindSpore's own fixture files: output, the one-line error contract, and
file commands that never import jax."""
import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

import msjax
from msjax.checkpoint import raw
from msjax.cli import main

KEY = "0123456789abcdef"            # the fixtures' enc_key (tests/fixtures/mindspore/generate.py)
HEAVY = ("jax", "jaxlib", "flax", "optax", "orbax")
ROOT = pathlib.Path(__file__).resolve().parents[1]


def probe(names=HEAVY):
    """Code that prints which of ``names`` the interpreter has imported."""
    return f"import sys\nprint('HEAVY', sorted({{m.split('.')[0] for m in sys.modules}} & set({names!r})))\n"


def _run(code, *args):
    """Run ``code`` in a fresh interpreter; (returncode, stdout, stderr)."""
    done = subprocess.run([sys.executable, *args, "-c", code] if code else [sys.executable, *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    return done.returncode, done.stdout, done.stderr


def _listing(path):
    """What ``inspect`` printed before it went jax-free: the lines built from load_checkpoint."""
    params = msjax.load_checkpoint(str(path), format=raw.format_of(path).name)
    lines = [f"{n}\tstr\t{v!r}" if isinstance(v, str) else f"{n}\t{list(v.shape)}\t{v.dtype}"
             for n, v in params.items()]
    total = sum(int(np.prod(v.shape)) for v in params.values() if not isinstance(v, str))
    return lines + [f"# {len(params)} entries, {total:,} values"]


# ------------------------------------------------------------------ no jax for the file commands

NO_JAX_COMMANDS = [
    ["inspect", "{f}/lenet5.ckpt"],
    ["inspect", "{f}/dtypes.ckpt", "--json"],
    ["inspect", "{f}/lenet5_aes_gcm.ckpt", "--dec-key", KEY],
    ["diff", "{f}/lenet5.ckpt", "{f}/lenet5.safetensors"],
    ["convert", "{f}/lenet5.ckpt", "{t}/out.safetensors"],
    ["convert", "{f}/lenet5.safetensors", "{t}/out.ckpt"],
    ["inspect", "{t}/missing.ckpt"],
    ["--help"],
]


@pytest.mark.parametrize("argv", NO_JAX_COMMANDS, ids=lambda a: " ".join(a).replace("{f}/", ""))
def test_file_commands_import_no_jax(argv, fixtures_dir, tmp_path):
    argv = [a.format(f=fixtures_dir, t=tmp_path) for a in argv]
    code = f"from msjax.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass\n" + probe()
    rc, out, err = _run(code)
    assert rc == 0, err
    assert out.splitlines()[-1] == "HEAVY []"


def test_python_dash_m_msjax_is_the_command(fixtures_dir):
    rc, out, err = _run(None, "-m", "msjax", "inspect", str(fixtures_dir / "lenet5_append.ckpt"))
    assert (rc, err) == (0, "")
    assert out.splitlines() == _listing(fixtures_dir / "lenet5_append.ckpt")


def test_import_msjax_is_lazy_but_complete():
    rc, out, err = _run("import msjax\n" + probe() + "print(msjax.Tensor([1.0]).asnumpy().tolist(), msjax.nn.Dense.__name__)")
    assert rc == 0, err
    assert out.splitlines() == ["HEAVY []", "[1.0] Dense"]
    assert set(msjax.__all__) <= set(dir(msjax))
    for name in msjax.__all__:
        assert getattr(msjax, name) is not None, name
    assert msjax.load_checkpoint is msjax.checkpoint.serialization.load_checkpoint
    with pytest.raises(AttributeError):
        msjax.no_such_name   # noqa: B018


# ------------------------------------------------------------------ inspect

@pytest.mark.parametrize("name", ["lenet5.ckpt", "lenet5_append.ckpt", "dtypes.ckpt", "lenet5.safetensors"])
def test_inspect_prints_what_load_checkpoint_sees(name, fixtures_dir, capsys):
    assert main(["inspect", str(fixtures_dir / name)]) == 0
    assert capsys.readouterr().out.splitlines() == _listing(fixtures_dir / name)


@pytest.mark.parametrize("name, options", [
    ("lenet5_aes_gcm.ckpt", ["--dec-key", KEY]),
    ("lenet5_aes_cbc.ckpt", ["--dec-key-hex", KEY.encode().hex(), "--dec-mode", "AES-CBC"]),
    ("lenet5_sm4_cbc.ckpt", ["--dec-key", KEY, "--dec-mode", "SM4-CBC"]),
])
def test_inspect_decrypts(name, options, fixtures_dir, capsys):
    assert main(["inspect", str(fixtures_dir / name), *options]) == 0
    assert capsys.readouterr().out.splitlines() == _listing(fixtures_dir / "lenet5.ckpt")


def test_inspect_json_lists_entries_and_totals(fixtures_dir, capsys):
    path = fixtures_dir / "lenet5_append.ckpt"
    assert main(["inspect", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    params = msjax.load_checkpoint(str(path))
    assert [e["name"] for e in report["entries"]] == list(params)
    for entry in report["entries"]:
        value = params[entry["name"]]
        if isinstance(value, str):
            assert entry == {"name": entry["name"], "dtype": "str", "value": value}
        else:
            assert (entry["dtype"], entry["shape"]) == (str(value.dtype), list(value.shape))
    values = sum(int(np.prod(v.shape)) for v in params.values() if not isinstance(v, str))
    assert report["total"]["entries"] == len(params) and report["total"]["values"] == values
    assert report["format"] == "ckpt"


# ------------------------------------------------------------------ diff

def _files(tmp_path, **files):
    paths = {}
    for stem, named in files.items():
        paths[stem] = str(tmp_path / f"{stem}.ckpt")
        raw.write(paths[stem], named)
    return paths


def test_diff_reports_order_missing_added_dtype_shape_and_values(tmp_path, capsys):
    w, b = np.arange(6, dtype=np.float32).reshape(2, 3), np.array([1.0, 2.0, 4.0], np.float32)
    p = _files(tmp_path,
               a={"w": w, "b": b, "gone": np.zeros(1, np.int32), "s": "x", "h": np.zeros(2, np.float32)},
               b={"b": b * np.float32([1, 1, 2]), "w": w.reshape(3, 2), "s": "y", "h": np.zeros(2, np.float16),
                  "new": np.ones(1, np.int64)})
    assert main(["diff", p["a"], p["b"]]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "~ order: names both hold from position 0 on differ: 'w' in A, 'b' in B",
        "~ w: shape [2, 3] -> [3, 2]",
        "~ b: 1 of 3 values differ, max abs 4, max rel 0.5",
        "- gone",
        "~ s: 'x' -> 'y'",
        "~ h: dtype Float32 -> Float16",
        "+ new",
        "# 7 difference(s)"]


def test_diff_of_same_entries_exits_0_and_of_reordered_ones_1(tmp_path, capsys):
    x, y = np.ones(2, np.float32), np.full(3, np.nan, np.float32)
    p = _files(tmp_path, a={"x": x, "y": y}, same={"x": x.copy(), "y": y.copy()}, swapped={"y": y, "x": x})
    assert main(["diff", p["a"], p["same"]]) == 0
    assert capsys.readouterr().out.splitlines() == ["# 0 difference(s)"]
    assert main(["diff", p["a"], p["swapped"]]) == 1
    assert capsys.readouterr().out.splitlines()[0] == (
        "~ order: same names from position 0 on differ: 'x' in A, 'y' in B")


def test_diff_decrypts_each_side_with_its_own_key(fixtures_dir, capsys):
    plain, enc = str(fixtures_dir / "lenet5.ckpt"), str(fixtures_dir / "lenet5_sm4_cbc.ckpt")
    assert main(["diff", enc, plain, "--a-dec-key", KEY, "--a-dec-mode", "SM4-CBC"]) == 0
    assert main(["diff", plain, enc, "--b-dec-key-hex", KEY.encode().hex(), "--b-dec-mode", "SM4-CBC"]) == 0
    assert main(["diff", enc, enc, "--dec-key", KEY, "--dec-mode", "SM4-CBC"]) == 0
    assert capsys.readouterr().out.splitlines() == ["# 0 difference(s)"] * 3


def test_diff_reports_edited_checkpoint(fixtures_dir, tmp_path, capsys):
    original = str(fixtures_dir / "lenet5.ckpt")
    params = msjax.load_checkpoint(original)
    params["fc3.bias"].set_data(np.ones(10, np.float32))
    del params["fc2.bias"]
    edited = tmp_path / "edited.ckpt"
    msjax.save_checkpoint(params, str(edited), append_dict={"epoch_num": 3})
    bias = msjax.load_checkpoint(original)["fc3.bias"].asnumpy().astype(np.float64)
    assert main(["diff", original, str(edited)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "- fc2.bias" and lines[2:] == ["+ epoch_num", "# 3 difference(s)"]
    abs_diff = np.abs(bias - 1)
    assert lines[1] == (f"~ fc3.bias: {np.count_nonzero(abs_diff)} of 10 values differ, "
                        f"max abs {abs_diff.max():.6g}, max rel {abs_diff.max():.6g}")


# ------------------------------------------------------------------ convert

def _tensors(path):
    named, _ = raw.read(path)
    return {k: v if isinstance(v, str) else (v.dtype.str, v.shape, v.tobytes()) for k, v in named.items()}


def test_convert_ckpt_to_safetensors_and_back_is_lossless(fixtures_dir, tmp_path):
    st, back = tmp_path / "lenet5.safetensors", tmp_path / "back.ckpt"
    assert main(["convert", str(fixtures_dir / "lenet5.ckpt"), str(st)]) == 0
    assert st.read_bytes() == (fixtures_dir / "lenet5.safetensors").read_bytes()
    assert main(["convert", str(st), str(back)]) == 0
    assert main(["diff", str(fixtures_dir / "lenet5.ckpt"), str(back)]) == 1      # safetensors sorts names
    assert _tensors(back) == _tensors(fixtures_dir / "lenet5.ckpt")


@pytest.mark.parametrize("src, dst", [("dtypes.ckpt", "x.safetensors"), ("dtypes.ckpt", "x.ckpt"),
                                      ("lenet5_append.ckpt", "x.ckpt"), ("lenet5.safetensors", "x.ckpt")])
def test_convert_writes_the_bytes_save_checkpoint_writes(src, dst, fixtures_dir, tmp_path):
    out, reference = tmp_path / dst, tmp_path / f"ref_{dst}"
    fmt = raw.format_of(out).name
    msjax.save_checkpoint(msjax.load_checkpoint(str(fixtures_dir / src), format=raw.format_of(src).name),
                          str(reference), format=fmt)
    assert main(["convert", str(fixtures_dir / src), str(out)]) == 0
    assert out.read_bytes() == reference.read_bytes()


def test_convert_through_an_orbax_directory_round_trips(fixtures_dir, tmp_path):
    src = fixtures_dir / "lenet5_append.ckpt"
    assert main(["convert", str(src), str(tmp_path / "orbax") + "/"]) == 0
    assert (tmp_path / "orbax").is_dir()
    assert main(["convert", str(tmp_path / "orbax"), str(tmp_path / "back.ckpt")]) == 0
    assert _tensors(tmp_path / "back.ckpt") == _tensors(src)
    assert list(raw.read(tmp_path / "back.ckpt")[0]) == list(raw.read(src)[0])


def test_convert_torch_state_dict_as_convert_torch_checkpoint_does(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    from msjax.checkpoint.torch_format import convert_torch_checkpoint

    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.Linear(4, 3))
    torch.save(model.state_dict(), tmp_path / "m.pth")
    mapping = convert_torch_checkpoint(tmp_path / "m.pth", tmp_path / "ref.ckpt")
    assert main(["convert", str(tmp_path / "m.pth"), str(tmp_path / "m.ckpt")]) == 0
    assert (tmp_path / "m.ckpt").read_bytes() == (tmp_path / "ref.ckpt").read_bytes()
    dropped = sum(v is None for v in mapping.values())
    assert capsys.readouterr().out.startswith(f"# {len(mapping) - dropped} tensors written")
    argv = ["convert", str(tmp_path / "m.pth"), str(tmp_path / "m.safetensors")]
    rc, out, err = _run(f"from msjax.cli import main\nmain({argv!r})\n" + probe(HEAVY + ("torch",)))
    assert (rc, out.splitlines()[-1]) == (0, "HEAVY []"), err


def test_progress_bar_on_a_terminal_and_not_with_quiet(fixtures_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    src = str(fixtures_dir / "lenet5.ckpt")
    assert main(["convert", src, str(tmp_path / "a.safetensors")]) == 0
    assert "convert" in capsys.readouterr().err
    assert main(["--quiet", "convert", src, str(tmp_path / "b.safetensors")]) == 0
    assert capsys.readouterr().err == ""


# ------------------------------------------------------------------ export

def test_export_lenet5_to_onnx_with_encrypted_fixture_weights(fixtures_dir, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    out = tmp_path / "lenet5"
    assert main(["export", "lenet5", str(out), "--ckpt", str(fixtures_dir / "lenet5_aes_gcm.ckpt"),
                 "--dec-key", KEY, "--input-shape", "4,1,32,32", "--format", "ONNX"]) == 0
    session = onnxruntime.InferenceSession(str(out) + ".onnx", providers=["CPUExecutionProvider"])
    x = np.load(fixtures_dir / "lenet5_input.npy")
    y = session.run(None, {session.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(y, np.load(fixtures_dir / "lenet5_output.npy"), atol=1e-5)


# ------------------------------------------------------------------ errors: one line, exit 2

def _bad_file(tmp):
    shutil.copyfile(__file__, tmp / "bad.ckpt")
    return str(tmp / "bad.ckpt")


ERRORS = [  # (argv, what the one line must name); {f}: fixtures, {t}: tmp_path
    (["inspect", "{t}/missing.ckpt"], "missing.ckpt"),
    (["inspect", "{t}/model.txt"], "model.txt"),
    (["inspect", "{bad}"], "bad.ckpt"),
    (["inspect", "{f}/lenet5_sm4_cbc.ckpt"], "lenet5_sm4_cbc.ckpt"),
    (["inspect", "{f}/lenet5_aes_gcm.ckpt", "--dec-key", "fedcba9876543210"], "lenet5_aes_gcm.ckpt"),
    (["inspect", "{f}/lenet5_aes_gcm.ckpt", "--dec-key-hex", "zz"], "--dec-key-hex"),
    (["inspect", "{f}/lenet5.safetensors", "--dec-key", KEY], "lenet5.safetensors"),
    (["diff", "{f}/lenet5.ckpt", "{t}/missing.ckpt"], "missing.ckpt"),
    (["diff", "{f}/lenet5.ckpt", "{f}/lenet5_sm4_cbc.ckpt", "--b-dec-key", KEY], "lenet5_sm4_cbc.ckpt"),
    (["convert", "{f}/lenet5.ckpt", "{t}/x.txt"], "x.txt"),
    (["convert", "{f}/lenet5.ckpt", "{t}/x.pth"], "x.pth"),
    (["convert", "{t}/missing.txt", "{t}/x.ckpt"], "missing.txt"),
    (["convert", "{t}/missing.ckpt", "{t}/x.ckpt"], "missing.ckpt"),
    (["convert", "{t}/missing.pth", "{t}/x.ckpt", "--dec-key", KEY], "--dec-key"),
    (["export", "lenet5", "{t}/o", "--input-shape", "1,x,32"], "--input-shape"),
    (["export", "lenet5", "{t}/o", "--input-shape", "1,0,32,32"], "--input-shape"),
    (["export", "lenet5", "{t}/o", "--input-shape", "1,3,32,32"], "--input-shape"),
    (["export", "lenet5", "{t}/o", "--input-shape", "1,1,32,32", "--ckpt", "{t}/missing.ckpt"], "missing.ckpt"),
    (["export", "lenet5", "{t}/o", "--input-shape", "1,1,32,32", "--ckpt", "{t}/w.txt"], "w.txt"),
    (["export", "lenet5", "{t}/o", "--input-shape", "1,1,32,32", "--ckpt", "{f}/dtypes.ckpt"], "dtypes.ckpt"),
]


@pytest.mark.parametrize("argv, named", ERRORS, ids=lambda x: " ".join(x) if isinstance(x, list) else None)
def test_every_error_is_one_line_and_exit_2(argv, named, fixtures_dir, tmp_path, capsys):
    argv = [a.format(f=fixtures_dir, t=tmp_path, bad=_bad_file(tmp_path) if a == "{bad}" else "")
            for a in argv]
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"msjax {argv[0]}: error: "), captured.err
    assert named in lines[0] and "Traceback" not in captured.err
    assert not (tmp_path / "x.txt").exists() and not (tmp_path / "x.ckpt").exists()


@pytest.mark.parametrize("argv", [[], ["nope"], ["inspect"], ["inspect", "a.ckpt", "--dec-mode", "ROT13"],
                                  ["diff", "a.ckpt"], ["export", "vgg", "o", "--input-shape", "1"],
                                  ["inspect", "a.ckpt", "--dec-key", "k", "--dec-key-hex", "00"]])
def test_argparse_errors_are_usage_and_one_error_line(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("usage: msjax") and lines[-1].startswith("msjax") and ": error: " in lines[-1]
    assert len(lines) == 2


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_traceback(where, tmp_path, capsys):
    argv = ["inspect", str(tmp_path / "missing.ckpt")]
    argv = ["--debug", *argv] if where == "before" else [*argv, "--debug"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("Traceback") and "CheckpointError" in err
    assert err.splitlines()[-1].startswith("msjax inspect: error: ") and "missing.ckpt" in err.splitlines()[-1]


def test_an_error_in_a_subprocess_is_one_stderr_line(tmp_path):
    rc, out, err = _run(None, "-m", "msjax", "convert", os.fspath(tmp_path / "a.ckpt"), "b.txt")
    assert (rc, out) == (2, "") and len(err.splitlines()) == 1 and "b.txt" in err
