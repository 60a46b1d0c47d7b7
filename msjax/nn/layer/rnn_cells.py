"""RNNCell, LSTMCell and GRUCell (one time step), and the step functions nn.RNN/LSTM/GRU scan.

Parameters as MindSpore 2.10: ``weight_ih`` ``(gates * hidden, input)``, ``weight_hh``
``(gates * hidden, hidden)``, ``bias_ih``/``bias_hh`` ``(gates * hidden,)``, all drawn from
``Uniform(1/sqrt(hidden_size))``. Gate order: LSTM ``i, f, g, o``; GRU ``r, z, n``. PyTorch uses the
same names, layouts and gate orders.

>>> cell = nn.LSTMCell(3, 4)
>>> [name for name, _ in cell.parameters_and_names()]
['weight_ih', 'weight_hh', 'bias_ih', 'bias_hh']
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

__all__ = ["RNNCell", "LSTMCell", "GRUCell"]


def _linear(x, w, b):
    y = x @ w.T
    return y if b is None else y + b


def chunks(x, n, axis=-1):
    """``x`` cut into ``n`` equal parts along ``axis`` with static slices (every exporter has a rule
    for ``slice``; MINDIR has none for ``split``)."""
    size = x.shape[axis] // n
    return [jax.lax.slice_in_dim(x, i * size, (i + 1) * size, axis=axis % x.ndim) for i in range(n)]


def rnn_tanh_step(x, h, w_ih, w_hh, b_ih, b_hh):
    """``tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)``"""
    return jnp.tanh(_linear(x, w_ih, b_ih) + _linear(h, w_hh, b_hh))


def rnn_relu_step(x, h, w_ih, w_hh, b_ih, b_hh):
    """``relu(x W_ih^T + b_ih + h W_hh^T + b_hh)``"""
    return jax.nn.relu(_linear(x, w_ih, b_ih) + _linear(h, w_hh, b_hh))


def lstm_step(x, state, w_ih, w_hh, b_ih, b_hh):
    """One LSTM step on ``state = (h, c)``; returns ``(h', c')``."""
    hx, cx = state
    gates = _linear(x, w_ih, b_ih) + _linear(hx, w_hh, b_hh)
    ingate, forgetgate, cellgate, outgate = chunks(gates, 4)
    cy = jax.nn.sigmoid(forgetgate) * cx + jax.nn.sigmoid(ingate) * jnp.tanh(cellgate)
    return jax.nn.sigmoid(outgate) * jnp.tanh(cy), cy


def gru_step(x, h, w_ih, w_hh, b_ih, b_hh):
    """One GRU step: reset gate on the hidden half, ``h' = n + z * (h - n)`` as MindSpore."""
    i_r, i_z, i_n = chunks(_linear(x, w_ih, b_ih), 3)
    h_r, h_z, h_n = chunks(_linear(h, w_hh, b_hh), 3)
    resetgate = jax.nn.sigmoid(i_r + h_r)
    inputgate = jax.nn.sigmoid(i_z + h_z)
    newgate = jnp.tanh(i_n + resetgate * h_n)
    return newgate + inputgate * (h - newgate)


#: mode -> (step function, gates per hidden unit)
MODES = {"RNN_TANH": (rnn_tanh_step, 1), "RNN_RELU": (rnn_relu_step, 1), "LSTM": (lstm_step, 4),
         "GRU": (gru_step, 3)}


def check_positive_ints(owner, **values):
    """MindSpore's ``check_positive_int``: a non-int is a TypeError, ``<= 0`` a LayerArgumentError."""
    wrong_type = [f"'{k}' must be an int, got {type(v).__name__}" for k, v in values.items()
                  if not isinstance(v, int) or isinstance(v, bool)]
    if wrong_type:
        raise TypeError(f"{owner}: " + "; ".join(wrong_type))
    bad = [f"'{k}' must be > 0, got {v}" for k, v in values.items() if v <= 0]
    if bad:
        raise LayerArgumentError(f"{owner}: " + "; ".join(bad))


def check_bools(owner, **values):
    bad = [f"'{k}' must be a bool, got {type(v).__name__}" for k, v in values.items() if not isinstance(v, bool)]
    if bad:
        raise TypeError(f"{owner}: " + "; ".join(bad))


def check_float_input(owner, **arrays):
    """x / hx must be float16 or float32 arrays, as MindSpore's cells require."""
    bad = [f"'{k}' must be a float16/float32 tensor, got {getattr(v, 'dtype', type(v).__name__)}"
           for k, v in arrays.items() if getattr(v, "dtype", None) not in (jnp.float16, jnp.float32)]
    if bad:
        raise TypeError(f"{owner}: " + "; ".join(bad))


class _RNNCellBase(Cell):
    _mode = "RNN_TANH"

    def __init__(self, input_size, hidden_size, has_bias=True, dtype=mstype.float32):
        super().__init__()
        name = type(self).__name__
        check_bools(name, has_bias=has_bias)
        check_positive_ints(name, hidden_size=hidden_size, input_size=input_size)
        self.input_size, self.hidden_size, self.has_bias = input_size, hidden_size, has_bias
        gates = MODES[self._mode][1] * hidden_size
        init = Uniform(1 / math.sqrt(hidden_size))
        self.weight_ih = Parameter(initializer(init, (gates, input_size), dtype))
        self.weight_hh = Parameter(initializer(init, (gates, hidden_size), dtype))
        self.bias_ih = self.bias_hh = None
        if has_bias:
            self.bias_ih = Parameter(initializer(init, (gates,), dtype))
            self.bias_hh = Parameter(initializer(init, (gates,), dtype))

    def _weights(self, dtype):
        values = [self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh]
        return [None if p is None else p.get_value().astype(dtype) for p in values]

    def construct(self, x, hx):
        check_float_input(type(self).__name__, x=x, hx=hx)
        return MODES[self._mode][0](x, hx, *self._weights(x.dtype))


class RNNCell(_RNNCellBase):
    """Elman RNN cell ``h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh)``, ``act`` tanh or relu.

    >>> nn.RNNCell(3, 4)(Tensor(np.ones((2, 3), np.float32)), Tensor(np.zeros((2, 4), np.float32))).shape
    (2, 4)
    """

    _non_linearity = ("tanh", "relu")

    def __init__(self, input_size, hidden_size, has_bias=True, nonlinearity="tanh", dtype=mstype.float32):
        super().__init__(input_size, hidden_size, has_bias, dtype)
        if not isinstance(nonlinearity, str):
            raise TypeError(f"RNNCell: 'nonlinearity' must be a str, got {type(nonlinearity).__name__}")
        if nonlinearity not in self._non_linearity:
            raise LayerArgumentError(f"RNNCell: 'nonlinearity' must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        self._mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"


class LSTMCell(_RNNCellBase):
    """One LSTM step: ``construct(x, (h, c))`` returns ``(h', c')``.

    >>> h, c = nn.LSTMCell(3, 4)(Tensor(np.ones((2, 3), np.float32)), (Tensor(np.zeros((2, 4), np.float32)),) * 2)
    >>> h.shape, c.shape
    ((2, 4), (2, 4))
    """

    _mode = "LSTM"

    def construct(self, x, hx):
        if not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise TypeError(f"LSTMCell: 'hx' must be a tuple (h, c) of two tensors, got {type(hx).__name__}")
        check_float_input("LSTMCell", x=x, **{"hx[0]": hx[0], "hx[1]": hx[1]})
        return lstm_step(x, tuple(hx), *self._weights(x.dtype))


class GRUCell(_RNNCellBase):
    """One GRU step ``construct(x, hx) -> h'`` (gates r, z, n as MindSpore and PyTorch)."""

    _mode = "GRU"
