"""How an HR image becomes its LR partner: blur, downscale, noise, JPEG, in that order.

Everything runs in float (float32; float64 after the matlab filter) and is rounded to uint8
once at the end (before the JPEG step, which needs uint8), so no intermediate step truncates
or double-rounds.

Random choices (noise sigma within a range, the noise itself, JPEG quality within a range)
come from a generator seeded per image from `--seed` and the source's SHA-256, so an image's
LR does not depend on which worker made it or on what else is in the folder.

OpenCV is used directly rather than through albumentations: `A.GaussianBlur` draws sigma and
kernel size from ranges with its own random state, `A.GaussNoise` takes sigma as a fraction of
255, adds to uint8 (a second rounding) and draws from the pipeline's generator, and
`A.ImageCompression` draws the quality likewise; none of them would let the manifest record the
exact per-image parameters from our per-image seed.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import cv2
import numpy as np

from srdata.resize import imresize_matlab

# --down / --hr-resize names -> OpenCV flags ("matlab" is srdata.resize.imresize_matlab).
CV2_FILTERS = {
    "bicubic": cv2.INTER_CUBIC,
    "area": cv2.INTER_AREA,
    "bilinear": cv2.INTER_LINEAR,
    "nearest": cv2.INTER_NEAREST,
    "lanczos": cv2.INTER_LANCZOS4,
}
FILTERS = (*CV2_FILTERS, "matlab")
# Two independent streams per image seed: parameters, and the noise field itself.
_PARAMETER_STREAM = 0
_NOISE_STREAM = 1


def gaussian_ksize(sigma: float) -> int:
    """Kernel side 2*ceil(3*sigma)+1 (covers +-3 sigma); 0 means no blur."""
    return 2 * math.ceil(3 * sigma) + 1 if sigma > 0 else 0


def blur_to_float(img: np.ndarray, sigma: float) -> np.ndarray:
    """float32 Gaussian blur of an image, with OpenCV's default border (BORDER_REFLECT_101).

    The kernel is the one cv2.GaussianBlur builds (getGaussianKernel, ksize from
    `gaussian_ksize`), applied separably by cv2.sepFilter2D straight from uint8 to float32:
    the same filter as GaussianBlur on a float32 copy (to ~1e-5) at less than half the cost,
    and nothing is rounded. sigma 0 only converts to float32.
    """
    if sigma <= 0:
        return img.astype(np.float32)
    kernel = cv2.getGaussianKernel(gaussian_ksize(sigma), sigma, cv2.CV_32F)
    return cv2.sepFilter2D(img, cv2.CV_32F, kernel, kernel)


def resize(img: np.ndarray, size: tuple[int, int], filter_name: str) -> np.ndarray:
    """Resize to exactly size = (width, height) with a --down/--hr-resize filter name.

    uint8 in -> uint8 out (rounded); float in -> float out (not rounded, not clipped).
    """
    if (img.shape[1], img.shape[0]) == tuple(size):
        return img
    if filter_name == "matlab":
        out = imresize_matlab(img, tuple(size))  # float64: kept, so only the end rounds
        return to_uint8(out) if img.dtype == np.uint8 else out
    return cv2.resize(img, tuple(size), interpolation=CV2_FILTERS[filter_name])


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Round half to even and clip to 0..255 (never truncate)."""
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def jpeg_roundtrip(img_u8: np.ndarray, quality: int) -> np.ndarray:
    """Encode with libjpeg (OpenCV, 4:2:0) at `quality` and decode again."""
    ok, buf = cv2.imencode(".jpg", img_u8, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("cv2.imencode failed to write a JPEG")
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


@dataclass(frozen=True)
class Degradation:
    """The LR recipe shared by all images; ranges are (lo, hi), None = step off."""

    scale: int
    blur: float = 0.0
    down: str = "bicubic"
    noise: tuple[float, float] | None = None
    jpeg: tuple[int, int] | None = None
    seed: int = 0

    def image_seed(self, sha256: str) -> int:
        """The seed of one image's generator: from --seed and its content, nothing else."""
        digest = hashlib.sha256(f"srkit-degrade:{self.seed}:{sha256}".encode()).digest()
        return int.from_bytes(digest[:8], "big")

    def draw(self, sha256: str) -> dict:
        """The parameters one image gets (what its manifest line records as `degradation`)."""
        noisy = self.noise is not None and self.noise[1] > 0
        jpeg_range = self.jpeg is not None and self.jpeg[0] != self.jpeg[1]
        # The per-image seed is recorded (and part of the LR's recipe) only when something
        # random is drawn from it, so a new --seed does not remake deterministic LRs.
        image_seed = self.image_seed(sha256) if noisy or jpeg_range else None
        rng = np.random.default_rng([image_seed, _PARAMETER_STREAM]) if image_seed is not None else None
        noise_sigma = 0.0
        if noisy:
            lo, hi = self.noise
            noise_sigma = float(lo) if lo == hi else round(float(rng.uniform(lo, hi)), 4)
        quality = None
        if self.jpeg is not None:
            lo, hi = self.jpeg
            quality = int(rng.integers(lo, hi + 1)) if jpeg_range else int(lo)
        return {
            "scale": self.scale,
            "blur_sigma": float(self.blur),
            "blur_ksize": gaussian_ksize(self.blur),
            "filter": self.down,
            "noise_sigma": noise_sigma,
            "jpeg_quality": quality,
            "seed": image_seed,
        }

    def apply(self, hr: np.ndarray, params: dict) -> np.ndarray:
        """uint8 HR (any channel order) -> uint8 LR of exactly (W/scale, H/scale)."""
        height, width = hr.shape[:2]
        size = (width // self.scale, height // self.scale)
        img = blur_to_float(hr, self.blur)
        img = resize(img, size, self.down)
        if params["noise_sigma"] > 0:
            rng = np.random.default_rng([params["seed"], _NOISE_STREAM])
            noise = rng.standard_normal(img.shape, dtype=np.float32)
            img = img + noise * np.float32(params["noise_sigma"])
        lr = to_uint8(img)
        if params["jpeg_quality"] is not None:
            lr = jpeg_roundtrip(lr, params["jpeg_quality"])
        return lr

