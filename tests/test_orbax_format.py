"""The orbax path: sharded save/load across 8 simulated devices, .ckpt <-> orbax byte round trips,
async saves, and the errors for bad directories and mismatched networks."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import msjax
from msjax.checkpoint.orbax_format import ckpt_to_orbax, load_orbax, orbax_to_ckpt, save_orbax
from msjax.errors import CheckpointError, ParameterLoadError
from msjax.models import LeNet5

# Runs in a fresh interpreter: XLA_FLAGS must be set before jax starts, and the pytest process has
# one CPU device. Prints one JSON object of observed facts.
_SHARDED = textwrap.dedent("""
    import json, sys
    import jax, numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    import orbax.checkpoint as ocp
    from msjax.checkpoint.orbax_format import load_orbax, save_orbax
    from msjax.models import LeNet5

    out = {"devices": jax.device_count()}
    mesh = Mesh(np.array(jax.devices()).reshape(4, 2), ("x", "y"))
    line = Mesh(np.array(jax.devices()), ("z",))
    specs = {"fc1.weight": P("x", "y"), "fc2.weight": P("x"), "conv1.weight": P("y")}

    def shard(net, mesh, specs):
        for _, p in net.parameters_and_names():
            p.set_value(jax.device_put(p.get_value(), NamedSharding(mesh, specs.get(p.name, P()))))

    net = LeNet5()
    shard(net, mesh, specs)
    want = {p.name: np.asarray(p.get_value()) for _, p in net.parameters_and_names()}
    d1, d2 = sys.argv[1] + "/sync", sys.argv[1] + "/async"
    save_orbax(net, d1)
    np.savez(sys.argv[1] + "/want.npz", **want)

    # stored per shard: orbax records the mesh sharding and writes (30, 200) blocks of fc1.weight
    meta = ocp.Checkpointer(ocp.PyTreeCheckpointHandler()).metadata(d1).item_metadata.tree
    out["stored_spec"] = [list(s) if isinstance(s, (list, tuple)) else s
                          for s in meta["fc1.weight"].sharding.partition_spec]
    out["write_shape"] = list(meta["fc1.weight"].storage.write_shape)

    def check(loaded, wanted_sharding):
        return {n: [bool(np.array_equal(np.asarray(v.get_value()), want[n])),
                    v.get_value().sharding == wanted_sharding(n)] for n, v in loaded.items()}

    same = {n: NamedSharding(mesh, specs.get(n, P())) for n in want}
    out["same"] = check(load_orbax(d1, shardings=same), same.get)
    other = lambda n: NamedSharding(line, P(None, "z") if n == "fc1.weight" else P())
    out["other"] = check(load_orbax(d1, shardings=other), other)

    net2 = LeNet5()
    specs2 = {"fc1.weight": P("y", "x"), "fc3.weight": P(None, "x")}
    shard(net2, mesh, specs2)
    loaded = load_orbax(d1, net2)
    out["net_order"] = list(loaded)
    out["net"] = {p.name: [bool(np.array_equal(np.asarray(p.get_value()), want[p.name])),
                           p.get_value().sharding == NamedSharding(mesh, specs2.get(p.name, P()))]
                  for _, p in net2.parameters_and_names()}

    handle = save_orbax(net, d2, async_save=True)
    out["async_result"] = handle.result()
    out["async"] = check(load_orbax(d2, shardings=same), same.get)
    print(json.dumps(out))
""")


def test_sharded_save_and_load_on_8_devices(tmp_path):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", _SHARDED, str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["devices"] == 8
    assert out["stored_spec"] == ["x", "y"] and out["write_shape"] == [30, 200]
    names = [n for n, _ in LeNet5().parameters_and_names()]
    for case in ("same", "other", "async"):
        assert sorted(out[case]) == sorted(names)
        assert all(equal and sharded for equal, sharded in out[case].values()), (case, out[case])
    assert out["net_order"] == names
    assert all(equal and sharded for equal, sharded in out["net"].values()), out["net"]
    assert out["async_result"] is None
    # the 8-device checkpoint loads in this 1-device process as host arrays
    want = np.load(tmp_path / "want.npz")
    loaded = load_orbax(tmp_path / "sync")
    assert list(loaded) == names
    for name, param in loaded.items():
        assert isinstance(param.get_value(), np.ndarray)
        np.testing.assert_array_equal(param.get_value(), want[name])


@pytest.mark.parametrize("name", ["lenet5.ckpt", "lenet5_append.ckpt", "dtypes.ckpt"])
def test_ckpt_orbax_ckpt_is_byte_identical(fixtures_dir, tmp_path, name):
    ckpt_to_orbax(fixtures_dir / name, tmp_path / "orbax")
    orbax_to_ckpt(tmp_path / "orbax", tmp_path / name)
    assert (tmp_path / name).read_bytes() == (fixtures_dir / name).read_bytes()


def test_load_into_net_in_network_order(fixtures_dir, tmp_path):
    ckpt_to_orbax(fixtures_dir / "lenet5.ckpt", tmp_path / "orbax")
    net = LeNet5()
    loaded = load_orbax(tmp_path / "orbax", net)
    reference = msjax.load_checkpoint(str(fixtures_dir / "lenet5.ckpt"))
    assert list(loaded) == [n for n, _ in net.parameters_and_names()]
    for _, param in net.parameters_and_names():
        assert isinstance(param.get_value(), np.ndarray)        # host values stay on the host
        np.testing.assert_array_equal(param.asnumpy(), reference[param.name].asnumpy())


def test_async_save_snapshots_and_result_waits(tmp_path):
    weight = np.arange(6, dtype=np.float32).reshape(2, 3)
    handle = save_orbax({"w": weight, "note": "v1"}, tmp_path / "a", async_save=True)
    weight[:] = -1                      # edits after the call must not reach the checkpoint
    assert handle.result() is None and handle.done()
    loaded = load_orbax(tmp_path / "a")
    assert list(loaded) == ["w", "note"] and loaded["note"] == "v1"
    np.testing.assert_array_equal(loaded["w"].asnumpy(), np.arange(6, dtype=np.float32).reshape(2, 3))


def test_async_background_error_is_raised_by_result(tmp_path, monkeypatch):
    import threading

    import orbax.checkpoint as ocp
    wait = ocp.StandardCheckpointer.wait_until_finished

    def broken(self):           # fail only in the background commit, after the call returned
        if threading.current_thread().name.startswith("msjax-save"):
            raise OSError(28, "No space left on device")
        return wait(self)
    monkeypatch.setattr(ocp.StandardCheckpointer, "wait_until_finished", broken)
    handle = save_orbax({"w": np.ones(2, np.float32)}, tmp_path / "a", async_save=True)
    with pytest.raises(OSError, match="a: save failed: no space left on the device"):
        handle.result()


def test_bad_directories(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint directory") as err:
        load_orbax(tmp_path / "missing")
    assert err.value.file == str(tmp_path / "missing")
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "x.txt").write_text("hi")
    with pytest.raises(CheckpointError, match="not an orbax PyTree checkpoint") as err:
        load_orbax(tmp_path / "plain")
    assert err.value.file == str(tmp_path / "plain")
    with pytest.raises(CheckpointError, match="force=True"):
        save_orbax({"w": np.ones(2, np.float32)}, tmp_path / "plain")
    save_orbax({"w": np.ones(2, np.float32)}, tmp_path / "plain", force=True)
    assert list(load_orbax(tmp_path / "plain")) == ["w"]


def test_shape_mismatch_and_unknown_sharding_name(tmp_path):
    directory = tmp_path / "bad"
    save_orbax({"fc3.weight": np.zeros((3, 84), np.float32), "fc3.bias": np.zeros(7, np.float32)}, directory)
    with pytest.raises(ParameterLoadError, match=r"fc3\.weight.*\(10, 84\).*\(3, 84\)") as err:
        load_orbax(directory, LeNet5())
    assert str(directory) in str(err.value) and "fc3.bias" in str(err.value)
    with pytest.raises(ParameterLoadError, match="fc9.weight"):
        load_orbax(directory, shardings={"fc9.weight": None})


def test_failed_forced_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    import orbax.checkpoint as ocp

    directory = tmp_path / "ckpt"
    save_orbax({"w": np.full(3, 1.0, np.float32)}, directory)

    def disk_full(self):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(ocp.StandardCheckpointer, "wait_until_finished", disk_full)
    with pytest.raises(OSError, match="ckpt: save failed: no space left on the device"):
        save_orbax({"w": np.full(3, 2.0, np.float32)}, directory, force=True)
    monkeypatch.undo()
    np.testing.assert_array_equal(load_orbax(directory)["w"].asnumpy(), np.full(3, 1.0, np.float32))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]      # no staging directory left behind
    save_orbax({"w": np.full(3, 2.0, np.float32)}, directory, force=True)
    np.testing.assert_array_equal(load_orbax(directory)["w"].asnumpy(), np.full(3, 2.0, np.float32))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
