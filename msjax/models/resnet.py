"""The ResNet family with the MindSpore model zoo's cell names, parameter order and initialisers.

Names follow ``official/cv/ResNet/src/resnet.py``: ``conv1``, ``bn1``, ``layer1``..``layer4`` and
``end_point``. ResNet-50/101 stack the bottleneck ``ResidualBlock`` (``conv1/bn1/conv2/bn2/conv3/bn3``,
``down_sample_layer``); ResNet-18/34 stack ``ResidualBlockBase`` (``conv1/bn1d/conv2/bn2d``,
``down_sample_layer``) with the zoo's ``res_base`` stem: explicit padding, a Pad and a valid max
pool. Zoo checkpoints load by name, strictly.

>>> net = ResNet50(class_num=10)
>>> len(list(net.parameters_and_names()))
267
"""
from __future__ import annotations

import math

from msjax import nn, ops
from msjax.common.initializer import HeNormal, HeUniform

__all__ = ["ResNet", "ResidualBlock", "ResidualBlockBase", "ResNet18", "ResNet34", "ResNet50", "ResNet101",
           "resnet18", "resnet34", "resnet50", "resnet101"]


def _conv(in_channel, out_channel, kernel_size, stride=1, res_base=False):
    """The zoo's _conv1x1/_conv3x3/_conv7x7: "same" padding, or with ``res_base`` explicit (k // 2)."""
    weight = HeNormal(mode="fan_out", nonlinearity="relu")
    if res_base:
        return nn.Conv2d(in_channel, out_channel, kernel_size=kernel_size, stride=stride, padding=kernel_size // 2,
                         pad_mode="pad", weight_init=weight)
    return nn.Conv2d(in_channel, out_channel, kernel_size=kernel_size, stride=stride, padding=0, pad_mode="same",
                     weight_init=weight)


def _bn(channel, res_base=False):
    """The zoo's _bn: eps 1e-4 / momentum 0.9, or with ``res_base`` eps 1e-5 / momentum 0.1."""
    eps, momentum = (1e-5, 0.1) if res_base else (1e-4, 0.9)
    return nn.BatchNorm2d(channel, eps=eps, momentum=momentum, gamma_init=1, beta_init=0, moving_mean_init=0,
                          moving_var_init=1)


def _fc(in_channel, out_channel):
    return nn.Dense(in_channel, out_channel, has_bias=True, weight_init=HeUniform(math.sqrt(5)), bias_init=0)


class ResidualBlock(nn.Cell):
    """Bottleneck block: 1x1 -> 3x3 (carries the stride) -> 1x1, expansion 4."""
    expansion = 4

    def __init__(self, in_channel, out_channel, stride=1):
        super().__init__()
        channel = out_channel // self.expansion
        self.conv1 = _conv(in_channel, channel, 1)
        self.bn1 = _bn(channel)
        self.conv2 = _conv(channel, channel, 3, stride=stride)
        self.bn2 = _bn(channel)
        self.conv3 = _conv(channel, out_channel, 1)
        self.bn3 = _bn(out_channel)
        self.relu = nn.ReLU()
        self.down_sample = stride != 1 or in_channel != out_channel
        self.down_sample_layer = None
        if self.down_sample:
            self.down_sample_layer = nn.SequentialCell([_conv(in_channel, out_channel, 1, stride=stride),
                                                        _bn(out_channel)])

    def construct(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.down_sample:
            identity = self.down_sample_layer(identity)
        return self.relu(out + identity)


class ResidualBlockBase(nn.Cell):
    """Basic block of ResNet-18/34: 3x3 (carries the stride) -> 3x3, no expansion. As in the zoo, its
    two BatchNorms are the plain ``_bn`` and only the down-sample branch follows ``res_base``."""

    def __init__(self, in_channel, out_channel, stride=1, res_base=True):
        super().__init__()
        self.res_base = res_base
        self.conv1 = _conv(in_channel, out_channel, 3, stride=stride, res_base=res_base)
        self.bn1d = _bn(out_channel)
        self.conv2 = _conv(out_channel, out_channel, 3, stride=1, res_base=res_base)
        self.bn2d = _bn(out_channel)
        self.relu = nn.ReLU()
        self.down_sample = stride != 1 or in_channel != out_channel
        self.down_sample_layer = None
        if self.down_sample:
            self.down_sample_layer = nn.SequentialCell([_conv(in_channel, out_channel, 1, stride=stride,
                                                              res_base=res_base), _bn(out_channel, res_base)])

    def construct(self, x):
        identity = x
        out = self.relu(self.bn1d(self.conv1(x)))
        out = self.bn2d(self.conv2(out))
        if self.down_sample:
            identity = self.down_sample_layer(identity)
        return self.relu(out + identity)


class ResNet(nn.Cell):
    """ResNet v1: 7x7 stem, max pool, four stages of ``block``, global mean, ``end_point`` Dense.

    ``res_base=True`` is the zoo's ResNet-18/34 stem: an explicitly padded 7x7 convolution, the
    ``res_base`` BatchNorm, then a 1-pixel Pad and a valid 3x3 max pool."""

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
        self.layer1 = self._make_layer(block, layer_nums[0], in_channels[0], out_channels[0], strides[0])
        self.layer2 = self._make_layer(block, layer_nums[1], in_channels[1], out_channels[1], strides[1])
        self.layer3 = self._make_layer(block, layer_nums[2], in_channels[2], out_channels[2], strides[2])
        self.layer4 = self._make_layer(block, layer_nums[3], in_channels[3], out_channels[3], strides[3])
        self.mean = ops.ReduceMean(keep_dims=True)
        self.flatten = nn.Flatten()
        self.end_point = _fc(out_channels[3], num_classes)

    @staticmethod
    def _make_layer(block, layer_num, in_channel, out_channel, stride):
        layers = [block(in_channel, out_channel, stride=stride)]
        for _ in range(1, layer_num):
            layers.append(block(out_channel, out_channel, stride=1))
        return nn.SequentialCell(layers)

    def construct(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        if self.res_base:
            x = self.pad(x)
        x = self.maxpool(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)
        out = self.mean(x, (2, 3))
        out = self.flatten(out)
        return self.end_point(out)


class ResNet50(ResNet):
    """ResNet-50: blocks [3, 4, 6, 3], widths 256/512/1024/2048.

    >>> ResNet50(class_num=10).end_point.weight.shape
    (10, 2048)
    """

    def __init__(self, class_num=10):
        super().__init__(ResidualBlock, [3, 4, 6, 3], [64, 256, 512, 1024], [256, 512, 1024, 2048], [1, 2, 2, 2],
                         class_num)


class ResNet18(ResNet):
    """ResNet-18: basic blocks [2, 2, 2, 2], widths 64/128/256/512, the ``res_base`` stem."""

    def __init__(self, class_num=10):
        super().__init__(ResidualBlockBase, [2, 2, 2, 2], [64, 64, 128, 256], [64, 128, 256, 512], [1, 2, 2, 2],
                         class_num, res_base=True)


class ResNet34(ResNet):
    """ResNet-34: basic blocks [3, 4, 6, 3], widths 64/128/256/512, the ``res_base`` stem."""

    def __init__(self, class_num=10):
        super().__init__(ResidualBlockBase, [3, 4, 6, 3], [64, 64, 128, 256], [64, 128, 256, 512], [1, 2, 2, 2],
                         class_num, res_base=True)


class ResNet101(ResNet):
    """ResNet-101: bottleneck blocks [3, 4, 23, 3], widths 256/512/1024/2048."""

    def __init__(self, class_num=10):
        super().__init__(ResidualBlock, [3, 4, 23, 3], [64, 256, 512, 1024], [256, 512, 1024, 2048], [1, 2, 2, 2],
                         class_num)


def resnet18(class_num=10):
    """The model zoo's constructor name for :class:`ResNet18`."""
    return ResNet18(class_num)


def resnet34(class_num=10):
    """The model zoo's constructor name for :class:`ResNet34`."""
    return ResNet34(class_num)


def resnet50(class_num=10):
    """The model zoo's constructor name for :class:`ResNet50`."""
    return ResNet50(class_num)


def resnet101(class_num=10):
    """The model zoo's constructor name for :class:`ResNet101`."""
    return ResNet101(class_num)
