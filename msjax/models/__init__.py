"""``msjax.models``: LeNet5, the ResNet family, MobileNetV2 and the Vision Transformer with the MindSpore
docs' and model zoos' parameter names.

>>> from msjax.models import LeNet5
>>> LeNet5().fc3.weight.shape
(10, 84)
"""
from msjax.models.lenet import LeNet5
from msjax.models.mobilenet_v2 import (InvertedResidual, MobileNetV2, mobilenet_v2_035_96, mobilenet_v2_035_128,
                                       mobilenet_v2_035_160, mobilenet_v2_035_192, mobilenet_v2_035_224,
                                       mobilenet_v2_050_96, mobilenet_v2_050_128, mobilenet_v2_050_160,
                                       mobilenet_v2_050_192, mobilenet_v2_050_224, mobilenet_v2_075,
                                       mobilenet_v2_075_96, mobilenet_v2_075_128, mobilenet_v2_075_160,
                                       mobilenet_v2_075_192, mobilenet_v2_100, mobilenet_v2_100_96,
                                       mobilenet_v2_100_128, mobilenet_v2_100_160, mobilenet_v2_100_192,
                                       mobilenet_v2_130_224, mobilenet_v2_140)
from msjax.models.resnet import (ResidualBlock, ResidualBlockBase, ResNet, ResNet18, ResNet34, ResNet50, ResNet101,
                                 resnet18, resnet34, resnet50, resnet101)
from msjax.models.vit import (VisionTransformer, vit_b_16_224, vit_b_16_384, vit_b_32_224, vit_b_32_384,
                              vit_l_16_224, vit_l_16_384, vit_l_32_224)

__all__ = ["LeNet5", "ResNet", "ResidualBlock", "ResidualBlockBase", "ResNet18", "ResNet34", "ResNet50",
           "ResNet101", "resnet18", "resnet34", "resnet50", "resnet101",
           "MobileNetV2", "InvertedResidual", "mobilenet_v2_140", "mobilenet_v2_130_224", "mobilenet_v2_100",
           "mobilenet_v2_100_192", "mobilenet_v2_100_160", "mobilenet_v2_100_128", "mobilenet_v2_100_96",
           "mobilenet_v2_075", "mobilenet_v2_075_192", "mobilenet_v2_075_160", "mobilenet_v2_075_128",
           "mobilenet_v2_075_96", "mobilenet_v2_050_224", "mobilenet_v2_050_192", "mobilenet_v2_050_160",
           "mobilenet_v2_050_128", "mobilenet_v2_050_96", "mobilenet_v2_035_224", "mobilenet_v2_035_192",
           "mobilenet_v2_035_160", "mobilenet_v2_035_128", "mobilenet_v2_035_96",
           "VisionTransformer", "vit_b_16_224", "vit_b_16_384", "vit_l_16_224", "vit_l_16_384", "vit_b_32_224",
           "vit_b_32_384", "vit_l_32_224"]
