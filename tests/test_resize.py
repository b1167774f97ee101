"""srdata.resize.imresize_matlab: MATLAB's antialiased bicubic, checked against independent
computations (Pillow's float resampler for the interior, a scalar loop for the borders)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from srdata.resize import imresize_matlab


def scalar_reference_1d(row: list[float], out_len: int) -> list[float]:
    """MATLAB's imresize along one axis, written as plain loops straight from its definition:
    u = x/s + (1 - 1/s)/2, kernel s*cubic(s*t) when shrinking, mirrored borders."""
    n = len(row)
    s = out_len / n

    def cubic(t: float) -> float:
        t = abs(t)
        if t <= 1:
            return 1.5 * t**3 - 2.5 * t**2 + 1
        if t <= 2:
            return -0.5 * t**3 + 2.5 * t**2 - 4 * t + 2
        return 0.0

    def mirrored(i: int) -> int:  # 1-based index with symmetric padding
        i = (i - 1) % (2 * n)
        return i if i < n else 2 * n - 1 - i

    out = []
    for x in range(1, out_len + 1):
        u = x / s + 0.5 * (1 - 1 / s)
        width = 4 / s if s < 1 else 4
        taps = range(math.floor(u - width / 2), math.floor(u - width / 2) + math.ceil(width) + 2)
        ws = [s * cubic(s * (u - i)) if s < 1 else cubic(u - i) for i in taps]
        total = sum(ws)
        out.append(sum(w * row[mirrored(i)] for w, i in zip(ws, taps)) / total)
    return out


def pil_float_resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Pillow's BICUBIC on a float image: same a=-0.5 kernel, widened when shrinking, but it
    clips the kernel at the borders instead of mirroring; so only interiors are comparable."""
    im = Image.fromarray(img.astype(np.float32), "F").resize(size, Image.BICUBIC)
    return np.asarray(im, dtype=np.float64)


@pytest.mark.parametrize("size", [(33, 25), (32, 24), (50, 200), (262, 194), (131, 97)])
def test_interior_matches_pillow(size):
    rng = np.random.default_rng(0)
    img = rng.random((97, 131)) * 255
    ours = imresize_matlab(img, size)
    ref = pil_float_resize(img, size)
    m = 8  # away from the borders, where the two pad differently
    assert np.abs(ours - ref)[m:-m, m:-m].max() < 1e-3


def test_downscale_by_four_of_a_ramp_matches_hand_computation():
    ramp = np.tile(np.arange(64, dtype=np.float64), (8, 1))  # value = column index
    out = imresize_matlab(ramp, (16, 2))
    # Interior: a symmetric normalised kernel reproduces a linear ramp at the sample position
    # u = (x + 0.5) * 4 - 0.5 = 4x + 1.5 (0-based source coordinates).
    assert np.allclose(out[0, 2:-2], 4 * np.arange(2, 14) + 1.5, atol=1e-12)
    # Borders: mirroring bends the ramp; compare with the loop written from MATLAB's definition.
    assert np.allclose(out[0], scalar_reference_1d(list(ramp[0]), 16), atol=1e-12)
    assert np.allclose(out[0, 0], out[1, 0])  # rows are all alike


@pytest.mark.parametrize("in_len, out_len", [(10, 3), (37, 11), (5, 12), (9, 9), (100, 1)])
def test_each_axis_matches_the_scalar_reference(in_len, out_len):
    rng = np.random.default_rng(in_len)
    img = rng.random((4, in_len))
    out = imresize_matlab(img, (out_len, 4))
    assert np.allclose(out[2], scalar_reference_1d(list(img[2]), out_len), atol=1e-12)
    col = imresize_matlab(img.T.copy(), (4, out_len))
    assert np.allclose(col[:, 2], out[2], atol=1e-12)


@pytest.mark.parametrize("shape", [(30, 41), (30, 41, 3)])
@pytest.mark.parametrize("size", [(10, 7), (13, 11), (82, 60), (41, 30)])
def test_shape_constant_and_dtype(shape, size):
    img = np.full(shape, 173, dtype=np.uint8)  # uint8: also checks the intermediate rounding
    out = imresize_matlab(img, size)
    assert out.shape == (size[1], size[0]) + shape[2:]
    assert out.dtype == np.float64
    assert np.allclose(out, 173.0, atol=1e-9)


def test_channels_are_resized_independently():
    rng = np.random.default_rng(5)
    img = rng.random((40, 52, 3)) * 255
    out = imresize_matlab(img, (13, 10))
    for c in range(3):
        assert np.allclose(out[..., c], imresize_matlab(img[..., c], (13, 10)))


def test_uint8_rounds_between_passes_like_matlab():
    """MATLAB keeps uint8 between the row and column passes (rounded half away from zero,
    saturated); a float image is not rounded. Rows shrink more here, so they go first."""
    rng = np.random.default_rng(6)
    img = rng.integers(0, 256, (60, 40), dtype=np.uint8)
    img[:12, :] = 255  # bright rows then dark ones: the row pass overshoots past 255
    img[12:18, :] = 0
    out = imresize_matlab(img, (20, 10))  # rows 60 -> 10 (x1/6), columns 40 -> 20 (x1/2)
    rows = np.array([scalar_reference_1d(list(col), 10) for col in img.T.astype(float)]).T
    rows = np.floor(np.clip(rows, 0, 255) + 0.5)
    expected = np.array([scalar_reference_1d(list(r), 20) for r in rows])
    assert np.allclose(out, expected, atol=1e-9)
    as_float = imresize_matlab(img.astype(np.float64), (20, 10))
    assert as_float.max() > 255 and out.max() <= 255  # doubles are never saturated
    assert not np.allclose(out[2:], as_float[2:]) and np.abs(out - as_float)[2:].max() < 1.0


def test_same_size_is_identity():
    img = np.random.default_rng(1).random((17, 23, 3))
    assert np.allclose(imresize_matlab(img, (23, 17)), img, atol=1e-12)


@pytest.mark.parametrize(
    "img, size, msg",
    [
        (np.zeros((4, 4), np.int32), (2, 2), "uint8 or float"),
        (np.zeros((4,), np.uint8), (2, 2), "HW or HWC"),
        (np.zeros((4, 4), np.uint8), (0, 2), "positive"),
    ],
)
def test_bad_input_is_refused(img, size, msg):
    with pytest.raises(ValueError, match=msg):
        imresize_matlab(img, size)
