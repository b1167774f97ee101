"""`srdata build`: raw images -> paired HR/LR dataset (thin layer over srdata.build)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from srdata.build import BuildReport, build_dataset
from srdata.build_options import GROUP_BY, BuildOptions, parse_range, parse_size
from srdata.commands.executors import cluster_option, open_executor
from srdata.imageio import DEFAULT_MAX_PIXELS
from srdata.dedup import DEFAULT_THRESHOLD
from srdata.degradations.pipeline import PRESETS
from srdata.resize import FILTERS
from srdata.folderlock import hold_folder
from srdata.layout import REJECTED, SPLITS
from srdata.split import parse_amount


def build_command(
    src: Optional[Path] = typer.Option(None, "--src", help="Folder of raw images (searched recursively)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Dataset folder to create or update."),
    scale: int = typer.Option(4, "--scale", help="Downscale factor, 2-8."),
    blur: float = typer.Option(0.0, "--blur", help="Gaussian blur sigma before downscaling (0 = none)."),
    down: str = typer.Option("bicubic", "--down", help=f"Downscale filter: {'|'.join(FILTERS)}."),
    hr_size: Optional[str] = typer.Option(None, "--hr-size", help="Resize every HR to WxH first."),
    hr_max_side: Optional[int] = typer.Option(None, "--hr-max-side", help="Shrink HRs whose longer side exceeds N."),
    hr_resize: str = typer.Option("nearest", "--hr-resize", help="Filter of the HR resize."),
    noise: Optional[str] = typer.Option(None, "--noise", help="Gaussian noise sigma (0-255 scale) or LO:HI."),
    jpeg: Optional[str] = typer.Option(None, "--jpeg", help="JPEG quality Q or LO:HI applied to the LR."),
    degrade: Optional[str] = typer.Option(
        None, "--degrade", help="LR pipeline instead of --blur/--down/--noise/--jpeg: a preset "
        f"({', '.join(PRESETS)}) or a pipeline .yaml file."),
    val: str = typer.Option("0.05", "--val", help="Validation share: fraction < 1 or a count."),
    test: str = typer.Option("0.05", "--test", help="Test share: fraction < 1 or a count."),
    dedup: bool = typer.Option(True, "--dedup/--no-dedup", help="Drop near-duplicate sources (pHash)."),
    dedup_threshold: int = typer.Option(DEFAULT_THRESHOLD, "--dedup-threshold", help="Max Hamming distance in bits."),
    group_by: str = typer.Option("video", "--group-by", help=f"Keep in one split all frames of a: {'|'.join(GROUP_BY)} (frames.jsonl of srdata frames)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the split and of random degradations."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Parallel workers (default: all cores)."),
    cluster: Optional[str] = cluster_option(),
    png_level: int = typer.Option(1, "--png-level", help="PNG compression level 0-9."),
    max_pixels: int = typer.Option(DEFAULT_MAX_PIXELS, "--max-pixels", help="Refuse sources with more pixels."),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 if any source was rejected."),
) -> None:
    """Build (or update) a paired HR/LR dataset from a folder of raw images."""
    opts = BuildOptions(
        src=src, out=out, scale=scale, blur=blur, down=down,
        hr_size=parse_size(hr_size) if hr_size is not None else None,
        hr_max_side=hr_max_side, hr_resize=hr_resize,
        noise=parse_range(noise, "--noise", float) if noise is not None else None,
        jpeg=parse_range(jpeg, "--jpeg", int) if jpeg is not None else None, degrade=degrade,
        val=parse_amount(val, "--val"), test=parse_amount(test, "--test"),
        dedup=dedup, dedup_threshold=dedup_threshold, group_by=group_by, seed=seed, workers=workers,
        png_level=png_level, max_pixels=max_pixels, strict=strict,
    )
    opts.validate()  # bad options fail before connecting to a cluster, creating or locking the folder
    with hold_folder(out, f"--out {out}", "srdata build"), open_executor(cluster, workers) as executor:
        report = build_dataset(opts, progress=True, executor=executor)
    console = Console()
    for note in report.notes:
        Console(stderr=True).print(f"srdata build: {note}", markup=False, highlight=False, soft_wrap=True)
    console.print(summary_table(report, group_by))
    if report.rejected:
        console.print(f"rejected sources and why: {report.out / REJECTED}")
    if strict and report.rejected:
        Console(stderr=True).print(
            f"srdata: --strict: {len(report.rejected)} source(s) rejected (see {report.out / REJECTED})"
        )
        raise typer.Exit(code=1)


def summary_table(report: BuildReport, group_by: str) -> Table:
    """What the build did: pairs per split, duplicates, rejections by reason, work and time."""
    table = Table(title=f"srdata build -> {report.out}", show_header=True)
    table.add_column("what")
    table.add_column("count", justify="right")
    for split in SPLITS:
        table.add_row(f"{split} pairs", str(report.counts[split]))
    table.add_row("duplicates dropped", str(report.counts["duplicates"]))
    for split, groups in report.split_groups.items():
        table.add_row(f"{split}: {group_by}s (frames.jsonl)", str(groups))
    for reason, n in sorted(report.rejected_by_reason.items()):
        table.add_row(f"rejected: {reason}", str(n))
    table.add_row("sources decoded", str(report.decoded))
    table.add_row("PNG files written", str(report.written))
    for worker, images in report.by_worker.items():
        table.add_row(f"images run by {worker}", str(images))
    if report.decoded and report.seconds > 0:
        table.add_row("time", f"{report.seconds:.1f} s ({report.decoded / report.seconds:.1f} sources/s)")
    else:
        table.add_row("time", f"{report.seconds:.2f} s (nothing needed decoding)")
    return table
