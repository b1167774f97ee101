"""`sr-train export --weights W --format paddle|onnx --out DIR`: a deployable model."""

from __future__ import annotations

from pathlib import Path

import typer

from sr_train.export import export_weights


def export_command(
    weights: Path = typer.Option(..., "--weights", help="Weights to export (.safetensors, .pdparams, .pth)."),
    fmt: str = typer.Option(..., "--format", help="paddle (paddle.jit.save inference model) | onnx (verified "
                                                  "against Paddle with onnxruntime)."),
    out: Path = typer.Option(..., "--out", help="Output folder (also usable as `sr-train predict --weights`)."),
) -> None:
    """Export a model with dynamic batch, height and width."""
    written = export_weights(weights, fmt, out)
    typer.echo(f"wrote {written}")
