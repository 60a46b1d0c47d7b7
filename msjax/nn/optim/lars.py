"""``LARS``: MindSpore's layer-wise adaptive rate scaling, an optax step in front of another optimizer.

For each parameter ``w`` that ``lars_filter`` keeps (by default every name without 'LayerNorm' or
'bias'), MindSpore's LARSUpdate replaces the gradient ``g`` (already divided by ``loss_scale``) with

    trust = coefficient * ||w|| / (||g|| + wd * ||w|| + epsilon)
    trust = clip(trust / lr, 0, 1)                                (use_clip=True; lr: the inner one's)
    g     = trust * (g + wd * w)

``wd`` being the wrapped optimizer's weight decay for ``w`` (0 where its decay filter leaves ``w``
out). Parameters the filter rejects keep ``g``, with no weight decay at all. Then the wrapped
optimizer's own rule and learning rate run; as in MindSpore, wrapping turns the wrapped optimizer's
weight decay and loss-scale division off, since LARS does both.

State: LARS shares the wrapped optimizer's ``global_step`` and adds MindSpore's two placeholders,
``fake_lr`` and ``fake_param`` (Float32 [], zero), so a ``TrainOneStepCell`` checkpoint lists
``global_step, fake_lr, fake_param`` and then the wrapped optimizer's names (``learning_rate``,
``momentum``, ``moments.<param>`` for Momentum), as MindSpore 2.10 writes it.

>>> opt = LARS(Momentum(net.trainable_params(), 0.1, 0.9), epsilon=1e-8, coefficient=0.02)
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from msjax.checkpoint.names import path_to_name
from msjax.common.tensor import Parameter
from msjax.errors import LayerArgumentError
from msjax.nn.cell import Cell
from msjax.nn.optim._checks import check_bool
from msjax.nn.optim.optimizer import Optimizer

__all__ = ["LARS"]


def _default_filter(param):
    return "LayerNorm" not in param.name and "bias" not in param.name


def scale_by_lars(flags, weight_decays, epsilon, coefficient, use_clip, lr):
    """LARSUpdate per parameter: ``trust * (g + wd_i * w)`` where ``flags[i]``, else ``g``."""
    lrs = lr if isinstance(lr, tuple) else (lr,) * len(flags)

    def one(i, g, w):
        if not flags[i]:
            return g
        w = w.astype(g.dtype)
        w_norm, g_norm = jnp.sqrt(jnp.sum(w * w)), jnp.sqrt(jnp.sum(g * g))
        trust = coefficient * w_norm / (g_norm + weight_decays[i] * w_norm + epsilon)
        if use_clip:
            trust = jnp.clip(trust / lrs[i], 0.0, 1.0)
        return trust * (g + weight_decays[i] * w)

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("LARS needs the parameters: call update(grads, state, params)")
        return tuple(one(i, g, params[i]) for i, g in enumerate(updates)), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


class LARS(Optimizer):
    """``LARS(optimizer, epsilon=1e-05, coefficient=0.001, use_clip=False, lars_filter=...)``.

    ``STATE_TABLE`` maps the chain's named state (the wrapped optimizer's, under ``opt``) to the
    wrapped optimizer's state Parameters: ``{"opt.moments.trace": "opt.moments"}`` for Momentum.
    """

    def __init__(self, optimizer, epsilon=1e-05, coefficient=0.001, use_clip=False, lars_filter=_default_filter):
        Cell.__init__(self, auto_prefix=False)
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"For 'LARS', 'optimizer' must be an msjax Optimizer, got {type(optimizer).__name__}")
        if isinstance(optimizer, LARS):
            raise TypeError("For 'LARS', 'optimizer' is already a LARS: wrap the inner optimizer once")
        for name, value in (("epsilon", epsilon), ("coefficient", coefficient)):
            if isinstance(value, bool) or not isinstance(value, float):
                raise TypeError(f"For 'LARS', '{name}' must be a float, got {type(value).__name__}")
        check_bool("LARS", "use_clip", use_clip)
        if use_clip and optimizer.is_group_lr and optimizer.dynamic_lr:
            raise LayerArgumentError("For 'LARS', if 'use_clip' is True the wrapped optimizer cannot have both "
                                     "group learning rates and a dynamic learning rate")
        # MindSpore's order: global_step (the wrapped one's), fake_lr, fake_param, parameters, opt
        self.global_step = optimizer.global_step
        self.learning_rate = Parameter(np.zeros((), np.float32), name="fake_lr")
        self.fake_param = Parameter(np.zeros((), np.float32), name="fake_param")
        self.parameters = nnx.List(list(optimizer.parameters))
        self.opt = optimizer
        self.epsilon, self.coefficient, self.use_clip = epsilon, coefficient, use_clip
        self.lars_flag = tuple(bool(lars_filter(p)) for p in self.parameters)
        self.loss_scale = optimizer.loss_scale
        self.is_group, self.is_group_lr, self.dynamic_lr = optimizer.is_group, optimizer.is_group_lr, optimizer.dynamic_lr
        # LARSUpdate gets weight_decay / loss_scale (the optimizer stored weight_decay * loss_scale)
        self._lars_decays = tuple(wd / self.loss_scale for wd in optimizer._weight_decays)
        self._weight_decays = optimizer._weight_decays
        self._lr_names = optimizer._lr_names
        # as MindSpore: the wrapped optimizer no longer decays weights or divides by loss_scale
        optimizer._weight_decays = (0.0,) * len(optimizer._weight_decays)
        optimizer.loss_scale = 1.0
        self._state_table = tuple((f"opt.{field}", f"opt.{attr}") for field, attr in optimizer.STATE_TABLE.items())

    @property
    def STATE_TABLE(self):  # noqa: N802 (the base's class attribute, per wrapped optimizer here)
        return dict(self._state_table)

    def get_lr(self):
        """The wrapped optimizer's learning rate of this step (LARSUpdate's ``lr`` with ``use_clip``)."""
        return self.opt.get_lr()

    def _transform(self, lr):
        steps = []
        if self.loss_scale != 1.0:
            steps.append(("loss_scale", optax.scale(1.0 / self.loss_scale)))
        steps += [("lars", scale_by_lars(self.lars_flag, self._lars_decays, self.epsilon, self.coefficient,
                                         self.use_clip, lr)),
                  ("opt", self.opt._transform(lr))]
        return optax.named_chain(*steps)

    def _state_param(self, path):
        field, index = path_to_name(path[:-1]), path[-1]
        if field not in self.STATE_TABLE or not isinstance(index, jax.tree_util.SequenceKey):
            raise KeyError(f"LARS: optax state leaf {path_to_name(path)} has no MindSpore name in "
                           f"STATE_TABLE {self.STATE_TABLE}")
        owner = self
        for attr in self.STATE_TABLE[field].split("."):
            owner = getattr(owner, attr)
        return owner[index.idx]
