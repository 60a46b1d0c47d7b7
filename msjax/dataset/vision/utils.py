"""``Inter``: interpolation modes of ``vision.Resize`` (MindSpore's names and values)."""
from __future__ import annotations

import enum

__all__ = ["Inter"]


class Inter(enum.IntEnum):
    """Interpolation mode; ``LINEAR`` is ``BILINEAR`` and ``CUBIC`` is ``BICUBIC``, as in MindSpore."""

    NEAREST = 0
    ANTIALIAS = 1
    BILINEAR = LINEAR = 2
    BICUBIC = CUBIC = 3
    AREA = 4
    PILCUBIC = 5
