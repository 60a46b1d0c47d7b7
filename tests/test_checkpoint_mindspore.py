"""Every variant msjax writes loads in real MindSpore 2.10 with identical values (one subprocess)."""

import ml_dtypes
import numpy as np
import pytest

import msjax
from msjax.checkpoint import codec
from oracle import requires_mindspore, run_mindspore

KEY = b"0123456789abcdef"
INT_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]
FLOAT_DTYPES = [np.float16, np.float32, np.float64, ml_dtypes.bfloat16]


def _tensors():
    rng = np.random.default_rng(7)
    out = {}
    for dt in FLOAT_DTYPES:
        out[f"f.{np.dtype(dt).name}"] = (rng.standard_normal((3, 4)) * 100).astype(dt)
    for dt in INT_DTYPES:
        info = np.iinfo(dt)
        out[f"i.{np.dtype(dt).name}"] = np.array([[info.min, 0, 1], [info.max, 2, 3]], dt)
    out["b.bool"] = np.array([True, False, True])
    out["scalar"] = np.array(1.5, np.float32)
    out["layer.0.weight"] = rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
    return out


@pytest.mark.mindspore
@requires_mindspore
def test_msjax_files_load_in_mindspore(tmp_path, fixtures_dir):
    named = _tensors()
    append = {"epoch_num": 3, "lr": 0.01, "tag": "héllo", "flag": True}
    files = {
        "plain.ckpt": ({}, {}),
        "crc.ckpt": ({"crc_check": True}, {"crc_check": True}),
        "append.ckpt": ({"append_dict": append}, {}),
        "gcm.ckpt": ({"enc_key": KEY, "enc_mode": "AES-GCM"}, {"dec_key": KEY, "dec_mode": "AES-GCM"}),
        "cbc.ckpt": ({"enc_key": KEY, "enc_mode": "AES-CBC"}, {"dec_key": KEY, "dec_mode": "AES-CBC"}),
        "sm4.ckpt": ({"enc_key": KEY, "enc_mode": "SM4-CBC"}, {"dec_key": KEY, "dec_mode": "SM4-CBC"}),
        "st.safetensors": ({"format": "safetensors"}, {"format": "safetensors"}),
        "async.ckpt": ({"async_save": "process"}, {}),
    }
    # MindSpore 2.10's safetensors reader cannot build bfloat16 under numpy 2 (TypeError "The Numpy
    # bfloat16 data type is not supported now"), for its own files too: leave bf16 out there.
    no_bf16 = {k: v for k, v in named.items() if v.dtype != ml_dtypes.bfloat16}
    for name, (save_opts, _) in files.items():
        obj = no_bf16 if name.endswith(".safetensors") else named
        handle = msjax.save_checkpoint(obj, str(tmp_path / name), **save_opts)
        if handle is not None:
            handle.result()
    # MindSpore's Int4 (qint4x2) dtype survives a load/re-save through msjax
    msjax.save_checkpoint(msjax.load_checkpoint(str(fixtures_dir / "dtypes.ckpt")), str(tmp_path / "dtypes.ckpt"))
    files["dtypes.ckpt"] = ({}, {})
    # slices: MindSpore joins consecutive records of one tag (written here with a small slice size)
    with open(tmp_path / "sliced.ckpt", "wb") as f:
        codec.write_records(f, {"big": np.arange(1000, dtype=np.float32).reshape(10, 100)}, slice_size=1000)
    files["sliced.ckpt"] = ({}, {})

    code = """
import json
specs = json.loads(str(inputs["specs"]))
for fname, opts in specs.items():
    if "dec_key" in opts:
        opts["dec_key"] = opts["dec_key"].encode()
    d = ms.load_checkpoint(os.path.join(str(inputs["dir"]), fname), **opts)
    outputs[fname + "|__names__"] = np.array(list(d))
    for k, v in d.items():
        if isinstance(v, str):
            outputs[fname + "|" + k] = np.array(v)
        elif v.dtype == ms.bfloat16:
            outputs[fname + "|" + k] = v.float().asnumpy()
            outputs[fname + "|" + k + "|dtype"] = np.array("BFloat16")
        else:
            outputs[fname + "|" + k] = v.asnumpy()
            outputs[fname + "|" + k + "|dtype"] = np.array(str(v.dtype))
"""
    import json
    specs = {name: {k: (v.decode() if isinstance(v, bytes) else v) for k, v in load.items()}
             for name, (_, load) in files.items()}
    out = run_mindspore(code, inputs={"specs": np.array(json.dumps(specs)), "dir": np.array(str(tmp_path))})

    for name in files:
        ours = msjax.load_checkpoint(str(tmp_path / name), **files[name][1])
        assert list(out[name + "|__names__"]) == list(ours), name
        for k, v in ours.items():
            theirs = out[f"{name}|{k}"]
            if isinstance(v, str):
                assert str(theirs) == v
                continue
            mine = v.asnumpy()
            if mine.dtype == ml_dtypes.bfloat16:
                mine = mine.astype(np.float32)
            assert theirs.shape == mine.shape, (name, k)
            np.testing.assert_array_equal(theirs.astype(mine.dtype) if mine.dtype != theirs.dtype else theirs,
                                          mine, err_msg=f"{name}:{k}")
            stored = v.get_metadata("ms_dtype", None) or v.dtype.ckpt
            assert str(out[f"{name}|{k}|dtype"]).lower() == stored.lower(), \
                    (name, k)
    assert list(out["append.ckpt|__names__"])[-4:] == ["epoch_num", "lr", "tag", "flag"]
    assert str(out["append.ckpt|tag"]) == "héllo"
