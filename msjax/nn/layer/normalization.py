"""BatchNorm1d, BatchNorm2d and LayerNorm with MindSpore's parameters and update rule.

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

from msjax.common import dtype as mstype
from msjax.common.initializer import initializer
from msjax.common.tensor import Parameter
from msjax.errors import LayerArgumentError
from msjax.nn.cell import Cell
from msjax.ops import _nn

__all__ = ["BatchNorm1d", "BatchNorm2d", "LayerNorm"]


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
        if not use_batch:
            return _nn.batch_norm(x, self.moving_mean.get_value(), self.moving_variance.get_value(), gamma, beta,
                                  self.eps)
        mean, var, unbiased = _nn.batch_norm_stats(x)
        m = self.momentum
        moving_mean, moving_var = self.moving_mean.get_value(), self.moving_variance.get_value()
        self.moving_mean.set_value(jax.lax.stop_gradient(m * moving_mean + (1 - m) * mean).astype(moving_mean.dtype))
        self.moving_variance.set_value(
            jax.lax.stop_gradient(m * moving_var + (1 - m) * unbiased).astype(moving_var.dtype))
        return _nn.batch_norm(x, mean, var, gamma, beta, self.eps)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation over the channels (axis 1) of an N x C x H x W input."""
    _ndims = (4,)


class BatchNorm1d(_BatchNorm):
    """Batch normalisation over the channels (axis 1) of an N x C or N x C x L input."""
    _ndims = (2, 3)


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
