"""`sr-train convert IN OUT.safetensors`: PaddleGAN / BasicSR / Real-ESRGAN weights to srkit's format."""

from __future__ import annotations

from pathlib import Path

import typer


def convert_command(
    src: Path = typer.Argument(..., help="Weights to convert: .pdparams (PaddleGAN), .pth (BasicSR/Real-ESRGAN) "
                                         "or .safetensors."),
    dst: Path = typer.Argument(..., help="Output srkit weights file (.safetensors, with the architecture inside)."),
) -> None:
    """Convert weights to a srkit .safetensors file; pickles are read without running any code in them."""
    from sr_train.weights.foreign import describe  # Paddle is imported when a command runs, not for --help
    from sr_train.weights.load import convert_weights

    found = convert_weights(src, dst)
    typer.echo(f"wrote {dst}: {describe(found)}")
