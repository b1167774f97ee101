"""`sr-train export --weights W --format paddle|onnx|basicsr --out DIR [--license L] [--eval DS]`: a
deployable or shareable model, with its model card."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def export_command(
    weights: Path = typer.Option(..., "--weights", help="Weights to export (.safetensors, .pdparams, .pth)."),
    fmt: str = typer.Option(..., "--format", help="paddle (paddle.jit.save inference model) | onnx (verified "
                                                  "against Paddle with onnxruntime) | basicsr (model.pth + "
                                                  "model.safetensors with BasicSR/Real-ESRGAN names, for "
                                                  "chaiNNer/spandrel and Real-ESRGAN)."),
    out: Path = typer.Option(..., "--out", help="Output folder (paddle/onnx exports are also usable as "
                                                "`sr-train predict --weights`)."),
    license: Optional[str] = typer.Option(None, "--license", help="Licence stated on the model card, e.g. "
                                                                  "CC-BY-4.0 (default: unspecified)."),
    eval_source: Optional[str] = typer.Option(None, "--eval", help="Score the model on this dataset folder or "
                                                                   "recipe (as `sr-train eval`) for the model card."),
    eval_split: str = typer.Option("test", "--eval-split", help="Split scored with --eval: test, val or train."),
    name: Optional[str] = typer.Option(None, "--name", help="Model name on the card (default: the run folder "
                                                            "for RUN/best|last.safetensors, else the file name)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the --eval progress bar."),
) -> None:
    """Export a model (paddle/onnx: dynamic batch, height and width) and write its model card
    (README.md + model_card.json) beside it."""
    from sr_train.evaluate import evaluate  # Paddle is imported when a command runs, not for --help
    from sr_train.export import export_weights
    from sr_train.model_card import card_for_export, fresh_evaluation, write_card

    report = evaluate(eval_source, str(weights), split=eval_split, progress=progress) if eval_source else None
    written = export_weights(weights, fmt, out)
    card = card_for_export(weights, out, license, fresh_evaluation(report, eval_source) if report else None, name)
    paths = write_card(out, card)
    typer.echo(f"wrote {written}; model card {paths[1]} ({card['architecture']['name']}, x{card['scale']}, "
               f"{card['parameters']:,} parameters)")
