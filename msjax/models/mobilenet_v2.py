"""MobileNetV2 with the MindSpore vision zoo's (mindcv 0.3.0) cell names, parameter order and initialisers.

Names follow ``mindcv/models/mobilenetv2.py``: ``features.0`` .. ``features.N`` (the stem
Conv2d/BatchNorm2d/ReLU6, one ``InvertedResidual`` per block with its ``layers`` SequentialCell,
the last point-wise Conv2d/BatchNorm2d/ReLU6), ``pool`` (global average) and ``classifier``
(Dropout, Dense: ``classifier.1.weight``). A mindcv checkpoint loads by name, strictly.

>>> net = mobilenet_v2_100(num_classes=10)
>>> net.classifier[1].weight.shape
(10, 1280)
"""
from __future__ import annotations

import math
from typing import NamedTuple

from msjax import nn
from msjax.common.initializer import Normal
from msjax.errors import LayerArgumentError

__all__ = ["MobileNetV2", "InvertedResidual", "make_divisible", "mobilenet_v2_140", "mobilenet_v2_130_224",
           "mobilenet_v2_100", "mobilenet_v2_100_192", "mobilenet_v2_100_160", "mobilenet_v2_100_128",
           "mobilenet_v2_100_96", "mobilenet_v2_075", "mobilenet_v2_075_192", "mobilenet_v2_075_160",
           "mobilenet_v2_075_128", "mobilenet_v2_075_96", "mobilenet_v2_050_224", "mobilenet_v2_050_192",
           "mobilenet_v2_050_160", "mobilenet_v2_050_128", "mobilenet_v2_050_96", "mobilenet_v2_035_224",
           "mobilenet_v2_035_192", "mobilenet_v2_035_160", "mobilenet_v2_035_128", "mobilenet_v2_035_96"]

#: t (expansion), c (output channels), n (blocks), s (first block's stride), as mindcv
INVERTED_RESIDUAL_SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                             (6, 160, 3, 2), (6, 320, 1, 1))


class FeatureInfo(NamedTuple):
    """One entry of mindcv's ``feature_info`` (a dict there; a hashable tuple here, since cell
    attributes are part of the compiled graph's key): channels, total stride, cell name."""
    chs: int
    reduction: int
    name: str


def make_divisible(v, divisor, min_value=None):
    """mindcv's ``make_divisible``: ``v`` rounded to the nearest multiple of ``divisor`` (at least
    ``min_value``, default ``divisor``), one step up where rounding lost more than 10%.

    >>> make_divisible(32 * 0.35, 8), make_divisible(1280 * 1.4, 8)
    (16, 1792)
    """
    if not min_value:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def _conv(cin, cout, kernel_size, stride=1, group=1):
    """mindcv's convolutions: explicit padding ``k // 2``, no bias, weight ``Normal(sqrt(2 / (k*k*out)))``."""
    sigma = math.sqrt(2.0 / (kernel_size * kernel_size * cout))
    return nn.Conv2d(cin, cout, kernel_size, stride, pad_mode="pad", padding=kernel_size // 2, group=group,
                     has_bias=False, weight_init=Normal(sigma=sigma, mean=0.0))


class InvertedResidual(nn.Cell):
    """Expand (1x1, unless ``expand_ratio`` is 1) -> depth-wise 3x3 (carries the stride) -> linear 1x1,
    all in ``self.layers``; the input is added back when the stride is 1 and the width is kept."""

    def __init__(self, in_channels, out_channels, stride, expand_ratio):
        super().__init__()
        if stride not in (1, 2):
            raise LayerArgumentError(f"InvertedResidual: stride must be 1 or 2, got {stride!r}")
        hidden_dim = round(in_channels * expand_ratio)
        self.use_res_connect = stride == 1 and in_channels == out_channels
        layers = []
        if expand_ratio != 1:
            layers += [_conv(in_channels, hidden_dim, 1), nn.BatchNorm2d(hidden_dim), nn.ReLU6()]
        layers += [_conv(hidden_dim, hidden_dim, 3, stride, group=hidden_dim), nn.BatchNorm2d(hidden_dim),
                   nn.ReLU6(), _conv(hidden_dim, out_channels, 1), nn.BatchNorm2d(out_channels)]
        self.layers = nn.SequentialCell(layers)

    def construct(self, x):
        if self.use_res_connect:
            return x + self.layers(x)
        return self.layers(x)


class GlobalAvgPooling(nn.Cell):
    """mindcv's ``GlobalAvgPooling``: the mean over H and W (``keep_dims`` keeps them as size 1)."""

    def __init__(self, keep_dims=False):
        super().__init__()
        self.keep_dims = keep_dims

    def construct(self, x):
        return x.mean(axis=(2, 3), keepdims=self.keep_dims)


class MobileNetV2(nn.Cell):
    """MobileNetV2 (arXiv:1801.04381) as mindcv builds it.

    Args (mindcv's names and defaults): ``alpha`` width multiplier (1.0), ``round_nearest`` channel
    divisor (8), ``in_channels`` (3), ``num_classes`` (1000). The last width is
    ``make_divisible(1280 * max(1, alpha))``; the classifier drops with p=0.2 in training.
    Initialisers as mindcv: convolutions ``Normal(sqrt(2 / n))``, BatchNorm ones/zeros, the Dense
    ``Normal(0.01)`` with a zero bias.

    >>> [n for n, _ in MobileNetV2(alpha=0.35, num_classes=2).parameters_and_names()][:3]
    ['features.0.weight', 'features.1.moving_mean', 'features.1.moving_variance']
    """

    def __init__(self, alpha=1.0, round_nearest=8, in_channels=3, num_classes=1000):
        super().__init__()
        problems = []
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha <= 0:
            problems.append(f"alpha must be a positive number, got {alpha!r}")
        if isinstance(round_nearest, bool) or not isinstance(round_nearest, int) or round_nearest < 1:
            problems.append(f"round_nearest must be a positive int, got {round_nearest!r}")
        if problems:
            raise LayerArgumentError("MobileNetV2: " + "; ".join(problems))
        input_channels = make_divisible(32 * alpha, round_nearest)
        last_channels = make_divisible(1280 * max(1.0, alpha), round_nearest)
        features = [_conv(in_channels, input_channels, 3, 2), nn.BatchNorm2d(input_channels), nn.ReLU6()]
        total_reduction = 2
        feature_info = [FeatureInfo(input_channels, total_reduction, f"features.{len(features) - 1}")]
        for t, c, n, s in INVERTED_RESIDUAL_SETTING:
            output_channel = make_divisible(c * alpha, round_nearest)
            for i in range(n):
                stride = s if i == 0 else 1
                features.append(InvertedResidual(input_channels, output_channel, stride, expand_ratio=t))
                input_channels = output_channel
                total_reduction *= stride
                feature_info.append(FeatureInfo(output_channel, total_reduction, f"features.{len(features) - 1}"))
        features += [_conv(input_channels, last_channels, 1), nn.BatchNorm2d(last_channels), nn.ReLU6()]
        feature_info.append(FeatureInfo(last_channels, total_reduction, f"features.{len(features) - 1}"))
        self.feature_info = tuple(feature_info)
        self.features = nn.SequentialCell(features)
        self.pool = GlobalAvgPooling()
        self.classifier = nn.SequentialCell([
            nn.Dropout(p=0.2),
            nn.Dense(last_channels, num_classes, weight_init=Normal(sigma=0.01, mean=0.0), bias_init="zeros"),
        ])

    def forward_features(self, x):
        return self.features(x)

    def forward_head(self, x):
        return self.classifier(self.pool(x))

    def construct(self, x):
        return self.forward_head(self.forward_features(x))


def _variant(name, alpha, image_size):
    """One of mindcv's registered constructors: ``name(pretrained=False, num_classes=1000,
    in_channels=3, **kwargs)`` with the width ``alpha`` (``image_size`` is the input its weights were
    trained at; the network itself takes any size)."""

    def build(pretrained=False, num_classes=1000, in_channels=3, **kwargs):
        if pretrained:
            raise LayerArgumentError(f"{name}: pretrained=True downloads mindcv's weights, which msjax does not "
                                     f"do; build with pretrained=False and load the .ckpt with "
                                     f"msjax.load_checkpoint and msjax.load_param_into_net")
        return MobileNetV2(alpha=alpha, num_classes=num_classes, in_channels=in_channels, **kwargs)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = (f"mindcv's ``{name}``: MobileNetV2 with width {alpha} for {image_size}x{image_size} inputs.\n\n"
                     f"    >>> {name}(num_classes=10).classifier[1].weight.shape[0]\n    10\n")
    return build


mobilenet_v2_140 = _variant("mobilenet_v2_140", 1.4, 224)
mobilenet_v2_130_224 = _variant("mobilenet_v2_130_224", 1.3, 224)
mobilenet_v2_100 = _variant("mobilenet_v2_100", 1.0, 224)
mobilenet_v2_100_192 = _variant("mobilenet_v2_100_192", 1.0, 192)
mobilenet_v2_100_160 = _variant("mobilenet_v2_100_160", 1.0, 160)
mobilenet_v2_100_128 = _variant("mobilenet_v2_100_128", 1.0, 128)
mobilenet_v2_100_96 = _variant("mobilenet_v2_100_96", 1.0, 96)
mobilenet_v2_075 = _variant("mobilenet_v2_075", 0.75, 224)
mobilenet_v2_075_192 = _variant("mobilenet_v2_075_192", 0.75, 192)
mobilenet_v2_075_160 = _variant("mobilenet_v2_075_160", 0.75, 160)
mobilenet_v2_075_128 = _variant("mobilenet_v2_075_128", 0.75, 128)
mobilenet_v2_075_96 = _variant("mobilenet_v2_075_96", 0.75, 96)
mobilenet_v2_050_224 = _variant("mobilenet_v2_050_224", 0.5, 224)
mobilenet_v2_050_192 = _variant("mobilenet_v2_050_192", 0.5, 192)
mobilenet_v2_050_160 = _variant("mobilenet_v2_050_160", 0.5, 160)
mobilenet_v2_050_128 = _variant("mobilenet_v2_050_128", 0.5, 128)
mobilenet_v2_050_96 = _variant("mobilenet_v2_050_96", 0.5, 96)
mobilenet_v2_035_224 = _variant("mobilenet_v2_035_224", 0.35, 224)
mobilenet_v2_035_192 = _variant("mobilenet_v2_035_192", 0.35, 192)
mobilenet_v2_035_160 = _variant("mobilenet_v2_035_160", 0.35, 160)
mobilenet_v2_035_128 = _variant("mobilenet_v2_035_128", 0.35, 128)
mobilenet_v2_035_96 = _variant("mobilenet_v2_035_96", 0.35, 96)
