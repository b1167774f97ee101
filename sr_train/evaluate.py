"""PSNR/SSIM of a model on whole images against the bicubic baseline (validation and `sr-train eval`).

Scores use `srdata.metrics` (the same numbers `srdata inspect` reports); the model's output is
clipped to [0, 1] and rounded to 8 bits first, as a saved PNG would be. Bicubic =
`srdata.metrics.bicubic_baseline`, the function `srdata inspect` reports.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
from rich.progress import Progress

from sr_train.data import Pair, find_pairs, resolve_splits
from sr_train.recipe import load_recipe
from sr_train.tiling import DEFAULT_PAD, DEFAULT_TILE, upscale
from sr_train.weights.load import load_model
from srdata.atomic import write_bytes
from srdata.cliutil import progress_bar
from srdata.errors import UserError
from srdata.imageio import read_png_rgb
from srdata.layout import SplitDirs, lr_dir, resolve_layout
from srdata.metrics import bicubic_baseline, mean_score, psnr_ssim


@dataclass
class ImageScore:
    name: str
    psnr: float
    ssim: float
    bicubic_psnr: float
    bicubic_ssim: float


def super_resolve(model, lr: np.ndarray, scale: int, tile: int) -> np.ndarray:
    """uint8 HWC RGB LR -> uint8 HWC RGB SR (whole image when tile is 0, else tiles of `tile` LR px)."""
    out = upscale(model, lr.astype(np.float32) / 255.0, scale, tile=tile, tile_pad=DEFAULT_PAD)
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


def score_model(model, pairs: list[Pair], scale: int, crop_border: int, y_channel: bool, tile: int = 0,
                baselines: list[tuple[float, float]] | None = None, save_dir: Path | None = None,
                progress: Progress | None = None,
                on_image: Callable[[Pair, np.ndarray, np.ndarray, np.ndarray, int], None] | None = None
                ) -> list[ImageScore]:
    """Per-image scores of `model` (eval mode) on `pairs`; optionally save each SR image as PNG.

    Bicubic's (psnr, ssim) is scored in the same loop, from the same decoded pair, unless
    `baselines` (one per pair, from an earlier call) is given: validation during `fit` scores
    bicubic once per run. `on_image(pair, lr, sr, hr, scale)` sees each image (uint8 RGB), e.g. for
    the training log's pictures.
    """
    task = progress.add_task("evaluate", total=len(pairs)) if progress else None
    scores = []
    for i, pair in enumerate(pairs):
        hr, lr = read_png_rgb(pair.hr), read_png_rgb(pair.lr)
        sr = super_resolve(model, lr, scale, tile)
        if on_image is not None:
            on_image(pair, lr, sr, hr, scale)
        if save_dir is not None:
            ok, png = cv2.imencode(".png", cv2.cvtColor(sr, cv2.COLOR_RGB2BGR))
            if not ok:
                raise UserError(f"could not encode {pair.name} as PNG")
            write_bytes(Path(save_dir) / f"{pair.name}.png", png.tobytes())
        try:
            base = baselines[i] if baselines else bicubic_baseline(hr, lr, crop_border, y_channel)
            scores.append(ImageScore(pair.name, *psnr_ssim(sr, hr, crop_border, y_channel), *base))
        except ValueError as exc:
            raise UserError(f"{pair.hr}: cannot be scored ({exc}): remove it from the split") from None
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


# ----------------------------------------------------------------------------- sr-train eval

@dataclass
class EvalData:
    pairs: list[Pair]
    scale: int
    crop_border: int
    y_channel: bool
    tile: int | None


def eval_data(source: str, split: str) -> EvalData:
    """The pairs of `split` from a recipe (its data and val settings) or a dataset folder."""
    path = Path(source)
    if path.is_dir():
        layout = resolve_layout(path)
        found = {s.name: s for s in layout.splits}
        if split not in found or not found[split].lr.is_dir():
            raise UserError(f"{path} has no {split}/ and {lr_dir(split, layout.scale)}/ folders: choose --split from "
                            f"{', '.join(sorted(found)) or 'none'} or build the dataset with --test N")
        return EvalData(find_pairs(found[split], layout.scale), layout.scale, layout.scale, True, None)
    if not path.is_file():
        raise UserError(f"{source}: neither a recipe file nor a dataset folder: pass one of them")
    recipe = load_recipe(path)
    crop = recipe.val.crop_border
    if recipe.data.root:
        root = Path(recipe.data.root)
        data = eval_data(str(root), split) if root.is_dir() else None
        if data is None:
            raise UserError(f"{recipe.source}: data.root {root} is not a folder: build it with `srdata build` first")
        return EvalData(data.pairs, data.scale, data.scale if crop is None else crop, recipe.val.y_channel,
                        recipe.val.tile)
    if split not in ("train", "val"):
        raise UserError(f"{recipe.source} names train and val folders only: use --split val, or pass a dataset folder")
    splits = resolve_splits(recipe)
    dirs: SplitDirs = getattr(splits, split)
    return EvalData(find_pairs(dirs, splits.scale), splits.scale, splits.scale if crop is None else crop,
                    recipe.val.y_channel, recipe.val.tile)


def evaluate(source: str, weights: str, split: str = "test", save_images: str | None = None, tile: int | None = None,
             progress: bool = True) -> dict:
    """Score `weights` on a split (optionally writing each SR image); returns `report_json`'s document."""
    data = eval_data(source, split)
    model = load_model(weights)
    model_scale = getattr(model, "scale", None)
    if model_scale != data.scale:
        raise UserError(f"{weights} is a x{model_scale} model but the data is x{data.scale}: "
                        "use weights of the dataset's scale")
    tile = tile if tile is not None else (data.tile if data.tile is not None else DEFAULT_TILE)
    if tile < 0:
        raise UserError(f"--tile {tile}: use 0 (whole image) or a positive tile size")
    with progress_bar("images", progress) as bar:
        scores = score_model(model, data.pairs, data.scale, data.crop_border, data.y_channel, tile,
                             save_dir=Path(save_images) if save_images else None, progress=bar)
    return report_json(scores, data.crop_border, data.y_channel, str(weights), split)
