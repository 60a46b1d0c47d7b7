"""``msjax.common.tensor``: MindSpore's import path for ``Tensor`` (``mindspore.common.tensor``), with
``Parameter`` and ``unwrap`` beside it.

The class is in ``_tensor``, its method families in ``_tensor_conversions``, ``_tensor_shapes`` and
``_tensor_reductions``, the rules they share in ``_tensor_rules`` and ``_tensor_args``; Parameter
and its in-place updates are in ``msjax.common.parameter``.
"""
from msjax.common._tensor import Tensor
from msjax.common._tensor_rules import unwrap
from msjax.common.parameter import Parameter

__all__ = ["Parameter", "Tensor", "unwrap"]
