"""`sr-train runs RUN... [--plot PATH] [--json PATH]`: training runs side by side."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

from srdata.atomic import write_bytes, write_json


PIPE_WIDTH = 160


def runs_command(
    runs: List[Path] = typer.Argument(..., help="Run folders made by `sr-train fit` (their run_dir)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Also draw every run's validation PSNR/SSIM curves "
                                                             "into this PNG."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Also write the comparison as JSON to this file."),
) -> int:
    """Compare runs: recipe keys that differ, iterations, best val PSNR/SSIM, gain over bicubic, training time."""
    from sr_train.plots import compare_curves  # matplotlib is imported when the command runs, not for --help
    from sr_train.runs import compare_runs

    report, histories = compare_runs(list(runs))
    console = Console()
    if not console.is_terminal:  # piped or redirected: room for every column rather than 80 characters
        console = Console(width=max(console.width, PIPE_WIDTH))
    print_table(report, console)
    if plot:
        write_bytes(plot, compare_curves(histories))
    if json_path:
        write_json(json_path, report)
    return 0


def _number(value, digits: int, sign: bool = False) -> str:
    if not isinstance(value, (int, float)):
        return "n/a"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def print_table(report: dict, console: Console) -> None:
    """One row per run; one column per recipe key that differs between them."""
    table = Table(title="runs: validation PSNR/SSIM (best PSNR, the iteration and SSIM there) vs bicubic")
    longest = max((len(run["run"]) for run in report["runs"]), default=3)
    table.add_column("run", overflow="fold", min_width=min(longest, 16))
    for key in report["differing_keys"]:
        table.add_column(key, overflow="fold", min_width=min(len(key), 16))
    for column in ("iters", "PSNR", "at", "SSIM", "best SSIM", "bicubic", "gain dB", "train time"):
        table.add_column(column, justify="right")
    for run in report["runs"]:
        table.add_row(run["run"], *[str(run["recipe"][key]) for key in report["differing_keys"]],
                      str(run["iterations"]), _number(run["best_psnr"], 3), str(run["best_psnr_iter"] or "n/a"),
                      _number(run["ssim_at_best_psnr"], 4), _number(run["best_ssim"], 4),
                      _number(run["bicubic_psnr"], 3), _number(run["gain_db"], 3, sign=True),
                      _duration(run["train_seconds"]))
    console.print(table)
    if not report["differing_keys"]:
        console.print("the runs' recipes do not differ (apart from run_dir)", highlight=False)
