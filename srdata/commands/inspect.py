"""`srdata inspect`: a dataset's health at a glance (thin layer over srdata.inspect)."""

from __future__ import annotations

import math
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from srdata.atomic import write_json
from srdata.cliutil import progress_bar
from srdata.commands.executors import cluster_option, open_executor
from srdata.errors import UserError, WriteError
from srdata.inspect import InspectReport, SizeSummary, inspect_layout, sheet_pairs
from srdata.layout import resolve_layout
from srdata.sheet import DEFAULT_ROWS, write_sheet

_MAX_PROBLEM_ROWS = 25


def inspect_command(
    ds: Optional[Path] = typer.Argument(None, help="Dataset folder (srdata build output or train/ + train_X4/ layout)."),
    scale: Optional[int] = typer.Option(None, "--scale", help="Scale, when neither dataset.json nor folder names tell it."),
    hr: Optional[Path] = typer.Option(None, "--hr", help="Folder of HR images (with --lr, instead of DS)."),
    lr: Optional[Path] = typer.Option(None, "--lr", help="Folder of LR images (with --hr, instead of DS)."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write stats and problems as JSON here."),
    sheet: Optional[Path] = typer.Option(None, "--sheet", help="Write a contact sheet PNG of sampled pairs here."),
    sheet_rows: int = typer.Option(DEFAULT_ROWS, "--sheet-rows", help="Pairs on the contact sheet."),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 if any problem is found."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Parallel workers (default: all cores)."),
    cluster: Optional[str] = cluster_option(),
    seed: int = typer.Option(0, "--seed", help="Seed of the contact sheet's sample."),
) -> None:
    """Show per-split stats, problems that would hurt training, and the bicubic baseline."""
    if sheet_rows < 1:
        raise UserError(f"--sheet-rows {sheet_rows}: use 1 or more")
    if sheet is not None and sheet.suffix.lower() != ".png":
        raise UserError(f"--sheet {sheet}: the contact sheet is a PNG; give a path ending in .png")

    layout = resolve_layout(ds, hr, lr, scale)  # bad folders/options fail before any output
    with open_executor(cluster, workers) as executor, \
            progress_bar("pairs", Console(stderr=True).is_terminal, transient=True) as progress:
        task = progress.add_task("inspect", total=None)

        def on_progress(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        report, scan = inspect_layout(layout, executor, on_progress)
    if executor.done_by:
        Console().print("pairs run by " + ", ".join(f"{w} {n}" for w, n in executor.done_by.items()))

    out = Console()
    _print_report(out, report)
    if json_path is not None:
        with _writing("--json", json_path):
            write_json(json_path, report.to_json())
        out.print(f"JSON: {json_path}")
    if sheet is not None:
        pairs = sheet_pairs(scan, sheet_rows, seed)
        if not pairs:
            out.print("[yellow]contact sheet not written: no readable pair with consistent sizes[/]")
        else:
            with _writing("--sheet", sheet):
                width, height = write_sheet(sheet, pairs, report.scale)
            out.print(f"contact sheet: {sheet} ({len(pairs)} pairs, {width}x{height})")
    if strict and report.problems:
        raise typer.Exit(code=1)


@contextmanager
def _writing(option: str, path: Path):
    """Name the option when its path cannot be written (no permission, a folder in the way): exit 2.
    A failing disk (full, I/O error) stays a WriteError (exit 1): another path would not help."""
    try:
        yield
    except WriteError as exc:
        if exc.storage:
            raise
        raise UserError(f"{option} {path}: cannot write ({exc.strerror}); choose another path") from None


def _print_report(out: Console, report: InspectReport) -> None:
    out.print(
        f"[bold]{report.root}[/]  layout {report.layout}, scale x{report.scale} (from {report.scale_source}), "
        f"pHash threshold {report.dedup_threshold} bits, {report.seconds:.1f} s"
    )
    out.print(_splits_table(report))
    out.print(_sizes_table(report))
    out.print(_baseline_table(report))
    out.print(f"[dim]{report.notes[0]}[/]")
    out.print(_problems_table(report))


def _splits_table(report: InspectReport) -> Table:
    table = Table(title="Splits", title_justify="left")
    for name in ("split", "pairs", "HR MP", "LR MP", "formats", "colour modes"):
        table.add_column(name, justify="right" if name in ("pairs", "HR MP", "LR MP") else "left")
    for s in report.splits:
        table.add_row(
            s.name,
            _pairs_cell(s.pairs, s.hr_files, s.lr_files),
            f"{s.hr_megapixels:.2f}",
            f"{s.lr_megapixels:.2f}",
            _counts(s.formats),
            _counts(s.modes),
        )
    return table


def _sizes_table(report: InspectReport) -> Table:
    table = Table(title="Image sizes (W x H; min / median / max by pixel count)", title_justify="left")
    for name in ("split", "HR min", "HR median", "HR max", "LR min", "LR median", "LR max"):
        table.add_column(name, justify="left" if name == "split" else "right")
    for s in report.splits:
        table.add_row(s.name, *_sizes(s.hr_size), *_sizes(s.lr_size))
    return table


def _baseline_table(report: InspectReport) -> Table:
    table = Table(title="How hard is this dataset: bicubic baseline", title_justify="left")
    for name in ("split", "pairs scored", "PSNR-Y (dB)", "SSIM-Y"):
        table.add_column(name, justify="left" if name == "split" else "right")
    for s in report.splits:
        table.add_row(s.name, str(s.baseline_pairs), _score(s.bicubic_psnr_y, 2), _score(s.bicubic_ssim_y, 4))
    return table


def _problems_table(report: InspectReport) -> Table | str:
    if not report.problems:
        return "[green]No problems found.[/]"
    counts = ", ".join(f"{kind} {n}" for kind, n in report.problem_counts().items())
    caption = None
    if len(report.problems) > _MAX_PROBLEM_ROWS:
        caption = f"first {_MAX_PROBLEM_ROWS} of {len(report.problems)} shown; all are in --json"
    table = Table(title=f"Problems: {counts}", title_justify="left", caption=caption, caption_justify="left")
    for name in ("kind", "files", "detail"):
        table.add_column(name, overflow="fold")
    for p in report.problems[:_MAX_PROBLEM_ROWS]:
        table.add_row(p.kind, "\n".join(p.files), p.detail)
    return table


def _pairs_cell(pairs: int, hr_files: int, lr_files: int) -> str:
    if pairs == hr_files == lr_files:
        return str(pairs)
    return f"{pairs} ({hr_files} HR, {lr_files} LR)"


def _sizes(summary: SizeSummary | None) -> list[str]:
    if summary is None:
        return ["-", "-", "-"]
    return [f"{w}x{h}" for w, h in (summary.min, summary.median, summary.max)]


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "-"


def _score(value: float, digits: int) -> str:
    if math.isnan(value):
        return "-"
    if math.isinf(value):
        return "inf"
    return f"{value:.{digits}f}"
