"""Activation cells (ReLU, GELU, Softmax, PReLU, HSwish, ...) and ``get_activation`` by name.

>>> nn.ReLU()(Tensor(np.array([-1.0, 2.0], np.float32))).asnumpy()
array([0., 2.], dtype=float32)
"""
from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp
import numpy as np

from msjax.common.tensor import Parameter, Tensor
from msjax.errors import LayerArgumentError
from msjax.nn.cell import Cell
from msjax.ops import _nn

__all__ = ["ReLU", "GELU", "Softmax", "Sigmoid", "Tanh", "ReLU6", "LeakyReLU", "PReLU", "HSwish", "HSigmoid",
           "SiLU", "Mish", "LogSoftmax", "get_activation"]


class ReLU(Cell):
    """``max(x, 0)``."""

    def construct(self, x):
        return jax.nn.relu(x)


class Sigmoid(Cell):
    def construct(self, x):
        return jax.nn.sigmoid(x)


class Tanh(Cell):
    def construct(self, x):
        return jnp.tanh(x)


class GELU(Cell):
    """GELU; ``approximate=True`` (MindSpore's default) is the tanh form, False the erf form."""

    def __init__(self, approximate=True):
        super().__init__()
        if not isinstance(approximate, bool):
            raise TypeError(f"GELU: approximate must be a bool, got {approximate!r}")
        self.approximate = "tanh" if approximate else "none"

    def construct(self, x):
        return _nn.gelu(x, self.approximate)


class Softmax(Cell):
    """Softmax along ``axis`` (default -1)."""

    def __init__(self, axis=-1):
        super().__init__()
        self.axis = axis

    def construct(self, x):
        return jax.nn.softmax(x, axis=self.axis)


class LogSoftmax(Cell):
    """``log(softmax(x))`` along ``axis`` (default -1)."""

    def __init__(self, axis=-1):
        super().__init__()
        self.axis = axis

    def construct(self, x):
        return jax.nn.log_softmax(x, axis=self.axis)


class ReLU6(Cell):
    """``min(max(x, 0), 6)``."""

    def construct(self, x):
        return jax.nn.relu6(x)


class LeakyReLU(Cell):
    """``max(alpha * x, x)`` (``min`` when ``alpha > 1``), as MindSpore computes it."""

    def __init__(self, alpha=0.2):
        super().__init__()
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
            raise TypeError(f"LeakyReLU: alpha must be a float or int, got {type(alpha).__name__}")
        self.alpha = float(alpha)

    def construct(self, x):
        scaled = self.alpha * x
        return jnp.maximum(scaled, x) if self.alpha <= 1 else jnp.minimum(scaled, x)


class PReLU(Cell):
    """``x`` where positive, else ``w * x`` with one learned slope per channel (axis 1).

    The slope Parameter is ``w`` with shape ``(channel,)``; ``w`` may be a float (filled), a list of
    ``channel`` floats or a 1-D float Tensor, as MindSpore.
    """

    #: MindSpore parameter <- torch.nn.PReLU state-dict key (msjax.checkpoint.torch_format)
    TORCH_NAMES = {"w": "weight"}

    def __init__(self, channel=1, w=0.25):
        super().__init__()
        if isinstance(channel, bool) or not isinstance(channel, int) or channel < 1:
            raise LayerArgumentError(f"PReLU: channel must be a positive int, got {channel!r}")
        if isinstance(w, (float, np.floating)):
            value = np.full((channel,), w, np.float32)
        elif isinstance(w, list):
            bad = [v for v in w if not isinstance(v, (float, np.floating))]
            if len(w) != channel or bad:
                raise LayerArgumentError(f"PReLU: w as a list needs {channel} floats (channel), got {w!r}")
            value = np.asarray(w, np.float32)
        elif isinstance(w, Tensor):
            if str(w.dtype) not in ("Float16", "Float32") or tuple(w.shape) != (channel,):
                raise LayerArgumentError(f"PReLU: w as a Tensor must be float16/float32 with shape ({channel},) "
                                         f"(channel), got {w.dtype} {tuple(w.shape)}")
            value = w
        else:
            raise TypeError(f"PReLU: w must be a float, list or Tensor, got {type(w).__name__}")
        self.channel = channel
        self.w = Parameter(value)

    def construct(self, x):
        w = self.w.get_value().astype(x.dtype)
        if x.ndim >= 2:
            w = w.reshape((1, -1) + (1,) * (x.ndim - 2))
        return jnp.where(x > 0, x, w * x)


class HSigmoid(Cell):
    """Hard sigmoid ``relu6(x + 3) / 6``."""

    def construct(self, x):
        return jax.nn.relu6(x + 3) / 6


class HSwish(Cell):
    """Hard swish ``x * relu6(x + 3) / 6``."""

    def construct(self, x):
        return x * jax.nn.relu6(x + 3) / 6


class SiLU(Cell):
    """``x * sigmoid(x)``."""

    def construct(self, x):
        return x * jax.nn.sigmoid(x)


class Mish(Cell):
    """``x * tanh(softplus(x))``."""

    def construct(self, x):
        return x * jnp.tanh(jax.nn.softplus(x))


#: MindSpore's ``get_activation`` names of the cells msjax has
_ACTIVATIONS = {"relu": ReLU, "gelu": GELU, "softmax": Softmax, "sigmoid": Sigmoid, "tanh": Tanh, "relu6": ReLU6,
                "leakyrelu": LeakyReLU, "prelu": PReLU, "hswish": HSwish, "hsigmoid": HSigmoid, "silu": SiLU,
                "mish": Mish, "logsoftmax": LogSoftmax}



def get_activation(name, prim_name=None):
    """The activation cell named ``name`` ("relu", "gelu", ...); None for None.

    >>> type(get_activation("relu")).__name__
    'ReLU'
    """
    if name is None:
        return None
    try:
        return _ACTIVATIONS[name.lower()]()
    except KeyError:
        raise LayerArgumentError(f"unknown activation {name!r}; known: {sorted(_ACTIVATIONS)}") from None
