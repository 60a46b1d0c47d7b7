"""PyTorch state dicts -> MindSpore names and .ckpt, proven against real torch.save files."""
import pickle
import platform
import sys
import zipfile

import numpy as np
import pytest

from msjax.checkpoint.torch_format import (convert_torch_checkpoint, read_torch_state_dict,
                                           torch_to_mindspore_names)
from msjax.errors import CheckpointError

if not (sys.platform == "linux" and platform.machine() == "x86_64" and sys.version_info[:2] == (3, 11)):
    pytest.skip("the pinned torch 2.13.0 CPU wheel exists only for Linux x86-64, Python 3.11",
                allow_module_level=True)
torch = pytest.importorskip("torch", reason="install the test extras: pip install -e '.[test]'")


class TorchLeNet(torch.nn.Module):
    """LeNet5 with MindSpore's docs layout (no conv bias, valid padding)."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 6, 5, bias=False)
        self.conv2 = torch.nn.Conv2d(6, 16, 5, bias=False)
        self.fc1 = torch.nn.Linear(400, 120)
        self.fc2 = torch.nn.Linear(120, 84)
        self.fc3 = torch.nn.Linear(84, 10)

    def forward(self, x):
        pool, relu = torch.nn.functional.max_pool2d, torch.relu
        x = pool(relu(self.conv1(x)), 2)
        x = pool(relu(self.conv2(x)), 2).flatten(1)
        return self.fc3(relu(self.fc2(relu(self.fc1(x)))))


@pytest.fixture
def torch_file(tmp_path):
    torch.manual_seed(0)
    bn = torch.nn.BatchNorm2d(4)
    bn.running_mean.uniform_()
    state = {
        "conv.weight": torch.randn(4, 3, 3, 3),
        **{f"bn.{k}": v for k, v in bn.state_dict().items()},
        "fc.weight": torch.randn(5, 4).t(),              # non-contiguous: strides must be honoured
        "half": torch.randn(3, 2).to(torch.bfloat16),
        "steps": torch.tensor([1, 2, 3], dtype=torch.int64),
        "scalar": torch.tensor(2.5),
        "slice": torch.arange(20.0)[5:11].view(2, 3),   # storage offset
    }
    path = tmp_path / "model.pth"
    torch.save({"state_dict": state, "epoch": 3}, path)
    return path, state


def test_reads_every_tensor_exactly(torch_file):
    path, state = torch_file
    loaded = read_torch_state_dict(path)
    assert list(loaded) == list(state)
    for name, tensor in state.items():
        expected = tensor.view(torch.int16).numpy() if tensor.dtype == torch.bfloat16 else tensor.numpy()
        got = loaded[name].view(np.int16) if tensor.dtype == torch.bfloat16 else loaded[name]
        assert got.shape == expected.shape and got.dtype == expected.dtype, name
        np.testing.assert_array_equal(got, expected, err_msg=name)


def test_norm_layers_renamed_and_bookkeeping_dropped():
    mapping = torch_to_mindspore_names(["conv.weight", "bn.weight", "bn.bias", "bn.running_mean",
                                        "bn.running_var", "bn.num_batches_tracked", "fc.bias"])
    assert mapping == {"conv.weight": "conv.weight", "bn.weight": "bn.gamma", "bn.bias": "bn.beta",
                       "bn.running_mean": "bn.moving_mean", "bn.running_var": "bn.moving_variance",
                       "bn.num_batches_tracked": None, "fc.bias": "fc.bias"}


def test_hostile_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.pth"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("evil/data.pkl", pickle.dumps({"w": Evil()}))
    with pytest.raises(CheckpointError, match=r"evil\.pth.*refusing to unpickle (io|builtins)\.open"):
        read_torch_state_dict(path)
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"not a zip", b""])
def test_not_a_torch_file(tmp_path, content):
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="bad.pth"):
        read_torch_state_dict(path)


def test_converted_lenet_runs_identically_in_msjax(tmp_path):
    import msjax
    from msjax.models import LeNet5

    torch.manual_seed(1)
    tnet = TorchLeNet().eval()
    torch.save(tnet.state_dict(), tmp_path / "lenet.pth")
    mapping = convert_torch_checkpoint(tmp_path / "lenet.pth", tmp_path / "lenet.ckpt")
    assert all(k == v for k, v in mapping.items())

    net = LeNet5()
    not_loaded, unused = msjax.load_param_into_net(net, msjax.load_checkpoint(str(tmp_path / "lenet.ckpt")))
    assert not_loaded == [] and unused == []
    net.set_train(False)
    x = np.random.default_rng(0).standard_normal((2, 1, 32, 32)).astype(np.float32)
    with torch.no_grad():
        expected = tnet(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(net(msjax.Tensor(x)).asnumpy(), expected, atol=1e-5, rtol=1e-5)
