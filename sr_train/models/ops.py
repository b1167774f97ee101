"""Up-sampling operations built from ops every exporter understands (tile, reshape, conv, pixel shuffle).

paddle2onnx 2.1 fails on `F.interpolate` with a scale factor, so nearest and bicubic up-sampling are
written here without it. The bicubic kernel is computed once with numpy and applied as a fixed
depthwise convolution followed by a pixel shuffle; it reproduces `cv2.resize(..., INTER_CUBIC)`
(a = -0.75, half-pixel centres, replicated border) for integer scales.
"""

from __future__ import annotations

import math

import numpy as np
import paddle
import paddle.nn.functional as F

CUBIC_A = -0.75  # OpenCV's INTER_CUBIC coefficient (MATLAB's imresize uses -0.5).
CUBIC_TAPS = 5  # for an integer scale every output phase reads 4 of the 5 LR pixels k-2 .. k+2
CUBIC_PAD = CUBIC_TAPS // 2


def nearest_upsample(x: paddle.Tensor, scale: int) -> paddle.Tensor:
    """Nearest-neighbour up-sampling of an NCHW tensor by an integer factor (tile + flatten)."""
    if scale == 1:
        return x
    x = x.unsqueeze([3, 5])  # N, C, H, 1, W, 1
    x = paddle.tile(x, [1, 1, 1, scale, 1, scale])
    return x.flatten(4, 5).flatten(2, 3)


def unshuffle_kernel(channels: int, factor: int) -> np.ndarray:
    """One-hot depthwise conv weights (channels * factor², 1, factor, factor) for `pixel_unshuffle`."""
    kernel = np.zeros((channels, factor * factor, 1, factor, factor), np.float32)
    for i in range(factor):
        for j in range(factor):
            kernel[:, i * factor + j, 0, i, j] = 1.0
    return kernel.reshape(channels * factor * factor, 1, factor, factor)


def pixel_unshuffle(x: paddle.Tensor, kernel: paddle.Tensor, factor: int) -> paddle.Tensor:
    """Space-to-depth with PaddleGAN's channel order (c * f * f + row * f + col), as a strided
    one-hot convolution: exact, and unlike `F.pixel_unshuffle` it exports with dynamic height/width."""
    return F.conv2d(x, kernel, stride=factor, groups=x.shape[1])


def _cubic_coefficients(t: float) -> list[float]:
    """The four weights OpenCV gives the pixels at offsets -1, 0, 1, 2 from floor(src) for fraction t."""
    a = CUBIC_A

    def near(d: float) -> float:  # |d| <= 1
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d: float) -> float:  # 1 < |d| < 2
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    c0, c1, c2 = far(t + 1), near(t), near(1 - t)
    return [c0, c1, c2, 1.0 - c0 - c1 - c2]


def cubic_phase_weights(scale: int) -> np.ndarray:
    """(scale, CUBIC_TAPS) weights: row r gives output pixel scale*k + r from LR pixels k-2 .. k+2.

    OpenCV maps output x to source (x + 0.5) / scale - 0.5; for x = scale*k + r that is k + d with
    d = (r + 0.5) / scale - 0.5 in (-0.5, 0.5), so the taps sit at floor(d) - 1 .. floor(d) + 2.
    """
    weights = np.zeros((scale, CUBIC_TAPS), np.float64)
    for r in range(scale):
        d = (r + 0.5) / scale - 0.5
        base = math.floor(d)
        for i, c in enumerate(_cubic_coefficients(d - base)):
            weights[r, base - 1 + i + CUBIC_PAD] = c
    return weights


def cubic_kernel(channels: int, scale: int) -> np.ndarray:
    """Depthwise conv weights (channels * scale², 1, 5, 5) whose pixel shuffle is a bicubic ×scale."""
    w1 = cubic_phase_weights(scale)
    phases = np.einsum("ay,bx->abyx", w1, w1).reshape(scale * scale, CUBIC_TAPS, CUBIC_TAPS)
    return np.tile(phases[None], (channels, 1, 1, 1)).reshape(channels * scale * scale, 1, CUBIC_TAPS, CUBIC_TAPS).astype(np.float32)


def bicubic_upsample(x: paddle.Tensor, kernel: paddle.Tensor, scale: int) -> paddle.Tensor:
    """Bicubic ×scale of an NCHW tensor with a kernel from `cubic_kernel` (replicated border)."""
    if scale == 1:
        return x
    channels = x.shape[1]
    padded = F.pad(x, [CUBIC_PAD] * 4, mode="replicate")
    phases = F.conv2d(padded, kernel, groups=channels)
    return F.pixel_shuffle(phases, scale)


class LeakyReLU(paddle.nn.Layer):
    """max(x, slope·x): paddle2onnx 2.1 exports Paddle's leaky_relu with alpha 0 (measured: wrong by
    0.43 on a test tensor), so the activation is spelled with ops it converts correctly."""

    def __init__(self, slope: float):
        super().__init__()
        self.slope = slope

    def forward(self, x):
        return paddle.maximum(x, x * self.slope)
