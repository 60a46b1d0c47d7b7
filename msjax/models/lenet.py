"""LeNet5 exactly as the MindSpore docs define it (input N x num_channel x 32 x 32).

>>> [name for name, _ in LeNet5().parameters_and_names()][:3]
['conv1.weight', 'conv2.weight', 'fc1.weight']
"""
from __future__ import annotations

from msjax import nn
from msjax.common.initializer import Normal

__all__ = ["LeNet5"]


class LeNet5(nn.Cell):
    """Two valid 5x5 convolutions without bias, max pooling, three Dense layers (Normal(0.02) weights)."""

    def __init__(self, num_class=10, num_channel=1):
        super().__init__()
        self.conv1 = nn.Conv2d(num_channel, 6, 5, pad_mode="valid")
        self.conv2 = nn.Conv2d(6, 16, 5, pad_mode="valid")
        self.fc1 = nn.Dense(16 * 5 * 5, 120, weight_init=Normal(0.02))
        self.fc2 = nn.Dense(120, 84, weight_init=Normal(0.02))
        self.fc3 = nn.Dense(84, num_class, weight_init=Normal(0.02))
        self.relu = nn.ReLU()
        self.max_pool2d = nn.MaxPool2d(kernel_size=2, stride=2)
        self.flatten = nn.Flatten()

    def construct(self, x):
        x = self.max_pool2d(self.relu(self.conv1(x)))
        x = self.max_pool2d(self.relu(self.conv2(x)))
        x = self.flatten(x)
        x = self.relu(self.fc1(x))
        x = self.relu(self.fc2(x))
        return self.fc3(x)
