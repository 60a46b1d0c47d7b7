"""ResNet-18/34/101 against the MindSpore model zoo's own definitions, run in real MindSpore 2.10.

One oracle call builds each network from the zoo's ``official/cv/ResNet/src/resnet.py`` rules
(written out below: ``ResidualBlockBase`` and the ``res_base`` stem for 18/34, the bottleneck
``ResidualBlock`` from ``ms_models`` for 101), saves its .ckpt with ``ms.save_checkpoint`` and
records its eval logits. msjax loads each .ckpt strictly into its own network and must leave
nothing unloaded and give MindSpore's logits.
"""
import numpy as np
import pytest

import msjax
from msjax.models import ResNet18, ResNet34, ResNet101, resnet18
from oracle import requires_mindspore, run_mindspore

X = np.random.default_rng(5).normal(0, 1, (2, 3, 32, 32)).astype(np.float32)

#: written to a file: MindSpore's graph mode compiles a Cell only from source it can read back
ZOO_SOURCE = """
import numpy as np
from mindspore import nn, ops
from ms_models import ResidualBlock, _kaiming_normal_fan_out_relu, _fc


def _conv(cin, cout, k, stride=1, res_base=False):
    weight = _kaiming_normal_fan_out_relu((cout, cin, k, k))
    if res_base:
        return nn.Conv2d(cin, cout, kernel_size=k, stride=stride, padding=k // 2, pad_mode='pad', weight_init=weight)
    return nn.Conv2d(cin, cout, kernel_size=k, stride=stride, padding=0, pad_mode='same', weight_init=weight)


def _bn(channel, res_base=False):
    if res_base:
        return nn.BatchNorm2d(channel, eps=1e-5, momentum=0.1, gamma_init=1, beta_init=0,
                              moving_mean_init=0, moving_var_init=1)
    return nn.BatchNorm2d(channel, eps=1e-4, momentum=0.9, gamma_init=1, beta_init=0,
                          moving_mean_init=0, moving_var_init=1)


class ResidualBlockBase(nn.Cell):
    def __init__(self, in_channel, out_channel, stride=1, res_base=True):
        super().__init__()
        self.conv1 = _conv(in_channel, out_channel, 3, stride=stride, res_base=res_base)
        self.bn1d = _bn(out_channel)
        self.conv2 = _conv(out_channel, out_channel, 3, stride=1, res_base=res_base)
        self.bn2d = _bn(out_channel)
        self.relu = nn.ReLU()
        self.down_sample = stride != 1 or in_channel != out_channel
        self.down_sample_layer = None
        if self.down_sample:
            self.down_sample_layer = nn.SequentialCell([_conv(in_channel, out_channel, 1, stride, res_base=res_base),
                                                        _bn(out_channel, res_base)])

    def construct(self, x):
        identity = x
        out = self.relu(self.bn1d(self.conv1(x)))
        out = self.bn2d(self.conv2(out))
        if self.down_sample:
            identity = self.down_sample_layer(identity)
        return self.relu(out + identity)


class ResNet(nn.Cell):
    def __init__(self, block, layer_nums, in_channels, out_channels, strides, num_classes, res_base=False):
        super().__init__()
        self.res_base = res_base
        self.conv1 = _conv(3, 64, 7, stride=2, res_base=res_base)
        self.bn1 = _bn(64, res_base)
        self.relu = ops.ReLU()
        if res_base:
            self.pad = nn.Pad(paddings=((0, 0), (0, 0), (1, 1), (1, 1)))
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, pad_mode="valid")
        else:
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, pad_mode="same")
        layers = []
        for i in range(4):
            blocks = [block(in_channels[i], out_channels[i], stride=strides[i])]
            blocks += [block(out_channels[i], out_channels[i], stride=1) for _ in range(1, layer_nums[i])]
            layers.append(nn.SequentialCell(blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.mean = ops.ReduceMean(keep_dims=True)
        self.flatten = nn.Flatten()
        self.end_point = _fc(out_channels[3], num_classes)

    def construct(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        if self.res_base:
            x = self.pad(x)
        x = self.maxpool(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.end_point(self.flatten(self.mean(x, (2, 3))))


NETS = {
    "resnet18": lambda: ResNet(ResidualBlockBase, [2, 2, 2, 2], [64, 64, 128, 256], [64, 128, 256, 512],
                               [1, 2, 2, 2], 10, res_base=True),
    "resnet34": lambda: ResNet(ResidualBlockBase, [3, 4, 6, 3], [64, 64, 128, 256], [64, 128, 256, 512],
                               [1, 2, 2, 2], 10, res_base=True),
    "resnet101": lambda: ResNet(ResidualBlock, [3, 4, 23, 3], [64, 256, 512, 1024], [256, 512, 1024, 2048],
                                [1, 2, 2, 2], 10),
}
"""

ZOO_RUN = """
sys.path.insert(0, str(inputs["folder"]))
from resnet_zoo import NETS
np.random.seed(2)
for key, build in NETS.items():
    net = build()
    net.set_train(False)
    path = os.path.join(str(inputs["folder"]), key + ".ckpt")
    ms.save_checkpoint(net, path)
    outputs[key + "/logits"] = net(Tensor(inputs["x"])).asnumpy()
    outputs[key + "/names"] = np.array([n for n, _ in net.parameters_and_names()])
"""

NETWORKS = [("resnet18", ResNet18), ("resnet34", ResNet34), ("resnet101", ResNet101)]


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("resnets")
    (folder / "resnet_zoo.py").write_text(ZOO_SOURCE)
    return folder, run_mindspore(ZOO_RUN, {"x": X, "folder": np.array(str(folder))})


@requires_mindspore
@pytest.mark.parametrize("key, cls", NETWORKS, ids=[k for k, _ in NETWORKS])
def test_zoo_checkpoint_loads_strictly_and_gives_mindspore_logits(zoo, key, cls):
    folder, ms_out = zoo
    net = cls(class_num=10)
    assert [n for n, _ in net.parameters_and_names()] == list(ms_out[key + "/names"])
    param_not_load, ckpt_not_load = msjax.load_param_into_net(
        net, msjax.load_checkpoint(str(folder / f"{key}.ckpt")), strict_load=True)
    assert param_not_load == [] and ckpt_not_load == []
    net.set_train(False)
    expected = ms_out[key + "/logits"]
    np.testing.assert_allclose(net(msjax.Tensor(X)).asnumpy(), expected, rtol=1e-5,
                               atol=1e-5 * np.abs(expected).max())


def test_basic_block_names_and_constructors():
    net = resnet18(class_num=3)
    assert isinstance(net, ResNet18) and net.end_point.weight.shape == (3, 512)
    names = dict(net.parameters_and_names())
    assert "layer2.0.down_sample_layer.0.weight" in names and "layer1.0.bn1d.gamma" in names
    assert "layer1.0.down_sample_layer.0.weight" not in names      # stride 1, same width: no projection
    bn_down, bn_block = net.layer2[0].down_sample_layer[1], net.layer2[0].bn1d
    assert (bn_down.eps, bn_block.eps) == (1e-5, 1e-4)             # the zoo's res_base rule
