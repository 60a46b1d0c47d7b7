"""``msjax.dataset.vision``: image transforms and ``Inter`` (MindSpore's names)."""
from msjax.dataset.vision.transforms import HWC2CHW, Normalize, Rescale, Resize
from msjax.dataset.vision.utils import Inter

__all__ = ["Resize", "Rescale", "Normalize", "HWC2CHW", "Inter"]
