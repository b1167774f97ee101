"""`sr-train eval RECIPE_OR_DS --weights W [--split test] [--json PATH] [--save-images DIR]`."""

from __future__ import annotations

from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from sr_train.tiling import DEFAULT_TILE
from srdata.atomic import write_json


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
    from sr_train.evaluate import evaluate  # Paddle is imported when a command runs, not for --help

    report = evaluate(source, weights, split=split, save_images=save_images, tile=tile, progress=progress)
    print_table(report, Console())
    if json_path:
        write_json(json_path, report)
    return 0


def print_table(report: dict, console: Console) -> None:
    """One row per image, the mean, and the gain over bicubic."""
    table = Table(title=f"{report['split']}: {report['weights']} (crop {report['crop_border']}, "
                        f"{'Y' if report['y_channel'] else 'RGB'})")
    for column in ("image", "PSNR", "SSIM", "bicubic PSNR", "bicubic SSIM", "gain dB"):
        table.add_column(column, justify="left" if column == "image" else "right")
    rows = report["images"] + [{"name": "mean", **report["mean"]}]
    for i, row in enumerate(rows):
        table.add_row(row["name"], f"{row['psnr']:.3f}", f"{row['ssim']:.4f}", f"{row['bicubic_psnr']:.3f}",
                      f"{row['bicubic_ssim']:.4f}", f"{row['psnr'] - row['bicubic_psnr']:+.3f}",
                      end_section=i == len(rows) - 2)
    console.print(table)
    mean = report["mean"]
    console.print(f"gain over bicubic: {mean['psnr'] - mean['bicubic_psnr']:+.3f} dB PSNR, "
                  f"{mean['ssim'] - mean['bicubic_ssim']:+.4f} SSIM on {len(report['images'])} images",
                  soft_wrap=True, highlight=False)
