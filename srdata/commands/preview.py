"""`srdata preview`: see what a degradation pipeline does before building a dataset with it."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import List

import typer
from rich.console import Console

from srdata.atomic import atomic_open
from srdata.degradations.pipeline import load_pipeline
from srdata.degradations.preview import DEFAULT_DRAWS, PreviewImage, render_preview
from srdata.errors import UserError
from srdata.imageio import DEFAULT_MAX_PIXELS, RejectedImage, decode_bgr, read_or_user_error
from srdata.sheet import TILE


def preview_command(
    pipeline: str = typer.Argument(..., help="A preset (seed, realesrgan, anime-video) or a pipeline .yaml file."),
    images: List[Path] = typer.Argument(..., help="One or more images to degrade."),
    out: Path = typer.Option(..., "--out", help="The picture to write (.png)."),
    scale: int = typer.Option(4, "--scale", help="Downscale factor, 2-8."),
    draws: int = typer.Option(DEFAULT_DRAWS, "--draws", help="Whole random draws per image."),
    seed: int = typer.Option(0, "--seed", help="Seed of the draws."),
    crop: int = typer.Option(TILE, "--crop", help="Side of the HR crop in pixels (the most detailed window)."),
) -> None:
    """Draw each step of PIPELINE alone and a few whole draws on IMAGE(s), side by side."""
    if out.suffix.lower() != ".png":
        raise UserError(f"--out {out}: the preview is a PNG; give a path ending in .png")
    if not 2 <= scale <= 8:
        raise UserError(f"--scale {scale}: must be between 2 and 8")
    if not 1 <= draws <= 16:
        raise UserError(f"--draws {draws}: give 1 to 16")
    if not 2 * scale <= crop <= 1024:
        raise UserError(f"--crop {crop}: give {2 * scale} to 1024 pixels")
    chosen = load_pipeline(pipeline)
    loaded = []
    for path in images:
        data = read_or_user_error(path)
        try:
            bgr = decode_bgr(data, DEFAULT_MAX_PIXELS)
        except RejectedImage as exc:
            raise UserError(f"{path}: not a usable image ({exc})") from None
        if min(bgr.shape[:2]) < 2 * scale:
            raise UserError(f"{path}: {bgr.shape[1]}x{bgr.shape[0]} is too small for x{scale}")
        loaded.append(PreviewImage(path.name, bgr, hashlib.sha256(data).hexdigest()))
    picture = render_preview(chosen, loaded, scale, draws, seed, crop)
    with atomic_open(out, "wb") as handle:  # a failure is a WriteError naming `out` (srdata.cliutil reports it)
        picture.save(handle, format="PNG")
    Console().print(f"preview of {chosen.name} ({len(chosen.steps)} steps, {draws} draws x {len(loaded)} "
                    f"image(s)): {out} ({picture.width}x{picture.height})")
