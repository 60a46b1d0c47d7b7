"""MindSpore networks that mirror the zoo's blocks, for tests/test_mindir_zoo.py (run by MindSpore
itself in the oracle subprocess: it compiles a Cell from its source file)."""
import numpy as np
import mindspore as ms
from mindspore import nn, ops, Parameter, Tensor


def cbr(cin, cout, k, s=1, groups=1, act=None):
    layers = [nn.Conv2d(cin, cout, k, s, pad_mode="pad", padding=k // 2, group=groups, has_bias=False),
              nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(act)
    return nn.SequentialCell(layers)


class BasicBlock(nn.Cell):
    def __init__(self, cin=4, cout=8, stride=2):
        super().__init__()
        self.conv1 = cbr(cin, cout, 3, stride, act=nn.ReLU())
        self.conv2 = cbr(cout, cout, 3)
        self.down = cbr(cin, cout, 1, stride)
        self.relu = nn.ReLU()

    def construct(self, x):
        identity = self.down(x)
        out = self.conv2(self.conv1(x))
        out += identity
        return self.relu(out)


class Bottleneck(nn.Cell):
    def __init__(self, c=8):
        super().__init__()
        self.a = cbr(c, 4, 1, act=nn.ReLU())
        self.b = cbr(4, 4, 3, act=nn.ReLU())
        self.c = cbr(4, c, 1)
        self.relu = nn.ReLU()

    def construct(self, x):
        out = self.c(self.b(self.a(x)))
        out += x
        return self.relu(out)


class InvertedResidual(nn.Cell):
    def __init__(self, c=4, t=4):
        super().__init__()
        self.block = nn.SequentialCell([cbr(c, c * t, 1, act=nn.ReLU6()),
                                        cbr(c * t, c * t, 3, groups=c * t, act=nn.ReLU6()),
                                        cbr(c * t, c, 1)])

    def construct(self, x):
        return x + self.block(x)


class SE(nn.Cell):
    def __init__(self, c, gate):
        super().__init__()
        self.fc1 = nn.Conv2d(c, c // 2, 1, has_bias=True)
        self.fc2 = nn.Conv2d(c // 2, c, 1, has_bias=True)
        self.act = nn.ReLU()
        self.gate = gate

    def construct(self, x):
        s = ops.mean(x, (2, 3), keep_dims=True)
        return x * self.gate(self.fc2(self.act(self.fc1(s))))


class MobileNetV3Block(nn.Cell):
    def __init__(self, c=4):
        super().__init__()
        self.expand = cbr(c, 8, 1, act=nn.HSwish())
        self.dw = cbr(8, 8, 3, groups=8, act=nn.HSwish())
        self.se = SE(8, nn.HSigmoid())
        self.project = cbr(8, c, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def construct(self, x):
        y = x + self.project(self.se(self.dw(self.expand(x))))
        return self.pool(y)


class MBConv(nn.Cell):
    def __init__(self, c=4):
        super().__init__()
        self.expand = cbr(c, 8, 1, act=nn.SiLU())
        self.dw = cbr(8, 8, 3, groups=8, act=nn.SiLU())
        self.se = SE(8, nn.Sigmoid())
        self.project = cbr(8, c, 1)

    def construct(self, x):
        return x + self.project(self.se(self.dw(self.expand(x))))


class Attention(nn.Cell):
    """ViT-style attention written by hand: qkv split/unstack."""
    def __init__(self, dim=8, heads=2):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Dense(dim, dim * 3)
        self.proj = nn.Dense(dim, dim)
        self.scale = (dim // heads) ** -0.5
        self.softmax = nn.Softmax(-1)

    def construct(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).transpose(2, 0, 3, 1, 4)
        q, k, v = ops.unstack(qkv, 0)
        attn = self.softmax(ops.matmul(q, k.swapaxes(-2, -1)) * self.scale)
        out = ops.matmul(attn, v).transpose(0, 2, 1, 3).reshape(b, n, c)
        return self.proj(out)


class ViT(nn.Cell):
    def __init__(self, dim=8):
        super().__init__()
        self.patch = nn.Conv2d(3, dim, 4, 4, has_bias=True)
        self.cls = Parameter(Tensor(np.random.default_rng(3).normal(size=(1, 1, dim)).astype(np.float32)), name="cls")
        self.pos = Parameter(Tensor(np.random.default_rng(4).normal(size=(1, 5, dim)).astype(np.float32)), name="pos")
        self.norm1 = nn.LayerNorm((dim,))
        self.attn = Attention(dim)
        self.norm2 = nn.LayerNorm((dim,))
        self.mlp = nn.SequentialCell([nn.Dense(dim, 16), nn.GELU(), nn.Dense(16, dim)])

    def construct(self, x):
        x = self.patch(x)
        b, c, h, w = x.shape
        x = x.reshape(b, c, h * w).transpose(0, 2, 1)
        cls = ops.tile(self.cls, (b, 1, 1))
        x = ops.concat((cls, x), 1) + self.pos
        x = x + self.attn(self.norm1(x))
        x = x + self.mlp(self.norm2(x))
        return x[:, 0]


class MHA(nn.Cell):
    def __init__(self):
        super().__init__()
        self.mha = nn.MultiheadAttention(8, 2)

    def construct(self, q):
        return self.mha(q, q, q)[0]


class Encoder(nn.Cell):
    def __init__(self):
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, batch_first=True)

    def construct(self, x):
        return self.layer(x)


class LSTM(nn.Cell):
    def __init__(self, bidirectional=False, num_layers=1):
        super().__init__()
        self.rnn = nn.LSTM(4, 5, num_layers=num_layers, batch_first=True, bidirectional=bidirectional)

    def construct(self, x):
        out, (h, c) = self.rnn(x)
        return out, h, c


class GRU(nn.Cell):
    def __init__(self, bidirectional=False):
        super().__init__()
        self.rnn = nn.GRU(4, 5, batch_first=True, bidirectional=bidirectional)

    def construct(self, x):
        out, h = self.rnn(x)
        return out, h


class RNN(nn.Cell):
    def __init__(self, bidirectional=False):
        super().__init__()
        self.rnn = nn.RNN(4, 5, batch_first=True, bidirectional=bidirectional)

    def construct(self, x):
        out, h = self.rnn(x)
        return out, h


class Dense(nn.Cell):
    def __init__(self):
        super().__init__()
        self.a = cbr(4, 2, 3, act=nn.ReLU())
        self.b = cbr(6, 2, 3, act=nn.ReLU())

    def construct(self, x):
        x = ops.concat((x, self.a(x)), 1)
        return ops.concat((x, self.b(x)), 1)


class Inception(nn.Cell):
    def __init__(self):
        super().__init__()
        self.pool = nn.AvgPool2d(3, 1, pad_mode="pad", padding=1)
        self.pool2 = nn.AvgPool2d(3, 1, pad_mode="pad", padding=1, count_include_pad=False)
        self.mp = nn.MaxPool2d(3, 2, pad_mode="pad", padding=1)

    def construct(self, x):
        return self.pool(x), self.pool2(x), self.mp(x)


class IfNet(nn.Cell):
    def construct(self, x):
        if x.sum() > 0:
            y = x * 2
        else:
            y = x - 1
        return y


class WhileNet(nn.Cell):
    def construct(self, x):
        i = Tensor(0, ms.int32)
        while x.sum() < 100:
            x = x * 2
            i = i + 1
        return x, i


class ListNet(nn.Cell):
    def construct(self, x):
        parts = [x * 1, x + 1]
        parts.append(x - 1)
        return parts[0] + parts[2], (parts[1], x)


class IfParam(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc = nn.Dense(4, 4)
        self.w = Parameter(Tensor(np.full((4,), 0.5, np.float32)), name="w")

    def construct(self, v):
        if v.sum() > 0:
            y = self.fc(v) * self.w
        else:
            y = v - self.w
        return y + 1


class WhileParam(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc = nn.Dense(4, 4)

    def construct(self, v):
        n = 0
        while ops.abs(v).sum() < 50:
            v = self.fc(v) * 2 + 1
            if v.sum() > 0:
                v = v * 1.5
            n += 1
        return v, n
