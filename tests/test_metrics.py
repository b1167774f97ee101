"""PSNR/SSIM pinned against computations that share no code with srdata.metrics.

PSNR: scikit-image's peak_signal_noise_ratio. SSIM: (a) a plain-numpy sliding-window
reimplementation with the Gaussian written from its formula, and (b) scikit-image's
structural_similarity with the same window. skimage pads with scipy's 'reflect' and OpenCV's
filter2D with BORDER_REFLECT_101, but both then drop the 5-pixel margin, and every pixel
left has its full 11x11 window inside the image, so the padding never reaches the mean:
the three must agree to float rounding (1e-9), not just "roughly".
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from srdata.metrics import bicubic_baseline, mean_score, psnr, psnr_ssim, rgb_to_y, ssim


def _pair(seed: int = 0, shape=(40, 52, 3)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ref = rng.integers(0, 256, size=shape, dtype=np.uint8)
    ref = cv2.GaussianBlur(ref, (5, 5), 1.0)  # image-like local correlation
    noise = rng.normal(0, 12, size=shape)
    img = np.clip(np.rint(ref.astype(np.float64) + noise), 0, 255).astype(np.uint8)
    return img, ref


def _numpy_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM on one float64 channel by explicit 11x11 windows (no OpenCV, no padding at all)."""
    x = np.arange(11) - 5
    g = np.exp(-(x**2) / (2 * 1.5**2))
    g /= g.sum()
    w = np.outer(g, g)

    def local_mean(z):
        return np.einsum("ijkl,kl->ij", sliding_window_view(z, (11, 11)), w)

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    ma, mb = local_mean(a), local_mean(b)
    va = local_mean(a * a) - ma**2
    vb = local_mean(b * b) - mb**2
    cov = local_mean(a * b) - ma * mb
    m = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2))
    return float(m.mean())


def test_rgb_to_y_matches_bt601_formula_unrounded():
    img = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0], [10, 20, 30]]], dtype=np.uint8)
    y = rgb_to_y(img)
    assert y.dtype == np.float64
    assert y.shape == (1, 4)
    assert y[0, 0] == pytest.approx(16.0)
    assert y[0, 1] == pytest.approx(235.0)  # 16 + (65.481+128.553+24.966)
    assert y[0, 2] == pytest.approx(16 + 65.481)
    expected = (65.481 * 10 + 128.553 * 20 + 24.966 * 30) / 255 + 16
    assert y[0, 3] == pytest.approx(expected, abs=1e-12)
    assert y[0, 3] != round(y[0, 3])  # not rounded


@pytest.mark.parametrize("crop", [0, 4])
def test_psnr_rgb_matches_skimage(crop):
    img, ref = _pair(1)
    c = slice(crop, -crop) if crop else slice(None)
    expected = peak_signal_noise_ratio(ref[c, c], img[c, c], data_range=255)
    assert psnr(img, ref, crop_border=crop) == pytest.approx(expected, abs=1e-10)


def test_psnr_y_matches_skimage_on_independent_luma():
    img, ref = _pair(2)
    w = np.array([65.481, 128.553, 24.966]) / 255
    y_img = img[3:-3, 3:-3].astype(np.float64) @ w + 16
    y_ref = ref[3:-3, 3:-3].astype(np.float64) @ w + 16
    expected = peak_signal_noise_ratio(y_ref, y_img, data_range=255)
    assert psnr(img, ref, crop_border=3, y_channel=True) == pytest.approx(expected, abs=1e-10)


def test_psnr_identical_is_inf_and_constant_offset_is_known():
    _, ref = _pair(3)
    assert psnr(ref, ref) == math.inf
    assert psnr(ref, ref, y_channel=True) == math.inf
    flat = np.full((16, 16, 3), 100, dtype=np.uint8)
    shifted = flat + np.uint8(5)
    assert psnr(shifted, flat) == pytest.approx(10 * math.log10(255**2 / 25), abs=1e-12)
    # On Y a grey offset of 5 is scaled by the luma gain (65.481+128.553+24.966)/255 = 219/255.
    dy = 5 * 219 / 255
    assert psnr(shifted, flat, y_channel=True) == pytest.approx(10 * math.log10(255**2 / dy**2), abs=1e-9)


def test_ssim_grey_matches_numpy_reimplementation_and_skimage():
    img, ref = _pair(4, shape=(37, 45))
    ours = ssim(img, ref)
    assert ours == pytest.approx(_numpy_ssim(img.astype(float), ref.astype(float)), abs=1e-9)
    sk = structural_similarity(
        img, ref, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
    )
    assert ours == pytest.approx(sk, abs=1e-9)
    assert 0.0 < ours < 0.99


def test_ssim_rgb_is_mean_of_channels_and_matches_skimage():
    img, ref = _pair(5)
    per_channel = [_numpy_ssim(img[..., c].astype(float), ref[..., c].astype(float)) for c in range(3)]
    assert ssim(img, ref) == pytest.approx(np.mean(per_channel), abs=1e-9)
    sk = structural_similarity(
        img, ref, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
        data_range=255, channel_axis=2,
    )
    assert ssim(img, ref) == pytest.approx(sk, abs=1e-9)


def test_ssim_y_with_crop_matches_numpy_reimplementation():
    img, ref = _pair(6)
    w = np.array([65.481, 128.553, 24.966]) / 255
    y_img = img[4:-4, 4:-4].astype(np.float64) @ w + 16
    y_ref = ref[4:-4, 4:-4].astype(np.float64) @ w + 16
    assert ssim(img, ref, crop_border=4, y_channel=True) == pytest.approx(_numpy_ssim(y_img, y_ref), abs=1e-9)


def test_ssim_identical_is_one():
    _, ref = _pair(7)
    assert ssim(ref, ref) == pytest.approx(1.0, abs=1e-12)
    assert ssim(ref, ref, crop_border=2, y_channel=True) == pytest.approx(1.0, abs=1e-12)


def test_bad_inputs_are_refused():
    img, ref = _pair(8)
    with pytest.raises(TypeError, match="uint8"):
        psnr(img.astype(np.float32) / 255, ref)
    with pytest.raises(ValueError, match="same shape"):
        ssim(img[:-1], ref)
    with pytest.raises(ValueError, match="crop_border"):
        psnr(img, ref, crop_border=30)
    with pytest.raises(ValueError, match="larger than"):
        ssim(img[:10, :10], ref[:10, :10])


def test_mean_score():
    assert mean_score([20.0, 30.0]) == 25.0
    assert math.isnan(mean_score([]))
    assert mean_score([20.0, math.inf]) == math.inf


def test_ssim_equals_the_literal_filter2d_recipe():
    """The separable filtering is a speed-up only: same numbers as BasicSR's filter2D code."""
    img, ref = _pair(9, shape=(48, 60))
    a, b = img.astype(np.float64), ref.astype(np.float64)
    k = cv2.getGaussianKernel(11, 1.5)
    w = np.outer(k, k.T)

    def f(z):
        return cv2.filter2D(z, -1, w)[5:-5, 5:-5]

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    m1, m2 = f(a), f(b)
    s1, s2, s12 = f(a * a) - m1**2, f(b * b) - m2**2, f(a * b) - m1 * m2
    literal = (((2 * m1 * m2 + c1) * (2 * s12 + c2)) / ((m1**2 + m2**2 + c1) * (s1 + s2 + c2))).mean()
    assert ssim(img, ref) == pytest.approx(literal, abs=1e-12)


def test_psnr_ssim_together_equal_the_separate_calls():
    img, ref = _pair(10)
    for crop, y in ((0, False), (3, True)):
        assert psnr_ssim(img, ref, crop, y) == (psnr(img, ref, crop, y), ssim(img, ref, crop, y))


def test_bicubic_baseline_upscales_lr_to_hr_size_then_scores():
    """Non-square, so a width/height swap in the resize would fail; crop and Y both honoured."""
    _, hr = _pair(seed=5, shape=(48, 64, 3))
    lr = cv2.resize(hr, (16, 12), interpolation=cv2.INTER_AREA)
    up = cv2.resize(lr, (64, 48), interpolation=cv2.INTER_CUBIC)
    p_y, s_y = bicubic_baseline(hr, lr, crop_border=4, y_channel=True)
    assert p_y == pytest.approx(
        peak_signal_noise_ratio(rgb_to_y(hr[4:-4, 4:-4]), rgb_to_y(up[4:-4, 4:-4]), data_range=255), abs=1e-9
    )
    assert s_y == pytest.approx(ssim(up, hr, crop_border=4, y_channel=True), abs=1e-12)
    p_rgb, _ = bicubic_baseline(hr, lr, crop_border=0, y_channel=False)
    assert p_rgb == pytest.approx(peak_signal_noise_ratio(hr, up, data_range=255), abs=1e-9)
    assert p_rgb != pytest.approx(p_y)
