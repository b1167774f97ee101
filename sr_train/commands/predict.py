"""`sr-train predict --weights W INPUT... --out DIR`: upscale images with a trained model."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from sr_train.engines import DEFAULT_ENGINE, DYGRAPH_TILE, ONNX_TILE, PADDLE_EXPORT_TILE
from sr_train.predict import MAX_PIXELS, PredictOptions, check_options, predict
from sr_train.tiling import DEFAULT_PAD
from srdata.folderlock import hold_folder

TILE_HELP = (f"Tile size in input pixels (bounded memory); 0 = whole image. Default: {ONNX_TILE} (onnx), "
             f"{DYGRAPH_TILE} (paddle), {PADDLE_EXPORT_TILE} (paddle on an export folder), each under 2 GB "
             "for RRDBNet.")


def predict_command(
    inputs: List[Path] = typer.Argument(..., help="Image files or folders (searched recursively)."),
    weights: Path = typer.Option(..., "--weights", help="Weights (.safetensors, .pdparams, .pth) or a folder "
                                                        "written by `sr-train export`."),
    out: Path = typer.Option(..., "--out", help="Output folder: one PNG per input, same relative name."),
    tile: Optional[int] = typer.Option(None, "--tile", help=TILE_HELP),
    tile_pad: int = typer.Option(DEFAULT_PAD, "--tile-pad", help="Context pixels around each tile (no seams)."),
    outscale: Optional[float] = typer.Option(None, "--outscale", help="Resize the result to F x the input "
                                                                      "(Lanczos), e.g. 2 with a x4 model."),
    alpha: str = typer.Option("bicubic", "--alpha", help="Upscale an alpha channel with: bicubic | model."),
    engine: str = typer.Option(DEFAULT_ENGINE, "--engine", help="paddle | onnx (onnx: exported once to a cache "
                                                                "folder; faster here)."),
    max_pixels: int = typer.Option(MAX_PIXELS, "--max-pixels", help="Skip inputs with more pixels (decompression "
                                                                    "bombs), as `srdata build` does."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the progress bar."),
) -> int:
    """Upscale images; unreadable inputs are skipped with a reason (exit code 1 if any were)."""
    opts = PredictOptions(weights=weights, inputs=list(inputs), out=out, tile=tile, tile_pad=tile_pad,
                          outscale=outscale, alpha=alpha, engine=engine, max_pixels=max_pixels)
    check_options(opts)  # bad options fail before the folder is created or locked
    with hold_folder(out, f"--out {out}", "sr-train predict"):
        report = predict(opts, progress=progress)
    speed = report.output_megapixels / report.seconds if report.seconds > 0 else 0.0
    typer.echo(f"wrote {len(report.written)} image(s) to {out} ({report.output_megapixels:.2f} output MP "
               f"in {report.seconds:.1f} s, {speed:.3f} MP/s); skipped {len(report.skipped)}")
    return 1 if report.skipped else 0
