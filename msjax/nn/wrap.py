"""Wrapper cells: ``WithLossCell``, ``WithEvalCell`` and ``TrainOneStepCell`` (the jitted train step).

``TrainOneStepCell(network, optimizer)(*inputs)`` is one XLA program: forward, backward with
respect to the optimizer's parameters, optimizer update and the network's other state changes
(BatchNorm statistics). It is compiled once per input signature, donates the state buffers, and
writes the new values into the user's own Parameter objects after each call. The graph walk that
finds those objects (``nnx`` flatten: 30 ms a step for ResNet50) runs again only after some Cell's
attributes changed (``cell._structure_version``); a step otherwise reads and writes the cached
Variables directly.

>>> step = TrainOneStepCell(WithLossCell(net, loss_fn), Momentum(net.trainable_params(), 0.01, 0.9))
>>> loss = step(data, label)   # a Tensor; no host sync until it is read
"""
from __future__ import annotations

import warnings
import weakref
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from msjax import context
from msjax.common.tensor import Tensor, unwrap
from msjax.nn import cell as _cell
from msjax.nn.cell import Cell

__all__ = ["WithLossCell", "WithEvalCell", "TrainOneStepCell"]


class WithLossCell(Cell):
    """``loss_fn(backbone(data), label)``.

    >>> WithLossCell(net, nn.MSELoss())(x, y)
    """

    def __init__(self, backbone, loss_fn):
        super().__init__(auto_prefix=False)
        self._backbone = backbone
        self._loss_fn = loss_fn

    def construct(self, data, label):
        return self._loss_fn(self._backbone(data), label)

    @property
    def backbone_network(self):
        return self._backbone


class WithEvalCell(Cell):
    """Evaluation wrapper: returns ``(loss, outputs, label)``."""

    def __init__(self, network, loss_fn, add_cast_fp32=False):
        super().__init__(auto_prefix=False)
        self._network = network
        self._loss_fn = loss_fn
        self.add_cast_fp32 = add_cast_fp32

    def construct(self, data, label):
        outputs = self._network(data)
        if self.add_cast_fp32:
            outputs = jnp.asarray(outputs, jnp.float32)
        return self._loss_fn(outputs, label), outputs, label


#: traces of the train step per network class name; a test reads it (one per input signature)
TRAIN_TRACE_COUNTS = _cell.TRACE_COUNTS
_train_jitted = {}


def _run_flat(graphdef, static, leaves, dynamic):
    """The train step jax.jit compiles: the cell rebuilt from its flat leaves; returns the outputs
    and the new leaves in the same order (the whole State if construct changed the structure)."""
    cell = nnx.merge(graphdef, list(leaves))
    out = _cell._run_cell(cell, static, dynamic)
    new_graphdef, new_leaves = nnx.graphlib.flatten(cell, with_paths=False)
    if new_graphdef != graphdef:
        return out, nnx.state(cell)
    return out, new_leaves


def _train_compiled(graphdef):
    """One jitted step per graphdef (hashed here once per cache fill, not on every call)."""
    fn = _train_jitted.get(graphdef)
    if fn is None:
        fn = jax.jit(partial(_run_flat, graphdef), static_argnums=(0,), donate_argnums=(1,))
        _train_jitted[graphdef] = fn
    return fn


class _Flat(NamedTuple):
    """A TrainOneStepCell's graph, flattened once: valid while ``cell._structure_version`` is unchanged."""
    version: int
    variables: list
    fn: object


_flat_cache = weakref.WeakKeyDictionary()  # TrainOneStepCell -> _Flat


class TrainOneStepCell(Cell):
    """``TrainOneStepCell(network, optimizer, sens=1.0)``: one training step; returns the loss.

    Its parameters list, as MindSpore's, starts with the optimizer's parameters, then the rest of
    the network (moving statistics), then the optimizer's state (``global_step``,
    ``learning_rate``, ``momentum``, ``moments.*``).
    """

    def __init__(self, network, optimizer, sens=1.0, return_grad=False):
        super().__init__(auto_prefix=False)
        self.network = network
        self.optimizer = optimizer
        self.sens = float(sens)
        self.return_grad = bool(return_grad)

    @property
    def weights(self):
        return list(self.optimizer.parameters)

    def _children(self):
        params, cells = super()._children()
        return [(p.name, p) for p in self.optimizer.parameters] + params, cells

    def construct(self, *inputs):
        weights = list(self.optimizer.parameters)
        ids = {id(w) for w in weights}
        path_of = {id(node): path for path, node in nnx.iter_graph(self.network) if id(node) in ids}
        missing = [w.name for w in weights if id(w) not in path_of]
        if missing:
            raise ValueError(f"TrainOneStepCell: optimizer parameters {missing} are not in the network")
        graphdef, trainable, rest = nnx.split(self.network, lambda path, v: id(v) in ids, ...)

        def forward(train_state):
            net = nnx.merge(graphdef, train_state, rest, copy=True)
            _cell._tracing.depth = getattr(_cell._tracing, "depth", 0) + 1
            try:
                loss = unwrap(net(*inputs))
            finally:
                _cell._tracing.depth -= 1
            return loss, nnx.state(net)

        loss, vjp_fn, new_state = jax.vjp(forward, trainable, has_aux=True)
        (grads,) = vjp_fn(jax.tree.map(lambda x: jnp.full_like(x, self.sens), loss))
        flat = dict(nnx.to_flat_state(grads))
        grad_list = tuple(flat[path_of[id(w)]].get_value() for w in weights)
        nnx.update(self.network, new_state)
        self.optimizer(grad_list)
        if self.return_grad:
            return loss, {w.name: g for w, g in zip(weights, grad_list)}
        return loss

    def _call_compiled(self, args, kwargs):
        leaves, treedef = jax.tree.flatten((args, kwargs), is_leaf=lambda x: isinstance(x, Tensor))
        dynamic = tuple(unwrap(x) for x in leaves if _cell._is_dynamic(x))
        static = (tuple(_cell._DYNAMIC if _cell._is_dynamic(x) else x for x in leaves), treedef)
        flat = _flat_cache.get(self)
        if flat is None or flat.version != _cell._structure_version:
            version = _cell._structure_version
            graphdef, state = nnx.graphlib.flatten(self)  # state.leaves: the Variable objects themselves
            flat = _flat_cache[self] = _Flat(version, list(state.leaves), _train_compiled(graphdef))
        values = [v.get_raw_value() for v in flat.variables]
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Some donated buffers were not usable")
            out, new = flat.fn(static, values, dynamic)
        if isinstance(new, list):
            for variable, value in zip(flat.variables, new):
                variable.set_raw_value(value, _unsafe_bypass_check=True)
        else:
            nnx.update(self, new)
            _flat_cache.pop(self, None)
        return _cell._wrap_outputs(out)

    def __call__(self, *args, **kwargs):
        if not getattr(_cell._tracing, "depth", 0) and context.get_context("mode") == context.PYNATIVE_MODE:
            return _cell._wrap_outputs(self.construct(*unwrap(args), **unwrap(kwargs)))
        return super().__call__(*args, **kwargs)
