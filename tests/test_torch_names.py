"""PyTorch names -> MindSpore names: each layer's declaration (net=) and the no-network heuristic,
proven against real torch modules, real torch.save files and a strict load into msjax."""
import io
import platform
import sys
import zipfile

import numpy as np
import pytest

import msjax
from msjax import nn
from msjax.checkpoint import torch_format
from msjax.checkpoint.torch_format import (convert_torch_checkpoint, names_of_net, read_torch_state_dict,
                                           sniff, torch_to_mindspore_names)
from msjax.errors import CheckpointError

if not (sys.platform == "linux" and platform.machine() == "x86_64" and sys.version_info[:2] == (3, 11)):
    pytest.skip("the pinned torch 2.13.0 CPU wheel exists only for Linux x86-64, Python 3.11",
                allow_module_level=True)
torch = pytest.importorskip("torch", reason="install the test extras: pip install -e '.[test]'")
T = torch.nn

#: each msjax layer and its PyTorch counterpart
LAYER_PAIRS = [
    (lambda: nn.Dense(3, 4), lambda: T.Linear(3, 4)),
    (lambda: nn.Dense(3, 4, has_bias=False), lambda: T.Linear(3, 4, bias=False)),
    (lambda: nn.Conv2d(3, 4, 3, has_bias=True), lambda: T.Conv2d(3, 4, 3)),
    (lambda: nn.Conv2d(3, 4, 3), lambda: T.Conv2d(3, 4, 3, bias=False)),
    (lambda: nn.Embedding(10, 4), lambda: T.Embedding(10, 4)),
    (lambda: nn.BatchNorm1d(4), lambda: T.BatchNorm1d(4)),
    (lambda: nn.BatchNorm2d(4), lambda: T.BatchNorm2d(4)),
    (lambda: nn.LayerNorm((4,)), lambda: T.LayerNorm(4)),
    (lambda: nn.Conv3d(2, 4, 3, has_bias=True), lambda: T.Conv3d(2, 4, 3)),
    (lambda: nn.Conv2dTranspose(4, 6, 3, group=2, has_bias=True), lambda: T.ConvTranspose2d(4, 6, 3, groups=2)),
    (lambda: nn.BatchNorm3d(4), lambda: T.BatchNorm3d(4)),
    (lambda: nn.GroupNorm(2, 4), lambda: T.GroupNorm(2, 4)),
    (lambda: nn.InstanceNorm2d(4), lambda: T.InstanceNorm2d(4, affine=True, track_running_stats=True)),
    (lambda: nn.PReLU(3), lambda: T.PReLU(3)),
    (lambda: nn.SequentialCell([nn.BatchNorm3d(4)]), lambda: T.Sequential(T.BatchNorm3d(4))),  # nested bn2d
]


@pytest.mark.parametrize("ms_layer, torch_layer", LAYER_PAIRS)
def test_each_layer_declares_its_torch_names(ms_layer, torch_layer):
    """The declared names cover exactly the torch layer's state dict and the msjax layer's parameters."""
    ms_layer, torch_layer = ms_layer(), torch_layer()
    expected = names_of_net(ms_layer)
    assert set(expected) == set(torch_layer.state_dict())
    assert {v for v in expected.values() if v} == set(ms_layer.parameters_dict())
    for t_name, ms_name in expected.items():
        if ms_name:
            assert tuple(torch_layer.state_dict()[t_name].shape) == ms_layer.parameters_dict()[ms_name].shape


def test_heuristic_table_is_what_batchnorm_declares():
    assert torch_format.RENAMES == {t: ms for ms, t in nn.BatchNorm2d.TORCH_NAMES.items()}
    assert torch_format.DROPPED_SUFFIXES == nn.BatchNorm2d.TORCH_DROPPED
    assert {t: ms for ms, t in nn.LayerNorm.TORCH_NAMES.items()}.items() <= torch_format.RENAMES.items()


class TorchTagger(T.Module):
    """Embedding -> LayerNorm -> bias-free Linear: the layers the heuristic cannot name."""

    def __init__(self):
        super().__init__()
        self.embed = T.Embedding(20, 8)
        self.norm = T.LayerNorm(8)
        self.head = T.Linear(8, 5, bias=False)

    def forward(self, ids):
        return self.head(self.norm(self.embed(ids)))


class Tagger(nn.Cell):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(20, 8)
        self.norm = nn.LayerNorm((8,), epsilon=1e-5)           # torch's default eps
        self.head = nn.Dense(8, 5, has_bias=False)

    def construct(self, ids):
        return self.head(self.norm(self.embed(ids)))


def test_layernorm_and_embedding_convert_with_the_network_and_load_strictly(tmp_path):
    torch.manual_seed(3)
    tnet = TorchTagger().eval()
    with torch.no_grad():
        tnet.norm.weight.uniform_(0.5, 1.5)
        tnet.norm.bias.uniform_(-0.5, 0.5)
    torch.save(tnet.state_dict(), tmp_path / "tagger.pth")
    net = Tagger()
    mapping = convert_torch_checkpoint(tmp_path / "tagger.pth", tmp_path / "tagger.ckpt", net=net)
    assert mapping == {"embed.weight": "embed.embedding_table", "norm.weight": "norm.gamma",
                       "norm.bias": "norm.beta", "head.weight": "head.weight"}
    assert msjax.load_param_into_net(net, msjax.load_checkpoint(str(tmp_path / "tagger.ckpt")),
                                     strict_load=True) == ([], [])
    ids = np.random.default_rng(0).integers(0, 20, (3, 7)).astype(np.int32)
    with torch.no_grad():
        expected = tnet(torch.from_numpy(ids.astype(np.int64))).numpy()
    np.testing.assert_allclose(net(msjax.Tensor(ids)).asnumpy(), expected, atol=1e-5, rtol=1e-5)
    # without the network the Embedding's weight cannot be told from the Linear's: left as is
    state = read_torch_state_dict(tmp_path / "tagger.pth")
    assert torch_to_mindspore_names(state)["embed.weight"] == "embed.weight"


def test_network_names_leave_unknown_keys_for_load_to_report():
    mapping = torch_to_mindspore_names(["embed.weight", "extra.weight", "norm.weight"], net=Tagger())
    assert mapping == {"embed.weight": "embed.embedding_table", "extra.weight": "extra.weight",
                       "norm.weight": "norm.gamma"}


class TorchBNNet(T.Module):
    def __init__(self):
        super().__init__()
        self.conv = T.Conv2d(3, 4, 3, bias=False)
        self.bn = T.BatchNorm2d(4)
        self.fc = T.Linear(4 * 6 * 6, 10)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).flatten(1))


class BNNet(nn.Cell):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, pad_mode="valid")
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Dense(4 * 6 * 6, 10)
        self.relu, self.flatten = nn.ReLU(), nn.Flatten()

    def construct(self, x):
        return self.fc(self.flatten(self.relu(self.bn(self.conv(x)))))


BN_NAMES = {"conv.weight": "conv.weight", "bn.weight": "bn.gamma", "bn.bias": "bn.beta",
            "bn.running_mean": "bn.moving_mean", "bn.running_var": "bn.moving_variance",
            "bn.num_batches_tracked": None, "fc.weight": "fc.weight", "fc.bias": "fc.bias"}


@pytest.mark.parametrize("with_net", [False, True])
def test_batchnorm_cnn_names_the_same_with_and_without_the_network(tmp_path, with_net):
    torch.manual_seed(4)
    tnet = TorchBNNet()
    tnet(torch.randn(8, 3, 8, 8))          # a training step moves the running statistics
    tnet.eval()
    torch.save(tnet.state_dict(), tmp_path / "bn.pth")
    net = BNNet()
    mapping = convert_torch_checkpoint(tmp_path / "bn.pth", tmp_path / "bn.ckpt", net=net if with_net else None)
    assert mapping == BN_NAMES and list(mapping) == list(BN_NAMES)
    assert msjax.load_param_into_net(net, msjax.load_checkpoint(str(tmp_path / "bn.ckpt")),
                                     strict_load=True) == ([], [])
    net.set_train(False)
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32)
    with torch.no_grad():
        expected = tnet(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(net(msjax.Tensor(x)).asnumpy(), expected, atol=1e-5, rtol=1e-5)


def test_renames_and_net_together_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match="not both"):
        torch_to_mindspore_names(["bn.weight"], {"weight": "gamma"}, net=BNNet())
    with pytest.raises(CheckpointError, match=r"x\.pth.*not both"):
        convert_torch_checkpoint(tmp_path / "x.pth", tmp_path / "x.ckpt", net=BNNet(), renames={})
    with pytest.raises(TypeError, match="net= must be an msjax Cell"):
        torch_to_mindspore_names(["bn.weight"], net={"bn": 1})


def test_tied_parameter_keeps_its_first_name():
    class Tied(nn.Cell):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(6, 4)
            self.head = nn.Dense(4, 6, has_bias=False)
            self.head.weight = self.embed.embedding_table

    assert names_of_net(Tied()) == {"embed.weight": "embed.embedding_table", "head.weight": None}


# ---------------------------------------------------------------- sniff


def test_sniff_knows_torch_files_and_nothing_else(tmp_path):
    torch.save({"w": torch.ones(2)}, tmp_path / "zip.pth")
    torch.save({"w": torch.ones(2)}, tmp_path / "legacy.pth", _use_new_zipfile_serialization=False)
    msjax.save_checkpoint([{"name": "w", "data": msjax.Tensor(np.ones(2, np.float32))}],
                          str(tmp_path / "w.ckpt"))
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as zf:
        zf.writestr("a/readme.txt", "hi")
    buf = io.BytesIO()
    torch.save({"w": torch.ones(2)}, buf)
    (tmp_path / "truncated.pth").write_bytes(buf.getvalue()[:80])
    (tmp_path / "junk").write_bytes(b"PK\x03\x04")
    assert sniff(tmp_path / "zip.pth") and sniff(str(tmp_path / "legacy.pth"))
    assert sniff(tmp_path / "truncated.pth")              # its reader says what is wrong with it
    for name in ("w.ckpt", "other.zip", "junk", "missing.pth", "."):
        assert not sniff(tmp_path / name), name
    with pytest.raises(CheckpointError, match="legacy non-zip format is not supported"):
        read_torch_state_dict(tmp_path / "legacy.pth")
