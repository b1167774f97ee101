"""Per-image quality measures: the near-constant rule and edge sharpness.

One home for both: `srdata inspect` reports near-constant images with the same rule that
`srdata frames` uses to drop blank video frames, and the frames command's sharpness floor is
measured with `edge_sharpness` by scripts/measure_sharpness_floor.py.

Both work on the grey image (OpenCV's RGB2GRAY, BT.601 weights: the grey srdata uses everywhere).
"""

from __future__ import annotations

import cv2
import numpy as np

# near_constant: an image whose central 99% of grey levels (0.5th to 99.5th percentile of the
# BT.601 grey image) spans fewer than this many levels out of 255. Fractions of pixels, so it does
# not depend on the image size; the outer 0.5% on each side lets a blank frame with a small logo
# or a few levels of noise still count as blank. On the 164 real cartoons of the development set
# the smallest 1st-99th percentile spread is 43 levels (a black silhouette on white), far above.
NEAR_CONSTANT_LEVELS = 10
NEAR_CONSTANT_TAIL = 0.005
NEAR_CONSTANT_RULE = (
    f"near_constant: the 0.5th-99.5th percentile range of the grey image spans fewer than "
    f"{NEAR_CONSTANT_LEVELS} of 255 levels (99% of the pixels are almost one shade)"
)

# edge_sharpness: windows of SHARPNESS_WINDOW pixels along a row (or a column) whose grey range is
# at least SHARPNESS_MIN_CONTRAST levels hold an edge; a window's steepness is its largest step
# between neighbouring pixels divided by its range.
SHARPNESS_WINDOW = 5
SHARPNESS_MIN_CONTRAST = 48
# Fewer edge windows than this: no edge to judge, the image counts as not sharp (0.0).
SHARPNESS_MIN_WINDOWS = 64


def grey_of(rgb: np.ndarray) -> np.ndarray:
    """uint8 HxW grey of a uint8 HxWx3 RGB image (BT.601 weights, as OpenCV computes it)."""
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def grey_spread(img: np.ndarray) -> int:
    """Grey levels spanned by the central 99% of an RGB image's pixels (see NEAR_CONSTANT_RULE)."""
    return level_spread(grey_of(img))


def level_spread(grey: np.ndarray) -> int:
    """Levels spanned by the central 99% of a uint8 grey image's pixels."""
    cumulative = np.cumsum(np.bincount(grey.ravel(), minlength=256))
    n = cumulative[-1]
    low = int(np.searchsorted(cumulative, NEAR_CONSTANT_TAIL * n, side="right"))
    high = int(np.searchsorted(cumulative, (1 - NEAR_CONSTANT_TAIL) * n, side="left"))
    return max(0, high - low)


def is_near_constant(spread: int) -> bool:
    """The near_constant rule on a `grey_spread`/`level_spread` value."""
    return spread < NEAR_CONSTANT_LEVELS


def edge_sharpness(grey: np.ndarray) -> float:
    """How steep the edges of a uint8 grey image are, in [0, 1]: the median over edge windows of (largest
    one-pixel grey step / grey range), the lower of the horizontal and vertical medians (1 = a hard
    step, ~0.25 = edges smeared over 4 pixels or more).

    Contrast does not matter (a faint edge and a black outline score alike) and neither does how
    much of the picture is flat (only windows holding an edge count), which is what makes it
    usable on cartoons, whose large flat fills defeat the usual variance of the Laplacian. An edge
    blurred with a Gaussian of sigma s has its largest step ~ 1/(s sqrt(2 pi)) of its height, so the
    score falls as 1/s until the edge is wider than the window. Motion blur smears edges across
    the motion only, so each direction is measured on its own and the lower median is returned.
    """
    medians = []
    half = SHARPNESS_WINDOW // 2
    for along_rows in (True, False):
        # contrast: range of the window of SHARPNESS_WINDOW pixels centred on each pixel;
        # steepest: the largest of the steps between neighbours inside that same window
        # (steps[x] = |g[x+1] - g[x]|), so the ratio is never above 1.
        if along_rows:
            steps = cv2.absdiff(grey[:, 1:], grey[:, :-1])
            window, step_window = (1, SHARPNESS_WINDOW), (1, SHARPNESS_WINDOW - 1)
            anchor, trim = (half, 0), np.s_[:, :-1]
        else:
            steps = cv2.absdiff(grey[1:], grey[:-1])
            window, step_window = (SHARPNESS_WINDOW, 1), (SHARPNESS_WINDOW - 1, 1)
            anchor, trim = (0, half), np.s_[:-1]
        if steps.size == 0:
            continue
        kernel = np.ones(window, np.uint8)
        contrast = cv2.subtract(cv2.dilate(grey, kernel), cv2.erode(grey, kernel))[trim]
        edges = contrast >= SHARPNESS_MIN_CONTRAST
        if np.count_nonzero(edges) < SHARPNESS_MIN_WINDOWS:
            continue  # no edge across this direction (e.g. only vertical stripes)
        steepest = cv2.dilate(steps, np.ones(step_window, np.uint8), anchor=anchor)
        medians.append(float(np.median(steepest[edges].astype(np.float32) / contrast[edges])))
    return min(medians, default=0.0)
