"""``msjax.models``: LeNet5 and ResNet50 with the MindSpore docs' and model zoo's parameter names.

>>> from msjax.models import LeNet5
>>> LeNet5().fc3.weight.shape
(10, 84)
"""
from msjax.models.lenet import LeNet5
from msjax.models.resnet import ResidualBlock, ResNet, ResNet50, resnet50

__all__ = ["LeNet5", "ResNet", "ResidualBlock", "ResNet50", "resnet50"]
