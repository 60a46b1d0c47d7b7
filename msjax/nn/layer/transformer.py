"""Transformer encoder/decoder layers, stacks and the full Transformer, as MindSpore 2.10 builds them.

Parameter names are MindSpore's: ``self_attn.in_proj_weight``, ``dense1``/``dense2`` (PyTorch:
``linear1``/``linear2``), ``norm1.gamma``/``beta`` (PyTorch: ``weight``/``bias``). ``activation``
is ``'relu'``/``'gelu'`` (exact GELU) or ``ops.relu``/``ops.gelu``; like MindSpore, a Cell
instance is refused. ``TransformerEncoder``/``TransformerDecoder`` build ``num_layers`` copies of a
fresh layer with ``encoder_layer``'s settings (all copies start from the same values), named
``layers.0.``, ``layers.1.``, ... ``Transformer`` redraws every parameter of rank > 1 from
``XavierUniform``.

>>> layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0)
>>> layer(Tensor(np.ones((3, 2, 8), np.float32))).shape
(3, 2, 8)
"""
from __future__ import annotations

import copy
import math

from msjax.common import dtype as mstype
from msjax.common.initializer import HeUniform, Uniform, initializer
from msjax.errors import LayerArgumentError
from msjax.nn.cell import Cell
from msjax.nn.layer.attention import MultiheadAttention
from msjax.nn.layer.basic import Dense, Dropout
from msjax.nn.layer.container import CellList
from msjax.nn.layer.normalization import LayerNorm
from msjax.ops import functional as F

#: MultiheadAttention is defined in attention.py and exported from here with the layers using it
__all__ = ["MultiheadAttention", "TransformerEncoderLayer", "TransformerDecoderLayer", "TransformerEncoder",
           "TransformerDecoder", "Transformer"]

_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


def _activation_fn(activation, owner):
    if isinstance(activation, str):
        if activation not in _ACTIVATIONS:
            raise LayerArgumentError(f"{owner}: 'activation' must be 'relu' or 'gelu', got {activation!r}")
        return _ACTIVATIONS[activation]
    if any(activation is fn for fn in _ACTIVATIONS.values()):
        return activation
    raise LayerArgumentError(f"{owner}: 'activation' must be 'relu', 'gelu', ops.relu or ops.gelu (MindSpore "
                             f"refuses other callables and Cell instances), got {activation!r}")


def _dense(in_channels, out_channels, dtype):
    """MindSpore's feed-forward Dense: HeUniform(sqrt(5)) weight, Uniform(1/sqrt(in)) bias."""
    return Dense(in_channels, out_channels, weight_init=HeUniform(math.sqrt(5)),
                 bias_init=Uniform(1 / math.sqrt(in_channels)), dtype=dtype)


class _LayerBase(Cell):
    """Settings, feed-forward block and norms shared by the encoder and decoder layers."""

    _norms = 2
    #: PyTorch's module names for the feed-forward Dense cells (msjax.checkpoint.torch_format)
    TORCH_CHILDREN = {"dense1": "linear1", "dense2": "linear2"}

    def __init__(self, d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps, batch_first,
                 norm_first, dtype, cross_attention):
        super().__init__()
        owner = type(self).__name__
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=batch_first, dtype=dtype)
        if cross_attention:
            self.multihead_attn = MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=batch_first,
                                                     dtype=dtype)
        self.dense1 = _dense(d_model, dim_feedforward, dtype)
        self.dropout = Dropout(p=dropout)
        self.dense2 = _dense(dim_feedforward, d_model, dtype)
        for i in range(1, self._norms + 1):
            setattr(self, f"norm{i}", LayerNorm((d_model,), epsilon=layer_norm_eps, dtype=dtype))
        for i in range(1, self._norms + 1):
            setattr(self, f"dropout{i}", Dropout(p=dropout))
        self.activation1 = activation
        self.activation = _activation_fn(activation, owner)
        self.d_model, self.nhead, self.dim_feedforward = d_model, nhead, dim_feedforward
        self.dropout_num, self.layernorm_eps = dropout, layer_norm_eps
        self.batch_first, self.norm_first, self.dtype = batch_first, norm_first, dtype

    def _settings(self):
        return (self.d_model, self.nhead, self.dim_feedforward, self.dropout_num, self.activation1,
                self.layernorm_eps, self.batch_first, self.norm_first)

    def _sa_block(self, x, attn_mask, key_padding_mask):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False)[0]
        return self.dropout1(x)

    def _ff_block(self, x, dropout_out):
        return dropout_out(self.dense2(self.dropout(self.activation(self.dense1(x)))))


def _check_padding_mask(owner, mask):
    if mask is not None and mask.dtype != bool and not str(mask.dtype).startswith(("float", "bfloat")):
        raise LayerArgumentError(f"{owner}: the key padding mask must be bool or float, got {mask.dtype}")


class TransformerEncoderLayer(_LayerBase):
    """Self-attention then feed-forward, each with a residual and LayerNorm (before with ``norm_first``).

    ``construct(src, src_mask=None, src_key_padding_mask=None)``.
    """

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu", layer_norm_eps=1e-5,
                 batch_first=False, norm_first=False, dtype=mstype.float32):
        super().__init__(d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps, batch_first,
                         norm_first, dtype, cross_attention=False)

    def construct(self, src, src_mask=None, src_key_padding_mask=None):
        _check_padding_mask("TransformerEncoderLayer", src_key_padding_mask)
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask)
            return x + self._ff_block(self.norm2(x), self.dropout2)
        x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask))
        return self.norm2(x + self._ff_block(x, self.dropout2))


class TransformerDecoderLayer(_LayerBase):
    """Self-attention, attention over ``memory``, then feed-forward; residuals and LayerNorms.

    ``construct(tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
    memory_key_padding_mask=None)``.
    """

    _norms = 3

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu", layer_norm_eps=1e-5,
                 batch_first=False, norm_first=False, dtype=mstype.float32):
        super().__init__(d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps, batch_first,
                         norm_first, dtype, cross_attention=True)

    def _mha_block(self, x, memory, attn_mask, key_padding_mask):
        x = self.multihead_attn(x, memory, memory, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                                need_weights=False)[0]
        return self.dropout2(x)

    def construct(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                  memory_key_padding_mask=None):
        x = tgt
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), tgt_mask, tgt_key_padding_mask)
            x = x + self._mha_block(self.norm2(x), memory, memory_mask, memory_key_padding_mask)
            return x + self._ff_block(self.norm3(x), self.dropout3)
        x = self.norm1(x + self._sa_block(x, tgt_mask, tgt_key_padding_mask))
        x = self.norm2(x + self._mha_block(x, memory, memory_mask, memory_key_padding_mask))
        return self.norm3(x + self._ff_block(x, self.dropout3))


def _copies(layer_cls, layer, num_layers, owner):
    if not isinstance(layer, layer_cls):
        raise TypeError(f"{owner}: the layer must be a {layer_cls.__name__}, got {type(layer).__name__}")
    if not isinstance(num_layers, int) or isinstance(num_layers, bool) or num_layers < 1:
        raise LayerArgumentError(f"{owner}: 'num_layers' must be a positive int, got {num_layers!r}")
    fresh = layer_cls(*layer._settings(), dtype=layer.dtype)
    return CellList([copy.deepcopy(fresh) for _ in range(num_layers)])


class TransformerEncoder(Cell):
    """``num_layers`` encoder layers like ``encoder_layer``, then ``norm`` if given."""

    def __init__(self, encoder_layer, num_layers, norm=None):
        super().__init__()
        self.layers = _copies(TransformerEncoderLayer, encoder_layer, num_layers, "TransformerEncoder")
        self.num_layers, self.norm = num_layers, norm

    def construct(self, src, src_mask=None, src_key_padding_mask=None):
        _check_padding_mask("TransformerEncoder", src_key_padding_mask)
        output = src
        for layer in self.layers:
            output = layer(output, src_mask=src_mask, src_key_padding_mask=src_key_padding_mask)
        return output if self.norm is None else self.norm(output)


class TransformerDecoder(Cell):
    """``num_layers`` decoder layers like ``decoder_layer``, then ``norm`` if given."""

    def __init__(self, decoder_layer, num_layers, norm=None):
        super().__init__()
        self.layers = _copies(TransformerDecoderLayer, decoder_layer, num_layers, "TransformerDecoder")
        self.num_layers, self.norm = num_layers, norm

    def construct(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                  memory_key_padding_mask=None):
        output = tgt
        for layer in self.layers:
            output = layer(output, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                           tgt_key_padding_mask=tgt_key_padding_mask, memory_key_padding_mask=memory_key_padding_mask)
        return output if self.norm is None else self.norm(output)


class Transformer(Cell):
    """Encoder (``num_encoder_layers`` + LayerNorm) and decoder (``num_decoder_layers`` + LayerNorm).

    ``construct(src, tgt, src_mask=None, tgt_mask=None, memory_mask=None, src_key_padding_mask=None,
    tgt_key_padding_mask=None, memory_key_padding_mask=None)``.
    """

    def __init__(self, d_model=512, nhead=8, num_encoder_layers=6, num_decoder_layers=6, dim_feedforward=2048,
                 dropout=0.1, activation="relu", custom_encoder=None, custom_decoder=None, layer_norm_eps=1e-5,
                 batch_first=False, norm_first=False, dtype=mstype.float32):
        super().__init__()
        settings = (d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps, batch_first, norm_first)
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            self.encoder = TransformerEncoder(TransformerEncoderLayer(*settings, dtype=dtype), num_encoder_layers,
                                              LayerNorm((d_model,), epsilon=layer_norm_eps, dtype=dtype))
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            self.decoder = TransformerDecoder(TransformerDecoderLayer(*settings, dtype=dtype), num_decoder_layers,
                                              LayerNorm((d_model,), epsilon=layer_norm_eps, dtype=dtype))
        for _, p in self.parameters_and_names():
            if len(p.shape) > 1:
                p.set_data(initializer("xavier_uniform", p.shape, p.dtype))
        self.d_model, self.nhead, self.batch_first = d_model, nhead, batch_first

    def construct(self, src, tgt, src_mask=None, tgt_mask=None, memory_mask=None, src_key_padding_mask=None,
                  tgt_key_padding_mask=None, memory_key_padding_mask=None):
        if src.shape[-1] != self.d_model or tgt.shape[-1] != self.d_model:
            raise LayerArgumentError(f"Transformer: 'src' and 'tgt' must have d_model={self.d_model} features, got "
                                     f"{src.shape[-1]} and {tgt.shape[-1]}")
        memory = self.encoder(src, src_mask=src_mask, src_key_padding_mask=src_key_padding_mask)
        return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                            tgt_key_padding_mask=tgt_key_padding_mask,
                            memory_key_padding_mask=memory_key_padding_mask)
