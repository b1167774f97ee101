"""PSNR and SSIM exactly as the super-resolution field reports them (BasicSR / PaddleGAN).

One implementation shared by `srdata inspect` (bicubic baseline, `bicubic_baseline`) and `sr-train eval`, so the
numbers a user sees for a dataset and for a model are comparable with each other and with
published tables. The conventions are the field's, not the textbook's:

- inputs are uint8 HWC RGB images (or HW grey); `crop_border` pixels are removed from every
  edge first (SR papers crop `scale` pixels, where upscalers are least reliable);
- `y_channel=True` compares only luma, Y = (65.481 R + 128.553 G + 24.966 B) / 255 + 16 on the
  0-255 scale (ITU-R BT.601 "studio" range 16-235), kept in float64 and NOT rounded;
- PSNR = 10 log10(255^2 / MSE) in float64, `inf` when the images are identical;
- SSIM uses an 11x11 Gaussian window (sigma 1.5, OpenCV's getGaussianKernel outer product),
  applied as cv2.filter2D does (separably, same numbers); the 5-pixel margin where the window would leave the image is
  dropped ("valid" region), C1 = (0.01*255)^2, C2 = (0.03*255)^2; on RGB the SSIM of each
  channel is computed and the three are averaged.

Dataset scores are the mean of per-image scores (see `mean_score`).
"""

from __future__ import annotations

import math
from typing import Iterable

import cv2
import numpy as np

# BT.601 luma weights on the 0-255 scale, as BasicSR's rgb2ycbcr(y_only=True) uses them.
_Y_WEIGHTS_RGB = np.array([65.481, 128.553, 24.966], dtype=np.float64) / 255.0
_Y_OFFSET = 16.0

_SSIM_WINDOW_SIZE = 11
SSIM_MARGIN = _SSIM_WINDOW_SIZE // 2  # pixels dropped on each side; images must be larger than 2x this
_SSIM_SIGMA = 1.5
_SSIM_C1 = (0.01 * 255) ** 2
_SSIM_C2 = (0.03 * 255) ** 2


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """Luma of a uint8 HWC RGB image as float64 HW on the 0-255 scale (16..235), not rounded.

    Not rounded because BasicSR and PaddleGAN compute metrics on the unrounded Y; rounding
    would shift PSNR by a few hundredths of a dB and make numbers incomparable with papers.
    """
    img = _check_uint8(img, "img")
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"rgb_to_y needs an HxWx3 RGB image, got shape {img.shape}")
    # cv2.transform is the same weighted sum as np.dot (bit-identical here), about 3x faster.
    return cv2.transform(img.astype(np.float64), _Y_WEIGHTS_RGB.reshape(1, 3)) + _Y_OFFSET


def psnr(img: np.ndarray, ref: np.ndarray, crop_border: int = 0, y_channel: bool = False) -> float:
    """Peak signal-to-noise ratio in dB of `img` against `ref` (peak 255); inf when identical."""
    return _psnr_arrays(*_prepare_pair(img, ref, crop_border, y_channel))


def ssim(img: np.ndarray, ref: np.ndarray, crop_border: int = 0, y_channel: bool = False) -> float:
    """Structural similarity of `img` against `ref`; 1.0 when identical.

    On RGB (y_channel=False) it is the mean of the three per-channel SSIMs, as in BasicSR.
    """
    return _ssim_arrays(*_prepare_pair(img, ref, crop_border, y_channel))


def psnr_ssim(
    img: np.ndarray, ref: np.ndarray, crop_border: int = 0, y_channel: bool = False
) -> tuple[float, float]:
    """(psnr, ssim) with one crop and one Y conversion: what evaluation loops want."""
    a, b = _prepare_pair(img, ref, crop_border, y_channel)
    return _psnr_arrays(a, b), _ssim_arrays(a, b)


def bicubic_baseline(
    hr: np.ndarray, lr: np.ndarray, crop_border: int, y_channel: bool = True
) -> tuple[float, float]:
    """(psnr, ssim) of plain bicubic upscaling: the number any SR model has to beat.

    The LR is upscaled to exactly the HR's size with OpenCV's cv2.INTER_CUBIC on the 8-bit
    image, then scored with `psnr_ssim(up, hr, crop_border, y_channel)`. `srdata inspect`
    (per dataset) and `sr-train eval` (next to the model) both call this, so their bicubic
    columns are the same number.
    """
    up = cv2.resize(lr, (hr.shape[1], hr.shape[0]), interpolation=cv2.INTER_CUBIC)
    return psnr_ssim(up, hr, crop_border=crop_border, y_channel=y_channel)


def mean_score(scores: Iterable[float]) -> float:
    """Dataset score = mean of per-image scores (the field's convention); inf if any is inf.

    Returns nan for an empty sequence, so "no images" is never mistaken for a score.
    """
    values = [float(s) for s in scores]
    if not values:
        return math.nan
    return float(np.mean(values))


def _psnr_arrays(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a - b) ** 2, dtype=np.float64))
    if mse == 0.0:
        return math.inf
    return float(10.0 * np.log10(255.0 * 255.0 / mse))


def _ssim_arrays(a: np.ndarray, b: np.ndarray) -> float:
    if a.ndim == 2:
        return _ssim_single_channel(a, b)
    return float(np.mean([_ssim_single_channel(a[..., c], b[..., c]) for c in range(a.shape[2])]))


def _ssim_single_channel(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two float64 HW images on the 0-255 scale (BasicSR's `_ssim`)."""
    half = SSIM_MARGIN
    if a.shape[0] <= 2 * half or a.shape[1] <= 2 * half:
        raise ValueError(
            f"SSIM needs images larger than {2 * half}x{2 * half} after cropping, got {a.shape[1]}x{a.shape[0]}"
        )
    kernel = cv2.getGaussianKernel(_SSIM_WINDOW_SIZE, _SSIM_SIGMA)  # float64, sums to 1

    def local_mean(x: np.ndarray) -> np.ndarray:
        # The window is the outer product kernel x kernel^T, so filtering rows then columns
        # (sepFilter2D) gives cv2.filter2D's result (to 1e-12) about 4x faster.
        return cv2.sepFilter2D(x, -1, kernel, kernel)[half:-half, half:-half]

    mu_a, mu_b = local_mean(a), local_mean(b)
    mu_a2, mu_b2, mu_ab = mu_a * mu_a, mu_b * mu_b, mu_a * mu_b
    var_a = local_mean(a * a) - mu_a2
    var_b = local_mean(b * b) - mu_b2
    cov_ab = local_mean(a * b) - mu_ab
    ssim_map = ((2 * mu_ab + _SSIM_C1) * (2 * cov_ab + _SSIM_C2)) / (
        (mu_a2 + mu_b2 + _SSIM_C1) * (var_a + var_b + _SSIM_C2)
    )
    return float(ssim_map.mean(dtype=np.float64))


def _prepare_pair(img, ref, crop_border: int, y_channel: bool) -> tuple[np.ndarray, np.ndarray]:
    """Validate, crop the border, optionally take Y; return float64 arrays on the 0-255 scale."""
    img = _check_uint8(img, "img")
    ref = _check_uint8(ref, "ref")
    if img.shape != ref.shape:
        raise ValueError(f"img and ref must have the same shape, got {img.shape} and {ref.shape}")
    if crop_border < 0:
        raise ValueError(f"crop_border must be >= 0, got {crop_border}")
    if crop_border:
        if 2 * crop_border >= min(img.shape[0], img.shape[1]):
            raise ValueError(f"crop_border={crop_border} leaves nothing of a {img.shape[1]}x{img.shape[0]} image")
        img = img[crop_border:-crop_border, crop_border:-crop_border]
        ref = ref[crop_border:-crop_border, crop_border:-crop_border]
    if y_channel and img.ndim == 3:
        return rgb_to_y(img), rgb_to_y(ref)
    return img.astype(np.float64), ref.astype(np.float64)


def _check_uint8(img, name: str) -> np.ndarray:
    """Refuse anything but uint8 HW / HWC: a float image in [0, 1] would give silently wrong dB."""
    img = np.asarray(img)
    if img.dtype != np.uint8:
        raise TypeError(f"{name} must be a uint8 image (round and clip first), got dtype {img.dtype}")
    if img.ndim not in (2, 3):
        raise ValueError(f"{name} must be HW or HWC, got shape {img.shape}")
    return img
