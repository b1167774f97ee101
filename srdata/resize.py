"""Resizing images with the filters srdata offers (`--down`, `--hr-resize`, a pipeline's `resize`).

`resize` runs OpenCV's filters or MATLAB-style `imresize(img, [h w], 'bicubic')`, the downscaler
the SR benchmarks use (`matlab`).

Set5/Set14/DIV2K LR images were made with MATLAB's imresize, whose bicubic differs from OpenCV's
INTER_CUBIC in two ways that change PSNR noticeably: when shrinking, the cubic kernel is widened by
1/scale (antialiasing: every source pixel contributes, instead of 4 taps that alias), and borders
are padded by mirroring (symmetric) rather than replicated. `srdata build --down matlab` uses this
so models trained on srkit data see the same degradation as the published benchmarks.
"""

from __future__ import annotations

import cv2
import numpy as np

_A = -0.5  # MATLAB's cubic kernel (Keys, a = -0.5)
# Filter names -> OpenCV flags ("matlab" is imresize_matlab).
CV2_FILTERS = {
    "bicubic": cv2.INTER_CUBIC,
    "area": cv2.INTER_AREA,
    "bilinear": cv2.INTER_LINEAR,
    "nearest": cv2.INTER_NEAREST,
    "lanczos": cv2.INTER_LANCZOS4,
}
FILTERS = (*CV2_FILTERS, "matlab")


def resize(img: np.ndarray, size: tuple[int, int], filter_name: str) -> np.ndarray:
    """Resize to exactly size = (width, height) with a filter name from FILTERS.

    uint8 in -> uint8 out (rounded); float in -> float out (not rounded, not clipped; float64
    after `matlab`, so that only the caller's final rounding rounds).
    """
    if (img.shape[1], img.shape[0]) == tuple(size):
        return img
    if filter_name == "matlab":
        out = imresize_matlab(img, tuple(size))
        return to_uint8(out) if img.dtype == np.uint8 else out
    return cv2.resize(img, tuple(size), interpolation=CV2_FILTERS[filter_name])


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Round half to even and clip to 0..255 (never truncate)."""
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def imresize_matlab(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an HW or HWC image (uint8 or float) to size=(width, height), as OpenCV orders it.

    Returns float64 in the input's value range; the caller rounds (MATLAB rounds half away from
    zero and saturates). For uint8 input the result between the two 1-D passes is rounded as
    MATLAB does, so uint8 in -> bit-exact MATLAB out after that final rounding; float input
    behaves like MATLAB on doubles. Each axis is a separate 1-D filter: per output pixel, the
    source indices and weights are computed once, then applied as a few whole-array gathers
    (one per kernel tap), never a loop over pixels.
    """
    if not isinstance(img, np.ndarray) or img.ndim not in (2, 3) or img.size == 0:
        raise ValueError(
            f"imresize_matlab needs a non-empty HW or HWC array, got "
            f"{getattr(img, 'shape', type(img).__name__)}"
        )
    if img.dtype != np.uint8 and not np.issubdtype(img.dtype, np.floating):
        raise ValueError(f"imresize_matlab needs a uint8 or float image, got {img.dtype}")
    width, height = (int(v) for v in size)
    if width < 1 or height < 1:
        raise ValueError(f"imresize_matlab: output size must be positive, got {size}")
    first, second = sorted((0, 1), key=lambda ax: (height, width)[ax] / img.shape[ax])
    # Shrink along the axis that shrinks most first, as MATLAB does (fewest operations).
    out = _resize_axis(img, first, (height, width)[first])
    if img.dtype == np.uint8:
        # MATLAB keeps the image's class between the two passes: uint8 in, the intermediate is
        # rounded (half away from zero) and saturated. Benchmark LR images were made this way.
        out = np.floor(np.clip(out, 0, 255) + 0.5)
    return _resize_axis(out, second, (height, width)[second])


def _resize_axis(img: np.ndarray, axis: int, out_len: int) -> np.ndarray:
    """out[.., y, ..] = sum over taps of weight[y, tap] * img[.., index[y, tap], ..]."""
    indices, weights = contributions(img.shape[axis], out_len)
    shape = list(img.shape)
    shape[axis] = out_len
    acc, term = np.zeros(shape), np.empty(shape)
    w_shape = [1] * img.ndim
    w_shape[axis] = out_len
    for tap in range(indices.shape[1]):
        np.multiply(np.take(img, indices[:, tap], axis=axis), weights[:, tap].reshape(w_shape),
                    out=term)
        acc += term
    return acc


def cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (support [-2, 2])."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    near = (_A + 2) * ax3 - (_A + 3) * ax2 + 1
    far = _A * ax3 - 5 * _A * ax2 + 8 * _A * ax - 4 * _A
    return np.where(ax <= 1, near, np.where(ax <= 2, far, 0.0))


def contributions(in_len: int, out_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Source indices (mirrored into range) and normalised weights, shape (out_len, taps).

    Follows MATLAB's `contributions`: output pixel x (1-based) sits at u = x/s + (1 - 1/s)/2 in
    the source; when shrinking (s < 1) the kernel is h(t) = s * cubic(s * t), 4/s pixels wide.
    """
    scale = out_len / in_len
    shrink = scale < 1
    width = 4.0 / scale if shrink else 4.0
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = int(np.ceil(width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]  # 1-based source positions
    dist = u[:, None] - idx
    w = scale * cubic(scale * dist) if shrink else cubic(dist)
    w /= w.sum(axis=1, keepdims=True)
    # Symmetric padding: ... 2 1 | 1 2 ... n | n n-1 ...
    mirror = np.r_[np.arange(in_len), np.arange(in_len - 1, -1, -1)]
    src = mirror[(idx.astype(np.int64) - 1) % (2 * in_len)]
    used = np.any(w != 0, axis=0)  # MATLAB drops taps that are zero for every output
    return src[:, used], w[:, used]
