"""`sr-train eval RECIPE_OR_DS --weights W [--split test] [--json PATH] [--save-images DIR]`."""

from __future__ import annotations

from typing import Optional

import typer

from sr_train.tiling import DEFAULT_TILE


def eval_command(
    source: str = typer.Argument(..., help="A recipe (its data) or a dataset folder made by `srdata build`."),
    weights: str = typer.Option(..., "--weights", help="Weights: srkit .safetensors, PaddleGAN .pdparams or Real-ESRGAN .pth."),
    split: str = typer.Option("test", "--split", help="Which split to score: test, val or train."),
    json_path: Optional[str] = typer.Option(None, "--json", help="Also write the scores as JSON to this file."),
    save_images: Optional[str] = typer.Option(None, "--save-images", help="Write each super-resolved image as PNG into this folder."),
    tile: Optional[int] = typer.Option(None, "--tile", help=f"LR tile size (0: whole image). Default: the recipe's val.tile, else {DEFAULT_TILE}."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the progress bar."),
) -> int:
    """PSNR/SSIM per image and on average, against bicubic, on one split of a dataset."""
    from sr_train.evaluate import evaluate

    evaluate(source, weights, split=split, json_path=json_path, save_images=save_images, tile=tile, progress=progress)
    return 0
