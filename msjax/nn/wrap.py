"""Wrapper cells: ``WithLossCell``, ``WithEvalCell`` and ``TrainOneStepCell`` (the jitted train step).

``TrainOneStepCell(network, optimizer)(*inputs)`` is one XLA program: forward, backward with
respect to the optimizer's parameters, optimizer update and the network's other state changes
(BatchNorm statistics). It is compiled once per input signature, donates the state buffers, and
writes the new values into the user's own Parameter objects after each call. It runs through
``Cell``'s compiled path (``cell._flat_call``): the graph walk that finds those objects (``nnx``
flatten: 30 ms a step for ResNet50) runs again only after some Cell's attributes changed; a step
otherwise reads and writes the cached Variables directly.

>>> step = TrainOneStepCell(WithLossCell(net, loss_fn), Momentum(net.trainable_params(), 0.01, 0.9))
>>> loss = step(data, label)   # a Tensor; no host sync until it is read
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from msjax import context
from msjax.common.tensor import unwrap
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


class TrainOneStepCell(Cell):
    """``TrainOneStepCell(network, optimizer, sens=1.0)``: one training step; returns the loss.

    Its parameters list, as MindSpore's, starts with the optimizer's parameters, then the rest of
    the network (moving statistics), then the optimizer's state (``global_step``,
    ``learning_rate``, ``momentum``, ``moments.*``).
    """

    _donate_state = True

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

    def __call__(self, *args, **kwargs):
        if not getattr(_cell._tracing, "depth", 0) and context.get_context("mode") == context.PYNATIVE_MODE:
            return _cell._wrap_outputs(self.construct(*unwrap(args), **unwrap(kwargs)))
        return super().__call__(*args, **kwargs)
