"""``msjax.models``: LeNet5 and the ResNet family with the MindSpore docs' and model zoo's parameter names.

>>> from msjax.models import LeNet5
>>> LeNet5().fc3.weight.shape
(10, 84)
"""
from msjax.models.lenet import LeNet5
from msjax.models.resnet import (ResidualBlock, ResidualBlockBase, ResNet, ResNet18, ResNet34, ResNet50, ResNet101,
                                 resnet18, resnet34, resnet50, resnet101)

__all__ = ["LeNet5", "ResNet", "ResidualBlock", "ResidualBlockBase", "ResNet18", "ResNet34", "ResNet50",
           "ResNet101", "resnet18", "resnet34", "resnet50", "resnet101"]
