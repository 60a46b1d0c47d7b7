"""BatchNorm1d/2d/3d, LayerNorm, GroupNorm and InstanceNorm2d with MindSpore's parameters and update rule.

Parameters are defined in MindSpore's checkpoint order: moving_mean, moving_variance, gamma, beta.
In training the batch is normalised with its biased variance, and the moving statistics follow
``moving = momentum * moving + (1 - momentum) * batch`` with the *unbiased* batch variance (as
MindSpore 2.10 on CPU does).

>>> bn = nn.BatchNorm2d(3)
>>> [name for name, _ in bn.parameters_and_names()]
['moving_mean', 'moving_variance', 'gamma', 'beta']
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from msjax.common import dtype as mstype
from msjax.common.initializer import initializer
from msjax.common.tensor import Parameter
from msjax.errors import LayerArgumentError
from msjax.nn.cell import Cell
from msjax.ops import _batch_norm, _lowering, _nn

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LayerNorm", "GroupNorm", "InstanceNorm2d"]


class _BatchNorm(Cell):
    _ndims = ()
    #: MindSpore parameter <- torch.nn.BatchNorm*d state-dict key (msjax.checkpoint.torch_format)
    TORCH_NAMES = {"moving_mean": "running_mean", "moving_variance": "running_var", "gamma": "weight",
                   "beta": "bias"}
    #: PyTorch-only bookkeeping MindSpore has no parameter for
    TORCH_DROPPED = ("num_batches_tracked",)

    def __init__(self, num_features, eps=1e-5, momentum=0.9, affine=True, gamma_init="ones", beta_init="zeros",
                 moving_mean_init="zeros", moving_var_init="ones", use_batch_statistics=None, data_format="NCHW",
                 dtype=mstype.float32):
        super().__init__()
        name = type(self).__name__
        if not isinstance(num_features, int) or num_features < 1:
            raise LayerArgumentError(f"{name}: num_features must be a positive int, got {num_features!r}")
        if not 0 <= momentum <= 1:
            raise LayerArgumentError(f"{name}: momentum must be in [0, 1], got {momentum}")
        if use_batch_statistics is not None and not isinstance(use_batch_statistics, bool):
            raise LayerArgumentError(f"{name}: use_batch_statistics must be a bool or None, got {use_batch_statistics!r}")
        if data_format != "NCHW":
            raise LayerArgumentError(f"{name}: data_format must be 'NCHW', got {data_format!r}")
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.use_batch_statistics, self.affine = use_batch_statistics, affine
        self.moving_mean = Parameter(initializer(moving_mean_init, (num_features,), dtype), requires_grad=False)
        self.moving_variance = Parameter(initializer(moving_var_init, (num_features,), dtype), requires_grad=False)
        self.gamma = Parameter(initializer(gamma_init, (num_features,), dtype), requires_grad=affine)
        self.beta = Parameter(initializer(beta_init, (num_features,), dtype), requires_grad=affine)

    def construct(self, x):
        if x.ndim not in self._ndims:
            raise LayerArgumentError(f"{type(self).__name__}: expected a {' or '.join(map(str, self._ndims))}-D input, "
                             f"got shape {tuple(x.shape)}")
        gamma, beta = self.gamma.get_value(), self.beta.get_value()
        use_batch = self.training if self.use_batch_statistics is None else self.use_batch_statistics
        fast = _lowering.is_fast("bn") and jnp.issubdtype(x.dtype, jnp.floating)
        if not use_batch:
            norm = _batch_norm.apply if fast else _nn.batch_norm
            return norm(x, self.moving_mean.get_value(), self.moving_variance.get_value(), gamma, beta, self.eps)
        if fast:
            y, mean, unbiased = _batch_norm.train(x, gamma, beta, self.eps)
        else:
            mean, var, unbiased = _nn.batch_norm_stats(x)
            y = _nn.batch_norm(x, mean, var, gamma, beta, self.eps)
        m = self.momentum
        moving_mean, moving_var = self.moving_mean.get_value(), self.moving_variance.get_value()
        self.moving_mean.set_value(jax.lax.stop_gradient(m * moving_mean + (1 - m) * mean).astype(moving_mean.dtype))
        self.moving_variance.set_value(
            jax.lax.stop_gradient(m * moving_var + (1 - m) * unbiased).astype(moving_var.dtype))
        return y


class BatchNorm2d(_BatchNorm):
    """Batch normalisation over the channels (axis 1) of an N x C x H x W input."""
    _ndims = (4,)


class BatchNorm1d(_BatchNorm):
    """Batch normalisation over the channels (axis 1) of an N x C or N x C x L input."""
    _ndims = (2, 3)


class _BatchNorm3dInner(BatchNorm2d):
    """BatchNorm3d's ``bn2d`` child; PyTorch's BatchNorm3d keeps these keys on the layer itself."""
    #: torch_format.names_of_net: this cell's torch keys sit at its parent's level
    TORCH_INLINE = True


class BatchNorm3d(Cell):
    """Batch normalisation over the channels of an N x C x D x H x W input.

    As MindSpore, the work is done by a BatchNorm2d child named ``bn2d`` on the input viewed as
    N x C x (D*H) x W, so the parameters are ``bn2d.moving_mean``, ``bn2d.moving_variance``,
    ``bn2d.gamma``, ``bn2d.beta``.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.9, affine=True, gamma_init="ones", beta_init="zeros",
                 moving_mean_init="zeros", moving_var_init="ones", use_batch_statistics=None, dtype=mstype.float32):
        super().__init__()
        self.bn2d = _BatchNorm3dInner(num_features, eps, momentum, affine, gamma_init, beta_init, moving_mean_init,
                                      moving_var_init, use_batch_statistics, "NCHW", dtype)

    def construct(self, x):
        if x.ndim != 5:
            raise LayerArgumentError(f"BatchNorm3d: expected a 5-D input, got shape {tuple(x.shape)}")
        n, c, d, h, w = x.shape
        return self.bn2d(x.reshape(n, c, d * h, w)).reshape(x.shape)


def _check_norm_args(name, eps, affine, **ints):
    problems = [f"{arg} must be a positive int, got {v!r}" for arg, v in ints.items()
                if isinstance(v, bool) or not isinstance(v, int) or v < 1]
    if not isinstance(eps, float):
        problems.append(f"eps must be a float, got {eps!r}")
    if not isinstance(affine, bool):
        problems.append(f"affine must be a bool, got {affine!r}")
    if problems:
        raise LayerArgumentError(f"{name}: " + "; ".join(problems))


class GroupNorm(Cell):
    """Normalise each of ``num_groups`` channel groups of an N x C x ... input; gamma/beta per channel."""

    #: MindSpore parameter <- torch.nn.GroupNorm state-dict key (msjax.checkpoint.torch_format)
    TORCH_NAMES = {"gamma": "weight", "beta": "bias"}

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, gamma_init="ones", beta_init="zeros",
                 dtype=mstype.float32):
        super().__init__()
        _check_norm_args("GroupNorm", eps, affine, num_groups=num_groups, num_channels=num_channels)
        if num_channels % num_groups:
            raise LayerArgumentError(f"GroupNorm: num_groups={num_groups} must divide num_channels={num_channels}")
        self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, eps, affine
        self.gamma = Parameter(initializer(gamma_init, (num_channels,), dtype), requires_grad=affine)
        self.beta = Parameter(initializer(beta_init, (num_channels,), dtype), requires_grad=affine)

    def construct(self, x):
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise LayerArgumentError(f"GroupNorm: expected an N x {self.num_channels} x ... input (num_channels), "
                                     f"got shape {tuple(x.shape)}")
        groups = x.reshape(x.shape[0], self.num_groups, -1)
        mean = jnp.mean(groups, axis=-1, keepdims=True)
        var = jnp.mean(jnp.square(groups - mean), axis=-1, keepdims=True)
        y = ((groups - mean) * jax.lax.rsqrt(var + self.eps)).reshape(x.shape)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return y * self.gamma.get_value().astype(x.dtype).reshape(shape) + \
            self.beta.get_value().astype(x.dtype).reshape(shape)


class InstanceNorm2d(Cell):
    """Normalise each channel of each sample of an N x C x H x W input by its own mean and variance.

    Train and eval both use the instance statistics. In training the moving statistics follow
    ``moving = (1 - momentum) * moving + momentum * batch`` (the mean over the batch of each
    instance's mean and unbiased variance), PyTorch's rule; MindSpore 2.10 has no CPU kernel for
    InstanceNorm to check this against.
    """

    #: MindSpore parameter <- torch.nn.InstanceNorm2d(affine=True, track_running_stats=True) key
    TORCH_NAMES = _BatchNorm.TORCH_NAMES
    TORCH_DROPPED = _BatchNorm.TORCH_DROPPED

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, gamma_init="ones", beta_init="zeros",
                 dtype=mstype.float32):
        super().__init__()
        _check_norm_args("InstanceNorm2d", eps, affine, num_features=num_features)
        if not isinstance(momentum, float) or not 0 <= momentum <= 1:
            raise LayerArgumentError(f"InstanceNorm2d: momentum must be a float in [0, 1], got {momentum!r}")
        self.num_features, self.eps, self.momentum, self.affine = num_features, eps, momentum, affine
        self.moving_mean = Parameter(initializer("zeros", (num_features,), dtype), requires_grad=False)
        self.moving_variance = Parameter(initializer("ones", (num_features,), dtype), requires_grad=False)
        self.gamma = Parameter(initializer(gamma_init, (num_features,), dtype), requires_grad=affine)
        self.beta = Parameter(initializer(beta_init, (num_features,), dtype), requires_grad=affine)

    def construct(self, x):
        if x.ndim != 4:
            raise LayerArgumentError(f"InstanceNorm2d: expected a 4-D input, got shape {tuple(x.shape)}")
        mean = jnp.mean(x, axis=(2, 3), keepdims=True)
        var = jnp.mean(jnp.square(x - mean), axis=(2, 3), keepdims=True)
        if self.training:
            count = x.shape[2] * x.shape[3]
            unbiased = var * (count / max(count - 1, 1))
            m = self.momentum
            for param, batch in ((self.moving_mean, mean), (self.moving_variance, unbiased)):
                value = param.get_value()
                update = (1 - m) * value + m * jnp.mean(batch, axis=(0, 2, 3))
                param.set_value(jax.lax.stop_gradient(update).astype(value.dtype))
        y = (x - mean) * jax.lax.rsqrt(var + self.eps)
        return y * self.gamma.get_value().astype(x.dtype).reshape(1, -1, 1, 1) + \
            self.beta.get_value().astype(x.dtype).reshape(1, -1, 1, 1)


class LayerNorm(Cell):
    """Normalise over axes ``begin_norm_axis..``; gamma/beta have ``normalized_shape``.

    >>> nn.LayerNorm((4,)).gamma.shape
    (4,)
    """

    #: MindSpore parameter <- torch.nn.LayerNorm state-dict key (msjax.checkpoint.torch_format)
    TORCH_NAMES = {"gamma": "weight", "beta": "bias"}

    def __init__(self, normalized_shape, begin_norm_axis=-1, begin_params_axis=-1, gamma_init="ones",
                 beta_init="zeros", epsilon=1e-7, dtype=mstype.float32):
        super().__init__()
        if not isinstance(normalized_shape, (tuple, list)):
            raise TypeError(f"LayerNorm: normalized_shape must be a tuple or list of ints, got {normalized_shape!r}")
        self.normalized_shape = tuple(normalized_shape)
        self.begin_norm_axis, self.begin_params_axis, self.epsilon = begin_norm_axis, begin_params_axis, epsilon
        self.gamma = Parameter(initializer(gamma_init, self.normalized_shape, dtype))
        self.beta = Parameter(initializer(beta_init, self.normalized_shape, dtype))

    def construct(self, input_x):
        return _nn.layer_norm(input_x, self.gamma.get_value(), self.beta.get_value(), self.begin_norm_axis,
                              self.begin_params_axis, self.epsilon)
