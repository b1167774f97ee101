"""srdata.quality: the near-constant rule (inspect and frames) and edge sharpness (frames)."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from srdata.frames import DEFAULT_SHARPNESS_FLOOR
from srdata.quality import NEAR_CONSTANT_LEVELS, edge_sharpness, grey_of, grey_spread


def test_near_constant_rule_spares_real_cartoons(samples_dir):
    """The rule's threshold sits far below every bundled real image (blank frames are < 10)."""
    spreads = [grey_spread(np.asarray(Image.open(p).convert("RGB"))) for p in sorted(samples_dir.glob("*.png"))]
    assert spreads and min(spreads) >= 4 * NEAR_CONSTANT_LEVELS
    assert grey_spread(np.full((50, 70, 3), 200, np.uint8)) == 0
    # A sharp 2-level checkerboard is not constant even though it has only two values.
    board = (np.indices((64, 64)).sum(0) % 2 * 255).astype(np.uint8)[..., None].repeat(3, 2)
    assert grey_spread(board) == 255


def _step(height: int, width: int, low: int, high: int, vertical_edge: bool = True) -> np.ndarray:
    grey = np.full((height, width), low, np.uint8)
    if vertical_edge:
        grey[:, width // 2 :] = high
    else:
        grey[height // 2 :] = high
    return grey


def test_sharpness_of_steps_ignores_contrast_and_falls_with_blur():
    hard = _step(64, 64, 40, 240)
    assert edge_sharpness(hard) == 1.0
    assert edge_sharpness(_step(64, 64, 100, 160)) == 1.0  # a faint edge is as sharp
    assert edge_sharpness(_step(64, 64, 40, 240, vertical_edge=False)) == 1.0
    scores = [edge_sharpness(cv2.GaussianBlur(hard, (0, 0), sigma)) for sigma in (0.5, 1.0, 2.0, 3.0)]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == 4, scores
    assert edge_sharpness(np.full((64, 64), 128, np.uint8)) == 0.0  # no edge to judge


def test_floor_keeps_bundled_drawings_and_drops_their_motion_blur(samples_dir):
    """The default floor on real drawings: every one passes; smeared by a 9-pixel motion blur
    (horizontal or vertical: each direction is measured), every one fails."""
    kernel = np.full((1, 9), 1 / 9, np.float32)
    for path in sorted(samples_dir.glob("*.png")):
        grey = grey_of(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB))
        assert edge_sharpness(grey) >= DEFAULT_SHARPNESS_FLOOR, path.name
        assert edge_sharpness(cv2.filter2D(grey, -1, kernel)) < DEFAULT_SHARPNESS_FLOOR, path.name
        assert edge_sharpness(cv2.filter2D(grey, -1, kernel.T)) < DEFAULT_SHARPNESS_FLOOR, path.name
