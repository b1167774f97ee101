"""`srdata frames`: videos -> a clean, varied frame set (thin layer over srdata.frames)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from srdata.cliutil import progress_bar
from srdata.dedup import DEFAULT_THRESHOLD
from srdata.folderlock import hold_folder
from srdata.frames import (
    CROPS,
    DEFAULT_CUT_THRESHOLD,
    DEFAULT_MIN_GAP,
    DEFAULT_PER_SCENE,
    DEFAULT_SHARPNESS_FLOOR,
    DROP_REASONS,
    FramesOptions,
    FramesReport,
    extract_frames,
)
from srdata.layout import FRAMES_LIST


def frames_command(
    videos: Optional[List[Path]] = typer.Argument(None, help="Video files, or folders searched recursively for videos."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for the PNG frames, frames.jsonl and frames.json."),
    per_scene: int = typer.Option(DEFAULT_PER_SCENE, "--per-scene", help="Frames kept per scene at most, spread over it."),
    min_gap: float = typer.Option(DEFAULT_MIN_GAP, "--min-gap", help="Seconds between two frames kept in one scene, at least."),
    crop: str = typer.Option("none", "--crop", help=f"Letterbox bars: {'|'.join(CROPS)} (auto = find and remove them)."),
    sharpness_floor: float = typer.Option(DEFAULT_SHARPNESS_FLOOR, "--sharpness-floor", help="Drop frames whose edge sharpness is below this (0 = keep all)."),
    dedup_threshold: int = typer.Option(DEFAULT_THRESHOLD, "--dedup-threshold", help="Drop frames within this many pHash bits of a kept frame."),
    cut_threshold: float = typer.Option(DEFAULT_CUT_THRESHOLD, "--cut-threshold", help="PySceneDetect ContentDetector threshold (lower = more cuts)."),
) -> None:
    """Extract a clean, varied set of PNG frames from videos for `srdata build`."""
    opts = FramesOptions(
        videos=list(videos or []), out=out, per_scene=per_scene, min_gap=min_gap, crop=crop,
        sharpness_floor=sharpness_floor, dedup_threshold=dedup_threshold, cut_threshold=cut_threshold,
    )
    opts.validate()  # bad options fail before the folder is created or locked
    with hold_folder(out, f"--out {out}", "srdata frames"), \
            progress_bar("frames", Console(stderr=True).is_terminal) as bar:
        tasks = {}

        def on_progress(video, decoded: int, total: int | None) -> None:
            if video.name not in tasks:
                tasks[video.name] = bar.add_task(video.name, total=total)
            bar.update(tasks[video.name], completed=decoded, total=max(total or 0, decoded) or None)

        report = extract_frames(opts, on_progress)
    console = Console()
    console.print(_summary(report))
    for line in _colour_lines(report):
        console.print(line, markup=False, highlight=False)
    console.print(f"frames and why each was kept: {report.out / FRAMES_LIST}")
    if report.failed:
        errors = Console(stderr=True, highlight=False, soft_wrap=True)
        for video in report.failed:
            errors.print(f"srdata: {video.source}: {video.error}", markup=False)
        raise typer.Exit(code=1)


# Column headers of the drop reasons (short, so the table fits 80 columns).
_DROPPED = {"near_duplicate": "dup", "near_constant": "blank", "blurry": "blurry", "not_picked": "unpicked"}


def _summary(report: FramesReport) -> Table:
    table = Table(title=f"srdata frames -> {report.out}", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                  caption="dropped: dup (pHash near-duplicate), blank (near-constant), blurry (sharpness floor), "
                          "unpicked (between the picks); earlier = finished by an earlier run", caption_justify="left")
    columns = ["video", "status", "decoded", "scenes", "kept", *(_DROPPED[r] for r in DROP_REASONS)]
    for name in columns:
        text = name in ("video", "status")
        table.add_column(name, justify="left" if text else "right", overflow="fold", no_wrap=not text)
    totals = [0] * (4 + len(DROP_REASONS))
    for v in report.videos:
        if v.status == "failed":
            table.add_row(v.name, "[red]failed[/]", *["-"] * (len(columns) - 2))
            continue
        counts = [v.decoded, v.scenes, v.kept, *(v.dropped[r] for r in DROP_REASONS)]
        totals = [a + b for a, b in zip(totals, [1, *counts])]
        table.add_row(v.name, "done" if v.status == "done" else "earlier", *map(str, counts))
    if len(report.videos) > 1:
        table.add_row("total", f"{totals[0]} videos", *map(str, totals[1:]), style="bold")
    return table


def _colour_lines(report: FramesReport) -> list[str]:
    """How each video's frames were converted to RGB (and cropped)."""
    lines = []
    for v in report.videos:
        if v.colour:
            crop = f", letterbox cropped to {v.crop[2] - v.crop[0]}x{v.crop[3] - v.crop[1]}" if v.crop else ""
            lines.append(f"{v.name}: {v.colour}{crop}")
    return lines
