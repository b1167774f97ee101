"""`sr-train export --weights W --format paddle|onnx|basicsr --out DIR`: a deployable or shareable model."""

from __future__ import annotations

from pathlib import Path

import typer

from sr_train.export import export_weights


def export_command(
    weights: Path = typer.Option(..., "--weights", help="Weights to export (.safetensors, .pdparams, .pth)."),
    fmt: str = typer.Option(..., "--format", help="paddle (paddle.jit.save inference model) | onnx (verified "
                                                  "against Paddle with onnxruntime) | basicsr (model.pth + "
                                                  "model.safetensors with BasicSR/Real-ESRGAN names, for "
                                                  "chaiNNer/spandrel and Real-ESRGAN)."),
    out: Path = typer.Option(..., "--out", help="Output folder (paddle/onnx exports are also usable as "
                                                "`sr-train predict --weights`)."),
) -> None:
    """Export a model (paddle/onnx: dynamic batch, height and width; basicsr: for chaiNNer and Real-ESRGAN)."""
    written = export_weights(weights, fmt, out)
    typer.echo(f"wrote {written}")
