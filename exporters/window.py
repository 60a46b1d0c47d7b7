"""Window attributes (convolution and pooling) shared by the emitters and the MINDIR reader.

jaxpr keeps one ``(low, high)`` padding pair per dim; MindSpore writes 2-D pads as
``(top, bottom, left, right)`` and ONNX as all begins, then all ends. SAME padding is
TensorFlow's/MindSpore's: the output has ``ceil(size / stride)`` elements, the extra row or column
going to the high side.

>>> same_pads(7, 3, 2)
(1, 1)
>>> onnx_pads([(1, 2), (0, 1)])
[1, 0, 2, 1]
"""
from __future__ import annotations

__all__ = ["same_pads", "same_pads_2d", "interleaved", "onnx_pads"]


def same_pads(size, kernel, stride, dilation=1):
    """The ``(low, high)`` SAME padding of one dim of ``size`` for a (dilated) window."""
    eff = (kernel - 1) * dilation + 1
    total = max((-(-size // stride) - 1) * stride + eff - size, 0)
    return (total // 2, total - total // 2)


def same_pads_2d(in_hw, kernel, stride, dilation=(1, 1)):
    """``(top, bottom, left, right)`` SAME padding of a 2-D window over ``in_hw``."""
    return interleaved(same_pads(*args) for args in zip(in_hw, kernel, stride, dilation))


def interleaved(pairs):
    """``[(lo, hi), ...]`` as MindSpore's flat ``(lo0, hi0, lo1, hi1, ...)``."""
    return tuple(v for pair in pairs for v in pair)


def onnx_pads(pairs):
    """``[(lo, hi), ...]`` as ONNX's ``[lo0, lo1, ..., hi0, hi1, ...]``."""
    pairs = [tuple(p) for p in pairs]
    return [lo for lo, _ in pairs] + [hi for _, hi in pairs]
