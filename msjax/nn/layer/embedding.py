"""Embedding: a lookup table ``embedding_table`` of shape (vocab_size, embedding_size).

>>> nn.Embedding(10, 4)(Tensor(np.array([[1, 2]], np.int32))).shape
(1, 2, 4)
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from msjax.common import dtype as mstype
from msjax.common.initializer import initializer
from msjax.common.tensor import Parameter
from msjax.errors import LayerArgumentError
from msjax.nn.cell import Cell

__all__ = ["Embedding"]


class Embedding(Cell):
    """Look ids up in ``embedding_table``; ``padding_idx`` rows start at zero."""

    #: MindSpore parameter <- torch.nn.Embedding state-dict key (msjax.checkpoint.torch_format)
    TORCH_NAMES = {"embedding_table": "weight"}

    def __init__(self, vocab_size, embedding_size, use_one_hot=False, embedding_table="normal",
                 dtype=mstype.int32, padding_idx=None):
        super().__init__()
        self.vocab_size, self.embedding_size = vocab_size, embedding_size
        self.use_one_hot, self.dtype, self.padding_idx = bool(use_one_hot), dtype, padding_idx
        table = np.array(initializer(embedding_table, (vocab_size, embedding_size)).asnumpy())
        if padding_idx is not None:
            if not 0 <= padding_idx < vocab_size:
                raise LayerArgumentError(f"Embedding: padding_idx must be in [0, {vocab_size}), got {padding_idx}")
            table[padding_idx] = 0
        self.embedding_table = Parameter(table)

    def construct(self, ids):
        table = self.embedding_table.get_value()
        flat = ids.reshape(-1)
        if self.use_one_hot:
            out = jax.nn.one_hot(flat, self.vocab_size, dtype=table.dtype) @ table
        else:
            out = jnp.take(table, flat, axis=0)
        return out.reshape(tuple(ids.shape) + (self.embedding_size,))
