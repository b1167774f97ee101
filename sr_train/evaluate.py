"""PSNR/SSIM of a model on whole images against the bicubic baseline (validation and `sr-train eval`).

Scores use `srdata.metrics` (the same numbers `srdata inspect` reports); the model's output is
clipped to [0, 1] and rounded to 8 bits first, as a saved PNG would be. Bicubic = OpenCV's
INTER_CUBIC on the 8-bit LR image, as `srdata inspect`'s baseline.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from rich.progress import Progress

from sr_train.data import Pair
from srdata.atomic import write_bytes
from srdata.errors import UserError
from srdata.imageio import read_png_rgb
from srdata.metrics import mean_score, psnr, ssim


@dataclass
class ImageScore:
    name: str
    psnr: float
    ssim: float
    bicubic_psnr: float
    bicubic_ssim: float


@dataclass
class Baseline:
    psnr: float
    ssim: float


def super_resolve(model, lr: np.ndarray, scale: int, tile: int) -> np.ndarray:
    """uint8 HWC RGB LR -> uint8 HWC RGB SR (whole image when tile is 0, else tiles of `tile` LR px)."""
    from sr_train.tiling import DEFAULT_PAD, upscale

    out = upscale(model, lr.astype(np.float32) / 255.0, scale, tile=tile, tile_pad=DEFAULT_PAD)
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


def bicubic(lr: np.ndarray, hr_shape: tuple[int, ...]) -> np.ndarray:
    return cv2.resize(lr, (hr_shape[1], hr_shape[0]), interpolation=cv2.INTER_CUBIC)


def bicubic_scores(pairs: list[Pair], crop_border: int, y_channel: bool) -> list[Baseline]:
    """Bicubic's PSNR/SSIM per pair (computed once per run)."""
    scores = []
    for pair in pairs:
        hr, lr = read_png_rgb(pair.hr), read_png_rgb(pair.lr)
        up = bicubic(lr, hr.shape)
        scores.append(Baseline(psnr(up, hr, crop_border, y_channel), ssim(up, hr, crop_border, y_channel)))
    return scores


def score_model(model, pairs: list[Pair], scale: int, crop_border: int, y_channel: bool, tile: int = 0,
                baselines: list[Baseline] | None = None, save_dir: Path | None = None,
                progress: Progress | None = None) -> list[ImageScore]:
    """Per-image scores of `model` (eval mode) on `pairs`; optionally save each SR image as PNG."""
    baselines = baselines or bicubic_scores(pairs, crop_border, y_channel)
    task = progress.add_task("evaluate", total=len(pairs)) if progress else None
    scores = []
    for pair, base in zip(pairs, baselines):
        hr, lr = read_png_rgb(pair.hr), read_png_rgb(pair.lr)
        sr = super_resolve(model, lr, scale, tile)
        if save_dir is not None:
            ok, png = cv2.imencode(".png", cv2.cvtColor(sr, cv2.COLOR_RGB2BGR))
            if not ok:
                raise UserError(f"could not encode {pair.name} as PNG")
            write_bytes(Path(save_dir) / f"{pair.name}.png", png.tobytes())
        scores.append(ImageScore(pair.name, psnr(sr, hr, crop_border, y_channel), ssim(sr, hr, crop_border, y_channel),
                                 base.psnr, base.ssim))
        if progress:
            progress.advance(task)
    return scores


def mean_of(scores: list[ImageScore]) -> dict[str, float]:
    """Means of psnr, ssim, bicubic_psnr, bicubic_ssim (PSNR of identical images is inf and stays so)."""
    return {key: mean_score(getattr(s, key) for s in scores) for key in ("psnr", "ssim", "bicubic_psnr", "bicubic_ssim")}


def report_json(scores: list[ImageScore], crop_border: int, y_channel: bool, weights: str, split: str) -> dict:
    """`sr-train eval --json`'s document (the schema issue 4 fixes)."""
    return {"images": [{k: v for k, v in asdict(s).items()} for s in scores], "mean": mean_of(scores),
            "crop_border": crop_border, "y_channel": y_channel, "weights": weights, "split": split}
