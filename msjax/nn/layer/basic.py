"""Dense, Flatten, Identity, Dropout, Dropout1d and Dropout2d with MindSpore 2.10's arguments, defaults and parameter layouts.

>>> nn.Dense(3, 4)(Tensor(np.ones((2, 3), np.float32))).shape
(2, 4)
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from msjax.common import dtype as mstype
from msjax.common._initializers import draw_seed
from msjax.common.initializer import HeUniform, Uniform, initializer
from msjax.common.tensor import Parameter, Tensor
from msjax.errors import LayerArgumentError
from msjax.nn.cell import Cell
from msjax.nn.layer.activation import get_activation
from msjax.ops.primitives import Primitive

__all__ = ["Dense", "Flatten", "Identity", "Dropout", "Dropout1d", "Dropout2d"]


class Dense(Cell):
    """Fully connected layer ``activation(x @ weight.T + bias)``; weight is ``(out, in)``.

    Defaults as MindSpore: weight ``HeUniform(sqrt(5))``, bias ``Uniform(1/sqrt(in_channels))``.

    >>> nn.Dense(3, 4).weight.shape
    (4, 3)
    """

    #: MindSpore parameter <- torch.nn.Linear state-dict key (msjax.checkpoint.torch_format)
    TORCH_NAMES = {"weight": "weight", "bias": "bias"}

    def __init__(self, in_channels, out_channels, weight_init=None, bias_init=None, has_bias=True,
                 activation=None, dtype=mstype.float32):
        super().__init__()
        self.in_channels, self.out_channels, self.has_bias = in_channels, out_channels, bool(has_bias)
        if isinstance(weight_init, Tensor) and tuple(weight_init.shape) != (out_channels, in_channels):
            raise LayerArgumentError(f"Dense: weight_init has shape {weight_init.shape}, expected "
                             f"{(out_channels, in_channels)} (out_channels, in_channels)")
        if weight_init is None:
            weight_init = HeUniform(math.sqrt(5))
        self.weight = Parameter(initializer(weight_init, (out_channels, in_channels), dtype))
        self.bias = None
        if self.has_bias:
            if bias_init is None:
                bias_init = Uniform(scale=1 / math.sqrt(in_channels))
            self.bias = Parameter(initializer(bias_init, (out_channels,), dtype))
        self.activation = get_activation(activation) if isinstance(activation, str) else activation
        if activation is not None and not isinstance(self.activation, (Cell, Primitive)):
            raise TypeError(f"Dense: activation must be a str, Cell or Primitive, got {type(activation).__name__}")
        self.activation_flag = self.activation is not None

    def construct(self, x):
        shape = x.shape
        if x.ndim != 2:
            x = x.reshape(-1, shape[-1])
        x = x @ self.weight.get_value().astype(x.dtype).T
        if self.has_bias:
            x = x + self.bias.get_value().astype(x.dtype)
        if self.activation_flag:
            x = self.activation(x)
        if len(shape) != 2:
            x = x.reshape(shape[:-1] + (x.shape[-1],))
        return x


class Flatten(Cell):
    """Flatten dimensions ``start_dim..end_dim`` (default: all but the batch dimension)."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def construct(self, x):
        if x.ndim == 0:
            return x.reshape(1)
        start, end = self.start_dim % x.ndim, self.end_dim % x.ndim
        return x.reshape(x.shape[:start] + (-1,) + x.shape[end + 1:]) if end >= start else x


class Dropout(Cell):
    """Zero elements with probability ``p`` (or ``1 - keep_prob``) in training; identity in eval.

    ``p`` wins over ``keep_prob``. The random stream is an ``nnx.Rngs`` seeded from msjax's seed; its
    counter advances on each training call, also under jit.

    >>> nn.Dropout(p=0.5).set_train(False)(Tensor(np.ones(3, np.float32))).asnumpy()
    array([1., 1., 1.], dtype=float32)
    """

    def __init__(self, keep_prob=0.5, p=None, dtype=mstype.float32):
        super().__init__()
        if p is None:
            if not 0 < keep_prob <= 1:
                raise LayerArgumentError(f"Dropout: keep_prob must be in (0, 1], got {keep_prob}")
        else:
            if not 0 <= p < 1:
                raise LayerArgumentError(f"Dropout: p must be in [0, 1), got {p}")
            keep_prob = 1.0 - p
        self.p, self.keep_prob = p, keep_prob
        self.rngs = nnx.Rngs(dropout=draw_seed())

    def construct(self, x):
        if not self.training or self.keep_prob == 1 or self.p == 0:
            return x
        keep = jax.random.bernoulli(self.rngs.dropout(), self.keep_prob, x.shape)
        return jnp.where(keep, x / self.keep_prob, jnp.zeros((), x.dtype))


class Identity(Cell):
    """Returns its input; takes and ignores any arguments, as MindSpore."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def construct(self, x):
        return x


class _ChannelDropout(Cell):
    """Zero whole channels (axis -ndim+1 of a batched input) with probability ``p`` in training.

    Kept channels are scaled by ``1 / (1 - p)``; eval mode is the identity.
    """
    _ndims = ()

    def __init__(self, p=0.5):
        super().__init__()
        name = type(self).__name__
        if not isinstance(p, float):
            raise TypeError(f"{name}: p must be a float, got {type(p).__name__}")
        if not 0 <= p <= 1:
            raise LayerArgumentError(f"{name}: p must be in [0, 1], got {p}")
        self.p = p
        self.rngs = nnx.Rngs(dropout=draw_seed())

    def construct(self, x):
        if x.ndim not in self._ndims:
            raise LayerArgumentError(f"{type(self).__name__}: expected a {' or '.join(map(str, self._ndims))}-D "
                                     f"input, got shape {tuple(x.shape)}")
        if not self.training or self.p == 0:
            return x
        if self.p == 1:
            return jnp.zeros_like(x)
        spatial = self._ndims[-1] - 2               # trailing axes that share one draw
        mask_shape = x.shape[:x.ndim - spatial] + (1,) * spatial
        keep = jax.random.bernoulli(self.rngs.dropout(), 1 - self.p, mask_shape)
        return jnp.where(keep, x / (1 - self.p), jnp.zeros((), x.dtype))


class Dropout1d(_ChannelDropout):
    """Dropout of whole channels of an N x C x L (or C x L) input."""
    _ndims = (2, 3)


class Dropout2d(_ChannelDropout):
    """Dropout of whole channels of an N x C x H x W input."""
    _ndims = (4,)
