"""RNN, LSTM and GRU: stacked, optionally bidirectional recurrent layers run by ``jax.lax.scan``.

Parameters as MindSpore 2.10 (and PyTorch): ``weight_ih_l{k}[_reverse]`` ``(gates * hidden, in)``,
``weight_hh_l{k}[_reverse]``, ``bias_ih_l{k}[_reverse]``, ``bias_hh_l{k}[_reverse]``, in MindSpore's
order: every ``weight_ih``, then every ``weight_hh``, every ``bias_ih``, every ``bias_hh``, each
list by layer then direction. ``construct(x, hx=None, seq_length=None)``: with ``seq_length`` a
sequence's state stops at its length and its later outputs are zero; the reverse direction runs
over each sequence's first ``seq_length`` steps reversed (MindSpore's ``ReverseSequence``).

>>> out, (h, c) = nn.LSTM(3, 4, num_layers=2)(Tensor(np.ones((5, 2, 3), np.float32)))
>>> out.shape, h.shape
((5, 2, 4), (2, 2, 4))
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from msjax.common import dtype as mstype
from msjax.common.initializer import Uniform, initializer
from msjax.common.tensor import Parameter
from msjax.errors import LayerArgumentError
from msjax.nn.cell import Cell
from msjax.nn.layer.basic import Dropout
from msjax.nn.layer.rnn_cells import (MODES, GRUCell, LSTMCell, RNNCell, check_bools, check_float_input,
                                      check_positive_ints)

#: the one-step cells live in rnn_cells and are exported from here with the layers
__all__ = ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"]


def _reverse(x, seq_length):
    """Reverse time (axis 0); with ``seq_length`` only each sequence's first ``seq_length[b]`` steps."""
    if seq_length is None:
        return x[::-1]
    t = jnp.arange(x.shape[0])[:, None]
    index = jnp.where(t < seq_length[None, :], seq_length[None, :] - 1 - t, t)
    return x[index, jnp.arange(x.shape[1])[None, :]]


def _run_direction(step, is_lstm, x, state, weights, mask):
    """Scan ``step`` over time; under ``mask`` (T, B) a finished sequence keeps its state and outputs 0."""

    def body(carry, inputs):
        x_t, m_t = inputs
        new = step(x_t, carry, *weights)
        h = new[0] if is_lstm else new
        if m_t is None:
            return new, h
        keep = m_t[:, None]
        new = jax.tree.map(lambda n, o: jnp.where(keep, n, o), new, carry)
        return new, jnp.where(keep, h, jnp.zeros((), h.dtype))

    state, outputs = jax.lax.scan(body, state, (x, mask))
    return outputs, state


class _RNNBase(Cell):
    """Shared stacking, directions, initial states and checks of RNN, LSTM and GRU."""

    def __init__(self, mode, input_size, hidden_size, num_layers=1, has_bias=True, batch_first=False, dropout=0.,
                 bidirectional=False, dtype=mstype.float32):
        super().__init__()
        name = type(self).__name__
        check_positive_ints(name, hidden_size=hidden_size, input_size=input_size, num_layers=num_layers)
        if not isinstance(dropout, float):
            raise TypeError(f"{name}: 'dropout' must be a float, got {type(dropout).__name__}")
        check_bools(name, has_bias=has_bias, batch_first=batch_first, bidirectional=bidirectional)
        if not 0 <= dropout < 1:
            raise LayerArgumentError(f"{name}: 'dropout' must be in [0, 1) (the probability of zeroing an "
                                     f"element), got {dropout}")
        self._mode = mode
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.has_bias, self.batch_first, self.bidirectional = has_bias, batch_first, bidirectional
        self.dropout, self.is_lstm = dropout, mode == "LSTM"
        self.dropout_op = Dropout(p=float(dropout))
        gates = MODES[mode][1] * hidden_size
        directions = 2 if bidirectional else 1
        init = Uniform(1 / math.sqrt(hidden_size))
        suffixes = [f"_l{layer}{'_reverse' if d else ''}" for layer in range(num_layers) for d in range(directions)]
        kinds = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if has_bias else [])
        for kind in kinds:
            for i, suffix in enumerate(suffixes):
                in_size = input_size if i < directions else hidden_size * directions
                shape = {"weight_ih": (gates, in_size), "weight_hh": (gates, hidden_size)}.get(kind, (gates,))
                setattr(self, kind + suffix, Parameter(initializer(init, shape, dtype)))
        self._suffixes = tuple(suffixes)

    def _weights(self, index, dtype):
        suffix = self._suffixes[index]
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        return [getattr(self, n + suffix).get_value().astype(dtype) if self.has_bias or n.startswith("weight")
                else None for n in names]

    def _initial_state(self, hx, x, batch):
        name = type(self).__name__
        shape = (self.num_layers * (2 if self.bidirectional else 1), batch, self.hidden_size)
        if hx is None:
            zeros = jnp.zeros(shape, x.dtype)
            return (zeros, zeros) if self.is_lstm else zeros
        if self.is_lstm:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(f"{name}: 'hx' must be a tuple (h_0, c_0) of two tensors, got {type(hx).__name__}")
            states = {"hx[0]": hx[0], "hx[1]": hx[1]}
        else:
            states = {"hx": hx}
        check_float_input(name, **states)
        bad = [f"'{k}' has shape {tuple(v.shape)}, expected {shape} (num_directions * num_layers, batch, hidden_size)"
               for k, v in states.items() if tuple(v.shape) != shape]
        if bad:
            raise LayerArgumentError(f"{name}: " + "; ".join(bad))
        return tuple(jnp.asarray(v, x.dtype) for v in hx) if self.is_lstm else jnp.asarray(hx, x.dtype)

    def construct(self, x, hx=None, seq_length=None):
        name = type(self).__name__
        check_float_input(name, x=x)
        if x.ndim != 3 or x.shape[-1] != self.input_size:
            raise LayerArgumentError(f"{name}: 'x' must be 3-D (seq_len, batch, {self.input_size}) or, with "
                                     f"batch_first, (batch, seq_len, {self.input_size}); got shape {tuple(x.shape)}")
        if self.batch_first:
            x = jnp.swapaxes(x, 0, 1)
        steps, batch = x.shape[:2]
        state = self._initial_state(hx, x, batch)
        mask = None
        if seq_length is not None:
            if seq_length.dtype not in (jnp.int32, jnp.int64):
                raise TypeError(f"{name}: 'seq_length' must be an int32/int64 tensor, got {seq_length.dtype}")
            if tuple(seq_length.shape) != (batch,):
                raise LayerArgumentError(f"{name}: 'seq_length' must have shape ({batch},) (one length per batch "
                                         f"entry), got {tuple(seq_length.shape)}")
            mask = jnp.arange(steps)[:, None] < seq_length[None, :]
        step = MODES[self._mode][0]
        directions = 2 if self.bidirectional else 1
        layer_in, finals = x, []
        for layer in range(self.num_layers):
            outputs = []
            for d in range(directions):
                index = layer * directions + d
                init = (state[0][index], state[1][index]) if self.is_lstm else state[index]
                inputs = _reverse(layer_in, seq_length) if d else layer_in
                out, final = _run_direction(step, self.is_lstm, inputs, init, self._weights(index, x.dtype), mask)
                outputs.append(_reverse(out, seq_length) if d else out)
                finals.append(final)
            output = jnp.concatenate(outputs, axis=2) if directions == 2 else outputs[0]
            last = layer == self.num_layers - 1
            layer_in = self.dropout_op(output) if self.dropout != 0 and not last else output
        if self.batch_first:
            output = jnp.swapaxes(output, 0, 1)
        if self.is_lstm:
            return output, (jnp.stack([f[0] for f in finals]), jnp.stack([f[1] for f in finals]))
        return output, jnp.stack(finals)


class RNN(_RNNBase):
    """Stacked Elman RNN, ``h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``; ``nonlinearity`` 'tanh'/'relu'.

    >>> out, h = nn.RNN(3, 4, bidirectional=True)(Tensor(np.ones((5, 2, 3), np.float32)))
    >>> out.shape, h.shape
    ((5, 2, 8), (2, 2, 4))
    """

    def __init__(self, input_size, hidden_size, num_layers=1, has_bias=True, batch_first=False, dropout=0.,
                 bidirectional=False, dtype=mstype.float32, *, nonlinearity="tanh"):
        modes = {"tanh": "RNN_TANH", "relu": "RNN_RELU"}
        if nonlinearity not in modes:
            raise LayerArgumentError(f"RNN: 'nonlinearity' must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(modes[nonlinearity], input_size, hidden_size, num_layers, has_bias, batch_first, dropout,
                         bidirectional, dtype)
        self.nonlinearity = nonlinearity


class GRU(_RNNBase):
    """Stacked GRU (gates r, z, n); ``construct(x, hx=None, seq_length=None) -> (output, h_n)``."""

    def __init__(self, input_size, hidden_size, num_layers=1, has_bias=True, batch_first=False, dropout=0.,
                 bidirectional=False, dtype=mstype.float32):
        super().__init__("GRU", input_size, hidden_size, num_layers, has_bias, batch_first, dropout,
                         bidirectional, dtype)


class LSTM(_RNNBase):
    """Stacked LSTM (gates i, f, g, o); ``construct(x, hx=None, seq_length=None) -> (output, (h_n, c_n))``."""

    def __init__(self, input_size, hidden_size, num_layers=1, has_bias=True, batch_first=False, dropout=0.,
                 bidirectional=False, dtype=mstype.float32):
        super().__init__("LSTM", input_size, hidden_size, num_layers, has_bias, batch_first, dropout,
                         bidirectional, dtype)
