"""The ``msjax`` command on MindSpore's own fixture files."""
import shutil

import numpy as np
import pytest

import msjax
from msjax.cli import main


def test_inspect_lists_names_shapes_dtypes_in_file_order(fixtures_dir, capsys):
    assert main(["inspect", str(fixtures_dir / "lenet5.ckpt")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "conv1.weight\t[6, 1, 5, 5]\tFloat32"
    assert [line.split("\t")[0] for line in lines[:-1]] == [
        "conv1.weight", "conv2.weight", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"]
    assert lines[-1] == "# 8 entries, 61,684 values"


def test_inspect_encrypted_needs_the_key(fixtures_dir, capsys):
    path = str(fixtures_dir / "lenet5_sm4_cbc.ckpt")
    assert main(["inspect", path, "--dec-key", "0123456789abcdef", "--dec-mode", "SM4-CBC"]) == 0
    assert "# 8 entries" in capsys.readouterr().out
    assert main(["inspect", path]) == 2
    assert "lenet5_sm4_cbc.ckpt" in capsys.readouterr().err


def test_diff_reports_changed_missing_and_added_entries(fixtures_dir, tmp_path, capsys):
    original = str(fixtures_dir / "lenet5.ckpt")
    assert main(["diff", original, str(fixtures_dir / "lenet5_crc.ckpt")]) == 0
    params = msjax.load_checkpoint(original)
    params["fc3.bias"].set_data(np.ones(10, np.float32))
    del params["fc2.bias"]
    edited = tmp_path / "edited.ckpt"
    msjax.save_checkpoint(params, str(edited), append_dict={"epoch_num": 3})
    capsys.readouterr()
    assert main(["diff", original, str(edited)]) == 1
    assert capsys.readouterr().out.splitlines() == ["- fc2.bias", "~ fc3.bias", "+ epoch_num", "# 3 difference(s)"]


def test_convert_ckpt_to_safetensors_and_back_is_lossless(fixtures_dir, tmp_path):
    st, back = tmp_path / "lenet5.safetensors", tmp_path / "back.ckpt"
    assert main(["convert", str(fixtures_dir / "lenet5.ckpt"), str(st)]) == 0
    assert st.read_bytes() == (fixtures_dir / "lenet5.safetensors").read_bytes()
    assert main(["convert", str(st), str(back)]) == 0
    assert main(["diff", str(fixtures_dir / "lenet5.ckpt"), str(back)]) == 0


def test_export_lenet5_to_onnx_with_fixture_weights(fixtures_dir, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    out = tmp_path / "lenet5"
    assert main(["export", "lenet5", str(out), "--ckpt", str(fixtures_dir / "lenet5.ckpt"),
                 "--input-shape", "4,1,32,32", "--format", "ONNX"]) == 0
    session = onnxruntime.InferenceSession(str(out) + ".onnx", providers=["CPUExecutionProvider"])
    x = np.load(fixtures_dir / "lenet5_input.npy")
    y = session.run(None, {session.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(y, np.load(fixtures_dir / "lenet5_output.npy"), atol=1e-5)


def test_bad_file_is_a_clear_error_not_a_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.ckpt"
    shutil.copyfile(__file__, bad)
    assert main(["inspect", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("msjax inspect: error:") and "bad.ckpt" in err
