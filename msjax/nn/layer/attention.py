"""MultiheadAttention with MindSpore 2.10's arguments, parameters and mask rules.

Parameters: ``in_proj_weight`` ``(3E, E)`` (or ``q_proj_weight``/``k_proj_weight``/``v_proj_weight``
when ``kdim``/``vdim`` differ from ``embed_dim``), ``in_proj_bias`` ``(3E,)``, ``out_proj`` (a Dense),
``bias_k``/``bias_v`` ``(1, 1, E)`` with ``add_bias_kv``. Masks as MindSpore: a bool mask is True
where attention is blocked (-inf), a float mask is added to the scores; a uint8 ``attn_mask`` is
read as bool. A float ``attn_mask`` combined with a bool ``key_padding_mask`` *adds* the bool mask
(+1 where True), exactly as MindSpore 2.10 does (PyTorch blocks those keys instead).

>>> mha = nn.MultiheadAttention(8, 2)
>>> [name for name, _ in mha.parameters_and_names()]
['in_proj_weight', 'in_proj_bias', 'out_proj.weight', 'out_proj.bias']
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from msjax.common import dtype as mstype
from msjax.common._initializers import draw_seed
from msjax.common.initializer import HeUniform, Uniform, XavierNormal, XavierUniform, initializer
from msjax.common.tensor import Parameter
from msjax.errors import LayerArgumentError
from msjax.nn.cell import Cell
from msjax.nn.layer.basic import Dense
from msjax.nn.layer.rnn_cells import chunks

__all__ = ["MultiheadAttention"]


def _linear(x, w, b):
    y = x @ w.T
    return y if b is None else y + b


def _pad_last(mask):
    """One more key column: False (bool) or 0 (float), as MindSpore pads for bias_k / zero attention."""
    return None if mask is None else jnp.pad(mask, [(0, 0)] * (mask.ndim - 1) + [(0, 1)])


def _check_masks(owner, batched, query, key, key_padding_mask, attn_mask, num_heads):
    problems = []
    if key_padding_mask is not None:
        if key_padding_mask.dtype != jnp.bool_ and not jnp.issubdtype(key_padding_mask.dtype, jnp.floating):
            problems.append(f"'key_padding_mask' must be bool or float, got {key_padding_mask.dtype}")
        if key_padding_mask.ndim != (2 if batched else 1):
            problems.append(f"'key_padding_mask' must be {2 if batched else 1}-D, got shape "
                            f"{tuple(key_padding_mask.shape)}")
    if attn_mask is not None:
        if attn_mask.dtype not in (jnp.bool_, jnp.uint8) and not jnp.issubdtype(attn_mask.dtype, jnp.floating):
            problems.append(f"'attn_mask' must be float, uint8 or bool, got {attn_mask.dtype}")
        tgt, src = query.shape[0], key.shape[0]
        bsz = query.shape[1] if batched else 1
        allowed = [(tgt, src), (bsz * num_heads, tgt, src)]
        if tuple(attn_mask.shape) not in allowed:
            problems.append(f"'attn_mask' has shape {tuple(attn_mask.shape)}, expected {allowed[0]} or "
                            f"{allowed[1]} (batch * num_heads, target length, source length)")
    if problems:
        raise LayerArgumentError(f"{owner}: " + "; ".join(problems))


class MultiheadAttention(Cell):
    """``construct(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
    average_attn_weights=True)`` -> ``(output, weights)``, or ``(output,)`` without ``need_weights``.

    Inputs are ``(L, N, E)`` (``(N, L, E)`` with ``batch_first``) or unbatched ``(L, E)``; the
    weights are ``(N, L, S)``, or ``(N, num_heads, L, S)`` without ``average_attn_weights``.
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, has_bias=True, add_bias_kv=False, add_zero_attn=False,
                 kdim=None, vdim=None, batch_first=False, dtype=mstype.float32):
        super().__init__()
        self.embed_dim, self.num_heads, self.dropout, self.batch_first = embed_dim, num_heads, dropout, batch_first
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.head_dim = embed_dim // num_heads
        if self.head_dim * num_heads != embed_dim:
            raise LayerArgumentError(f"MultiheadAttention: 'embed_dim' ({embed_dim}) must be divisible by "
                                     f"'num_heads' ({num_heads})")
        dtype = mstype.float32 if dtype is None else dtype
        self.in_proj_weight = self.q_proj_weight = self.k_proj_weight = self.v_proj_weight = None
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(initializer(XavierUniform(), (3 * embed_dim, embed_dim), dtype))
        else:
            self.q_proj_weight = Parameter(initializer(XavierUniform(), (embed_dim, embed_dim), dtype))
            self.k_proj_weight = Parameter(initializer(XavierUniform(), (embed_dim, self.kdim), dtype))
            self.v_proj_weight = Parameter(initializer(XavierUniform(), (embed_dim, self.vdim), dtype))
        self.in_proj_bias = Parameter(initializer("zeros", (3 * embed_dim,), dtype)) if has_bias else None
        self.out_proj = Dense(embed_dim, embed_dim, has_bias=has_bias, weight_init=HeUniform(math.sqrt(5)),
                              bias_init=Uniform(1 / math.sqrt(embed_dim)), dtype=dtype)
        self.bias_k = self.bias_v = None
        if add_bias_kv:
            self.bias_k = Parameter(initializer(XavierNormal(), (1, 1, embed_dim), dtype))
            self.bias_v = Parameter(initializer(XavierNormal(), (1, 1, embed_dim), dtype))
        self.add_zero_attn, self.dtype = add_zero_attn, dtype
        self.rngs = nnx.Rngs(dropout=draw_seed())

    def _projections(self, dtype):
        def value(p):
            return None if p is None else p.get_value().astype(dtype)
        if self._qkv_same_embed_dim:
            weights = chunks(value(self.in_proj_weight), 3, axis=0)
        else:
            weights = [value(self.q_proj_weight), value(self.k_proj_weight), value(self.v_proj_weight)]
        biases = [None] * 3 if self.in_proj_bias is None else chunks(value(self.in_proj_bias), 3)
        return weights, biases

    def construct(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                  average_attn_weights=True):
        owner = "MultiheadAttention"
        if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim:
            raise LayerArgumentError(f"{owner}: query, key and value must all be 3-D (batched) or 2-D "
                                     f"(unbatched), got {query.ndim}-D, {key.ndim}-D and {value.ndim}-D")
        batched = query.ndim == 3
        if self.batch_first and batched:
            query, key, value = (jnp.swapaxes(t, 0, 1) for t in (query, key, value))
        _check_masks(owner, batched, query, key, key_padding_mask, attn_mask, self.num_heads)
        if not batched:
            query, key, value = query[:, None], key[:, None], value[:, None]
            key_padding_mask = None if key_padding_mask is None else key_padding_mask[None]
        tgt_len, bsz, embed_dim = query.shape
        if embed_dim != self.embed_dim or key.shape[:2] != value.shape[:2]:
            raise LayerArgumentError(f"{owner}: query has {embed_dim} features (embed_dim={self.embed_dim}); key "
                                     f"{tuple(key.shape)} and value {tuple(value.shape)} must agree on length "
                                     f"and batch")
        heads, head_dim = self.num_heads, self.head_dim
        (w_q, w_k, w_v), (b_q, b_k, b_v) = self._projections(query.dtype)
        q, k, v = _linear(query, w_q, b_q), _linear(key, w_k, b_k), _linear(value, w_v, b_v)
        if attn_mask is not None:
            attn_mask = attn_mask.astype(jnp.bool_) if attn_mask.dtype == jnp.uint8 else attn_mask
            attn_mask = attn_mask[None] if attn_mask.ndim == 2 else attn_mask
        if self.bias_k is not None:
            k = jnp.concatenate([k, jnp.tile(self.bias_k.get_value().astype(k.dtype), (1, bsz, 1))])
            v = jnp.concatenate([v, jnp.tile(self.bias_v.get_value().astype(v.dtype), (1, bsz, 1))])
            attn_mask, key_padding_mask = _pad_last(attn_mask), _pad_last(key_padding_mask)
        q = jnp.swapaxes(q.reshape(tgt_len, bsz * heads, head_dim), 0, 1)
        k = jnp.swapaxes(k.reshape(k.shape[0], bsz * heads, head_dim), 0, 1)
        v = jnp.swapaxes(v.reshape(v.shape[0], bsz * heads, head_dim), 0, 1)
        if self.add_zero_attn:
            k = jnp.concatenate([k, jnp.zeros((bsz * heads, 1, head_dim), k.dtype)], axis=1)
            v = jnp.concatenate([v, jnp.zeros((bsz * heads, 1, head_dim), v.dtype)], axis=1)
            attn_mask, key_padding_mask = _pad_last(attn_mask), _pad_last(key_padding_mask)
        src_len = k.shape[1]
        if key_padding_mask is not None:
            key_padding_mask = jnp.tile(key_padding_mask.reshape(bsz, 1, 1, src_len),
                                        (1, heads, 1, 1)).reshape(bsz * heads, 1, src_len)
            if attn_mask is None:
                attn_mask = key_padding_mask
            elif attn_mask.dtype == jnp.bool_:
                attn_mask = jnp.logical_or(attn_mask, key_padding_mask.astype(jnp.bool_))
            else:                                # MindSpore adds the mask, a bool one as 0/1
                attn_mask = attn_mask + key_padding_mask.astype(attn_mask.dtype)
        if attn_mask is not None and attn_mask.dtype == jnp.bool_:
            attn_mask = jnp.where(attn_mask, jnp.array(-jnp.inf, q.dtype), jnp.zeros((), q.dtype))
        if attn_mask is not None:
            attn_mask = attn_mask[None] if attn_mask.shape[0] == 1 else attn_mask.reshape(bsz, heads, -1, src_len)
        q, k, v = (t.reshape(bsz, heads, -1, head_dim) for t in (q, k, v))
        scale = jnp.sqrt(jnp.sqrt(jnp.asarray(head_dim, q.dtype)))
        attn = (q / scale) @ jnp.swapaxes(k / scale, -2, -1)
        if attn_mask is not None:
            attn = attn + attn_mask.astype(attn.dtype)
        attn = jax.nn.softmax(attn, axis=-1)
        if self.training and self.dropout > 0:
            keep = jax.random.bernoulli(self.rngs.dropout(), 1 - self.dropout, attn.shape)
            attn = jnp.where(keep, attn / (1 - self.dropout), jnp.zeros((), attn.dtype))
        out = jnp.transpose(attn @ v, (2, 0, 1, 3)).reshape(tgt_len * bsz, embed_dim)
        out = self.out_proj(out).reshape(tgt_len, bsz, -1)
        weights = attn.sum(axis=1) / heads if average_attn_weights else attn
        if not batched:
            out, weights = out[:, 0], weights[0]
        elif self.batch_first:
            out = jnp.swapaxes(out, 0, 1)
        return (out, weights) if need_weights else (out,)
