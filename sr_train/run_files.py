"""The files of a run folder (`run_dir`) that `sr-train fit` writes and other commands read, by name.
Light on purpose: the commands import it for `--help` and `--dry-run` without matplotlib or Paddle."""

from __future__ import annotations

from pathlib import Path

from srdata.jsonio import read_jsonl

METRICS = "metrics.jsonl"
CURVES = "curves.png"
RECIPE_COPY = "recipe.yaml"  # the recipe as the run used it (written by fit, read by `sr-train runs`)
VISUALDL_DIR = "visualdl"


def read_metrics(run_dir: Path) -> list[dict]:
    """Rows of RUN/metrics.jsonl; a torn last line (killed mid-write) is dropped."""
    return read_jsonl(run_dir / METRICS, skip_bad_lines=True)
