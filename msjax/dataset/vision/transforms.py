"""Vision transforms of the MindSpore docs' ``create_dataset``: Resize, Rescale, Normalize, HWC2CHW.

Each is a callable on a numpy image (HW or HWC; Resize and Rescale also take leading batch dims).
``Resize`` with ``Inter.LINEAR`` reproduces MindSpore's (OpenCV's) bilinear resize: half-pixel
centres, and on uint8 images the same 11-bit fixed-point arithmetic, so results are bit-identical.

>>> img = np.zeros((28, 28, 1), np.uint8)
>>> HWC2CHW()(Rescale(1 / 255, 0)(Resize((32, 32))(img))).shape
(1, 32, 32)
"""
from __future__ import annotations

import functools

import numpy as np

from msjax.dataset.vision.utils import Inter
from msjax.errors import DatasetError

__all__ = ["Resize", "Rescale", "Normalize", "HWC2CHW"]

_ONE = 2048  # OpenCV's INTER_RESIZE_COEF_SCALE (11 fractional bits)


def _image(img, name):
    img = np.asarray(img.asnumpy() if hasattr(img, "asnumpy") else img)
    if img.ndim < 2:
        raise DatasetError(f"{name}: expected an image of shape (H, W) or (H, W, C), got {img.shape}")
    return img


@functools.lru_cache(maxsize=64)
def _linear_axis(src, dst, clamp_fraction):
    """Source indices and weights of one axis (OpenCV: float32 positions, half-pixel centres).

    OpenCV clamps the fraction to 0 at the borders along x but not along y (there it reads the
    clamped row twice with both weights); the two differ only in fixed-point rounding.
    """
    pos = ((np.arange(dst) + 0.5) * (src / dst) - 0.5).astype(np.float32)
    lo = np.floor(pos).astype(np.int64)
    frac = (pos - lo).astype(np.float32)
    if clamp_fraction:
        frac = np.where((lo < 0) | (lo >= src - 1), np.float32(0), frac)
    lo_c, hi_c = np.clip(lo, 0, src - 1), np.clip(lo + 1, 0, src - 1)
    w1 = np.rint(frac * _ONE).astype(np.int64)
    w0 = np.rint((np.float32(1) - frac) * _ONE).astype(np.int64)
    return lo_c, hi_c, w0, w1, frac


def _resize_linear(img, h, w):
    """Bilinear resize of (..., H, W, C)."""
    H, W = img.shape[-3:-1]
    y0, y1, b0, b1, fy = _linear_axis(H, h, False)
    x0, x1, a0, a1, fx = _linear_axis(W, w, True)
    if img.dtype == np.uint8:  # OpenCV's fixed point: horizontal pass x2048, vertical pass on >>4
        src = img.astype(np.int32)
        rows = src[..., x0, :] * a0[:, None].astype(np.int32) + src[..., x1, :] * a1[:, None].astype(np.int32)
        top = (rows[..., y0, :, :] >> 4).astype(np.int64)
        bottom = (rows[..., y1, :, :] >> 4).astype(np.int64)
        out = (((top * b0[:, None, None]) >> 16) + ((bottom * b1[:, None, None]) >> 16) + 2) >> 2
        return np.clip(out, 0, 255).astype(np.uint8)
    src = img.astype(np.float32, copy=False)
    fx = fx.astype(np.float32)[:, None]
    fy = fy.astype(np.float32)[:, None, None]
    rows = src[..., x0, :] * (1 - fx) + src[..., x1, :] * fx
    out = rows[..., y0, :, :] * (1 - fy) + rows[..., y1, :, :] * fy
    return out.astype(img.dtype if img.dtype.kind == "f" else np.float32)


def _resize_nearest(img, h, w):
    H, W = img.shape[-3:-1]
    yi = np.minimum((np.arange(h) * (H / h)).astype(np.int64), H - 1)
    xi = np.minimum((np.arange(w) * (W / w)).astype(np.int64), W - 1)
    return img[..., yi, :, :][..., xi, :]


class Resize:
    """Resize to ``size``: an int (the shorter edge, keeping the aspect ratio) or ``(h, w)``.

    >>> Resize((32, 32))(np.zeros((28, 28, 1), np.uint8)).shape
    (32, 32, 1)
    """

    _KERNELS = {Inter.LINEAR: _resize_linear, Inter.NEAREST: _resize_nearest}

    def __init__(self, size, interpolation=Inter.LINEAR):
        if isinstance(size, int) and not isinstance(size, bool):
            sizes = (size,)
        else:
            sizes = tuple(size)
        if len(sizes) not in (1, 2) or not all(isinstance(s, int) and s > 0 for s in sizes):
            raise ValueError(f"Resize: size must be a positive int or (height, width), got {size!r}")
        interpolation = Inter(interpolation)
        if interpolation not in self._KERNELS:
            raise NotImplementedError(f"Resize: interpolation {interpolation.name} is not implemented; "
                                      "use Inter.LINEAR or Inter.NEAREST")
        self.size, self.interpolation = sizes, interpolation

    def _target(self, H, W):
        if len(self.size) == 2:
            return self.size
        s = self.size[0]
        return (s, int(W * s / H)) if H <= W else (int(H * s / W), s)

    def __call__(self, img):
        img = _image(img, "Resize")
        flat = img.ndim == 2
        if flat:
            img = img[..., None]
        h, w = self._target(*img.shape[-3:-1])
        out = self._KERNELS[self.interpolation](img, h, w)
        return out[..., 0] if flat else out


class Rescale:
    """``image * rescale + shift`` as float32.

    >>> Rescale(1 / 255, 0)(np.array([[255]], np.uint8))
    array([[1.]], dtype=float32)
    """

    def __init__(self, rescale, shift):
        self.rescale, self.shift = float(rescale), float(shift)

    def __call__(self, img):
        img = _image(img, "Rescale").astype(np.float32, copy=False)
        return img * np.float32(self.rescale) + np.float32(self.shift)


class Normalize:
    """``(image - mean) / std`` per channel, as float32 (HWC unless ``is_hwc=False``).

    >>> Normalize([10.0], [2.0])(np.full((2, 2, 1), 14, np.uint8))[0, 0]
    array([2.], dtype=float32)
    """

    def __init__(self, mean, std, is_hwc=True):
        self.mean = np.asarray(mean, np.float32).reshape(-1)
        self.std = np.asarray(std, np.float32).reshape(-1)
        if self.mean.shape != self.std.shape or (self.std <= 0).any():
            raise ValueError(f"Normalize: mean {mean} and std {std} need equal lengths and std > 0")
        self.is_hwc = is_hwc

    def __call__(self, img):
        img = _image(img, "Normalize").astype(np.float32, copy=False)
        channels = img.shape[-1] if self.is_hwc and img.ndim >= 3 else (img.shape[-3] if img.ndim >= 3 else 1)
        if len(self.mean) not in (1, channels):
            raise DatasetError(f"Normalize: {len(self.mean)} means for an image with {channels} channels")
        shape = (-1,) if self.is_hwc or img.ndim < 3 else (-1, 1, 1)
        return (img - self.mean.reshape(shape)) / self.std.reshape(shape)


class HWC2CHW:
    """Transpose an HWC image to CHW (an HW image becomes 1HW).

    >>> HWC2CHW()(np.zeros((32, 32, 1))).shape
    (1, 32, 32)
    """

    def __call__(self, img):
        img = _image(img, "HWC2CHW")
        if img.ndim == 2:
            return img[None]
        return np.ascontiguousarray(np.moveaxis(img, -1, -3))
