"""``Optimizer``: the base of MindSpore's optimizers, each one an optax chain plus a naming table.

An optimizer is a Cell. It holds MindSpore's state Parameters under MindSpore's names
(``global_step`` Int32 [1], ``learning_rate`` Float32 [], per-parameter state such as
``moments.<param name>``), so a checkpoint of the optimizer, or of a ``TrainOneStepCell`` holding
it, lists what MindSpore lists. Each step (``construct(gradients)``) it builds the optax state
from those Parameters through ``STATE_TABLE``, runs ``tx.update``, and writes parameters and state
back. The chain is an ``optax.named_chain`` (``weight_decay``, ``loss_scale``, the optimizer's own
rule, ``learning_rate``), so ``STATE_TABLE`` names state by what it is (Momentum's
``{"moments.trace": "moments"}``: optax's ``moments`` TraceState field ``trace`` -> MindSpore's
``moments.<param name>``), never by chain position; it is the one rename table for that state, a
``msjax.checkpoint.names`` rename table (``names.flatten(state, renames=Momentum.STATE_TABLE)``).

>>> opt = Momentum(net.trainable_params(), learning_rate=0.01, momentum=0.9)
>>> [name for name, _ in opt.parameters_and_names()][:2]
['global_step', 'learning_rate']
"""
from __future__ import annotations

from collections.abc import Iterable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from msjax.checkpoint.names import path_to_name
from msjax.common.tensor import Parameter, Tensor
from msjax.nn.cell import Cell
from msjax.nn.optim.learning_rate_schedule import LearningRateSchedule

__all__ = ["Optimizer"]

_GROUP_KEYS = ("params", "lr", "weight_decay", "order_params", "grad_centralization")


class _IteratorLearningRate(LearningRateSchedule):
    """A per-step learning-rate list: a Float32 [N] Parameter indexed by ``global_step``."""

    def __init__(self, learning_rate, name):
        super().__init__()
        self.learning_rate = Parameter(np.asarray(learning_rate, np.float32), name=name)

    def construct(self, global_step):
        return jnp.take(self.learning_rate.get_value(), jnp.asarray(global_step).reshape(()), axis=0,
                        mode="fill", fill_value=0)


def _per_param(fn):
    """An optax stateless transform applying ``fn(i, update, param)`` to the i-th leaf of a tuple."""
    def update(updates, state, params=None):
        return tuple(fn(i, u, None if params is None else params[i]) for i, u in enumerate(updates)), state
    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def add_decayed_weights_per_param(weight_decays):
    """MindSpore's ``decay_weight``: ``grad + wd_i * param`` where ``wd_i > 0``."""
    return _per_param(lambda i, g, p: g + weight_decays[i] * p.astype(g.dtype) if weight_decays[i] else g)


def scale_by_learning_rate_per_param(lrs):
    """``-lr_i * update`` (``lrs`` one scalar, or one per parameter)."""
    if not isinstance(lrs, tuple):
        return optax.scale(-lrs) if not isinstance(lrs, (int, float)) else optax.scale(-float(lrs))
    return _per_param(lambda i, u, p: -lrs[i] * u)


class Optimizer(Cell):
    """Base class: ``Optimizer(learning_rate, parameters, weight_decay=0.0, loss_scale=1.0)``.

    Subclasses set ``STATE_TABLE`` (the dotted name of a named optax state field holding one leaf
    per parameter -> the attribute holding the matching Parameters, which is MindSpore's name
    prefix) and define ``_transform(lr)``, usually ``self._chain(lr, name, transform)``.
    """

    STATE_TABLE: dict = {}

    def __init__(self, learning_rate, parameters, weight_decay=0.0, loss_scale=1.0):
        super().__init__(auto_prefix=False)
        parameters = self._check_parameters(parameters)
        if isinstance(loss_scale, bool) or not isinstance(loss_scale, (int, float)) or loss_scale <= 0:
            raise ValueError(f"For '{type(self).__name__}', 'loss_scale' must be a float > 0, got {loss_scale!r}")
        self.loss_scale = float(loss_scale)
        self.dynamic_lr = False
        self.global_step = Parameter(np.zeros([1], np.int32), name="global_step")
        lr = self._preprocess_single_lr(learning_rate)
        self.is_group = isinstance(parameters[0], dict)
        self.is_group_lr = False
        if self.is_group:
            params, lr_names, decays = self._init_group_params(parameters, lr, weight_decay)
        else:
            self.learning_rate = self._build_single_lr(lr, "learning_rate")
            params = parameters
            wd = self._preprocess_weight_decay(weight_decay)
            lr_names = ("learning_rate",) * len(params)
            decays = tuple(wd if ("beta" not in p.name and "gamma" not in p.name) else 0.0 for p in params)
        self._lr_names = tuple(lr_names)
        self._weight_decays = tuple(decays)
        self.parameters = nnx.List(params)

    # ------------------------------------------------------------ construction helpers
    def _check_parameters(self, parameters):
        cls = type(self).__name__
        if isinstance(parameters, (Parameter, dict)) or not isinstance(parameters, Iterable):
            raise TypeError(f"For '{cls}', 'params' must be a list of Parameter or of dict, got {type(parameters).__name__}")
        parameters = list(parameters)
        if not parameters:
            raise ValueError(f"For '{cls}', 'params' is empty: pass net.trainable_params()")
        if not (all(isinstance(p, Parameter) for p in parameters) or all(isinstance(p, dict) for p in parameters)):
            raise TypeError(f"For '{cls}', every element of 'params' must be a Parameter, or every one a dict")
        return parameters

    def _preprocess_single_lr(self, learning_rate):
        cls = type(self).__name__
        if isinstance(learning_rate, (bool, str, bytes)):
            raise TypeError(f"For '{cls}', 'learning_rate' must be float, Tensor, list or LearningRateSchedule")
        if isinstance(learning_rate, (int, float)):
            if learning_rate < 0:
                raise ValueError(f"For '{cls}', 'learning_rate' must be >= 0, got {learning_rate}")
            return float(learning_rate)
        if isinstance(learning_rate, LearningRateSchedule):
            self.dynamic_lr = True
            return learning_rate
        if isinstance(learning_rate, (Tensor, np.ndarray, jax.Array)):
            arr = np.asarray(learning_rate, np.float32)
            if arr.ndim == 0:
                return Tensor(arr)
            if arr.ndim > 1:
                raise ValueError(f"For '{cls}', a Tensor 'learning_rate' must be 0-d or 1-d, got shape {arr.shape}")
            self.dynamic_lr = True
            return arr
        if isinstance(learning_rate, Iterable):
            self.dynamic_lr = True
            return np.asarray(list(learning_rate), np.float32)
        raise TypeError(f"For '{cls}', 'learning_rate' must be float, int, Tensor, list or LearningRateSchedule, "
                        f"got {type(learning_rate).__name__}")

    @staticmethod
    def _build_single_lr(lr, name):
        if isinstance(lr, float):
            return Parameter(np.asarray(lr, np.float32), name=name)
        if isinstance(lr, Tensor):
            return Parameter(lr.asnumpy().astype(np.float32), name=name)
        if isinstance(lr, np.ndarray):
            return _IteratorLearningRate(lr, name)
        return lr

    def _preprocess_weight_decay(self, weight_decay):
        if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)):
            raise TypeError(f"For '{type(self).__name__}', 'weight_decay' must be float or int here (a dynamic "
                            f"weight-decay Cell is not supported), got {type(weight_decay).__name__}")
        if weight_decay < 0:
            raise ValueError(f"For '{type(self).__name__}', 'weight_decay' must be >= 0, got {weight_decay}")
        return float(weight_decay) * self.loss_scale

    def _init_group_params(self, groups, default_lr, weight_decay):
        cls = type(self).__name__
        order = None
        for group in groups:
            bad = [k for k in group if k not in _GROUP_KEYS]
            if bad:
                raise KeyError(f"For '{cls}', group keys must be among {list(_GROUP_KEYS)}, got {bad}")
            if "order_params" in group:
                if len(group) > 1:
                    raise ValueError(f"For '{cls}', the 'order_params' group must hold only 'order_params'")
                order = list(group["order_params"])
            elif "lr" in group:
                self.is_group_lr = True
        lr_objects = {"learning_rate": self._build_single_lr(default_lr, "learning_rate")}
        params, lr_names, decays, seen = [], [], [], set()
        for num, group in enumerate(groups):
            if "order_params" in group:
                continue
            lr_name = "learning_rate"
            if "lr" in group:
                lr_name = f"learning_rate_group_{num}"
                lr_objects[lr_name] = self._build_single_lr(self._preprocess_single_lr(group["lr"]), lr_name)
            wd = self._preprocess_weight_decay(group.get("weight_decay", weight_decay))
            for p in group["params"]:
                if not isinstance(p, Parameter):
                    raise TypeError(f"For '{cls}', group 'params' must hold Parameters, got {type(p).__name__}")
                if p.name in seen:
                    raise RuntimeError(f"For '{cls}', parameter {p.name!r} appears in more than one group")
                seen.add(p.name)
                params.append(p)
                lr_names.append(lr_name)
                decays.append(wd)
        if order is not None:
            names = [p.name for p in order]
            if sorted(names) != sorted(p.name for p in params):
                raise ValueError(f"For '{cls}', 'order_params' must list exactly the grouped parameters")
            idx = [[p.name for p in params].index(n) for n in names]
            params, lr_names, decays = [params[i] for i in idx], [lr_names[i] for i in idx], [decays[i] for i in idx]
        # MindSpore registers the learning rates in the order the (ordered) parameters use them
        for name in (dict.fromkeys(lr_names) if self.is_group_lr else ["learning_rate"]):
            setattr(self, name, lr_objects[name])
        return params, lr_names, decays

    def _clone_state(self, prefix, init="zeros"):
        """One Parameter per optimized parameter, named ``<prefix>.<param name>`` (MindSpore's clone)."""
        fill = np.zeros_like if init == "zeros" else np.ones_like
        return nnx.List([Parameter(fill(np.asarray(p.get_value())), name=f"{prefix}.{p.name}",
                                   requires_grad=p.requires_grad) for p in self.parameters])

    # ------------------------------------------------------------ walks (MindSpore's order)
    def _children(self):
        params, cells = [], []
        for key, value in vars(self).items():
            if key.startswith("_pytree"):
                continue
            if isinstance(value, Parameter):
                params.append((key, value))
            elif isinstance(value, nnx.List):
                params.extend((p.name, p) for p in value if isinstance(p, Parameter))
            elif isinstance(value, Cell):
                cells.append((key, value))
        return params, cells

    # ------------------------------------------------------------ the step
    def _lr_value(self, name):
        lr = getattr(self, name)
        if isinstance(lr, Parameter):
            return jnp.asarray(lr.get_value(), jnp.float32)
        return jnp.asarray(lr.construct(self.global_step.get_value()), jnp.float32).reshape(())

    def get_lr(self):
        """The learning rate of the current step (one per parameter when groups set their own)."""
        if not self.is_group_lr:
            return self._lr_value("learning_rate")
        values = {name: self._lr_value(name) for name in dict.fromkeys(self._lr_names)}
        return tuple(values[name] for name in self._lr_names)

    def _transform(self, lr):
        raise NotImplementedError(f"{type(self).__name__} must define _transform(lr)")

    def _chain(self, lr, name, rule):
        """MindSpore's step as a named optax chain: weight decay, 1/loss_scale, ``rule``, -lr."""
        steps = [("weight_decay", add_decayed_weights_per_param(self._weight_decays))]
        if self.loss_scale != 1.0:
            steps.append(("loss_scale", optax.scale(1.0 / self.loss_scale)))
        steps += [(name, rule), ("learning_rate", scale_by_learning_rate_per_param(lr))]
        return optax.named_chain(*steps)

    def state_names(self):
        """``{optax state leaf's dotted path: MindSpore name}`` for every per-parameter state leaf.

        >>> nn.Momentum(net.trainable_params(), 0.1, 0.9).state_names()["moments.trace.0"]  # doctest: +SKIP
        'moments.fc1.weight'
        """
        template = self._transform(jnp.float32(0)).init(tuple(p.get_value() for p in self.parameters))
        return {path_to_name(path): self._state_param(path).name
                for path, _ in jax.tree_util.tree_flatten_with_path(template)[0]}

    def _state_param(self, path):
        field, index = path_to_name(path[:-1]), path[-1]
        if field not in self.STATE_TABLE or not isinstance(index, jax.tree_util.SequenceKey):
            raise KeyError(f"{type(self).__name__}: optax state leaf {path_to_name(path)} has no MindSpore "
                           f"name in STATE_TABLE {self.STATE_TABLE}")
        return getattr(self, self.STATE_TABLE[field])[index.idx]

    def construct(self, gradients):
        params = tuple(p.get_value() for p in self.parameters)
        gradients = tuple(gradients)
        if len(gradients) != len(params):
            raise ValueError(f"{type(self).__name__} got {len(gradients)} gradients for {len(params)} parameters")
        lr = self.get_lr()
        self.global_step.set_value(self.global_step.get_value() + 1)
        tx = self._transform(lr)
        template = jax.eval_shape(tx.init, params)
        leaves, treedef = jax.tree_util.tree_flatten_with_path(template)
        state = jax.tree_util.tree_unflatten(treedef, [self._state_param(path).get_value() for path, _ in leaves])
        updates, new_state = tx.update(gradients, state, params)
        new_params = optax.apply_updates(params, updates)
        for p, value in zip(self.parameters, new_params):
            p.set_value(value)
        for path, value in jax.tree_util.tree_flatten_with_path(new_state)[0]:
            self._state_param(path).set_value(value)
        return True
