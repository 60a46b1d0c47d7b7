"""``msjax.dataset.transforms``: TypeCast and Compose (MindSpore's names)."""
from msjax.dataset.transforms.transforms import Compose, TypeCast

__all__ = ["TypeCast", "Compose"]
