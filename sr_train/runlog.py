"""A training run's logs: RUN/metrics.jsonl (append-only, one JSON object per line), VisualDL
scalars (RUN/visualdl, when installed and `log.visualdl` is on) and the RUN/curves.png picture.

On resume the log is cut back to the resumed iteration, so a continued run never shows rows of
iterations it is about to redo.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

from PIL import Image, ImageDraw

from srdata.atomic import write_bytes, write_jsonl
from srdata.jsonio import jsonl_line, read_jsonl

METRICS = "metrics.jsonl"
CURVES = "curves.png"
VISUALDL_DIR = "visualdl"


def read_metrics(run_dir: Path) -> list[dict]:
    """Rows of RUN/metrics.jsonl; a torn last line (killed mid-write) is dropped."""
    return read_jsonl(run_dir / METRICS, skip_bad_lines=True)


def open_visualdl(run_dir: Path):
    """A VisualDL LogWriter on RUN/visualdl, or None when VisualDL is not installed."""
    try:
        from visualdl import LogWriter
    except ImportError:
        return None
    return LogWriter(logdir=str(run_dir / VISUALDL_DIR))


class RunLog:
    """The logs of one run (written by the main process only)."""

    def __init__(self, run_dir: Path, resumed_at: int | None, visualdl: bool):
        self.run_dir = run_dir
        self.history = [r for r in read_metrics(run_dir) if r.get("iter", 0) <= resumed_at] if resumed_at else []
        write_jsonl(run_dir / METRICS, self.history)  # the log, cut back to the resumed iteration
        self.file = open(run_dir / METRICS, "a", encoding="utf-8")
        self.visualdl = open_visualdl(run_dir) if visualdl else None

    def log(self, row: dict) -> None:
        """Append a row (flushed: the log is append-only, read back tolerantly) and send its numbers to
        VisualDL at the row's iteration."""
        self.history.append(row)
        self.file.write(jsonl_line(row))
        self.file.flush()
        if self.visualdl is not None:
            for key, value in row.items():
                if key != "iter" and value is not None:
                    self.visualdl.add_scalar(tag=key, value=value, step=row["iter"])

    def last_timing(self) -> dict | None:
        """The newest training row (with data_ms/step_ms), if any."""
        return next((r for r in reversed(self.history) if "data_ms" in r), None)

    def draw_curves(self) -> None:
        draw_curves(self.run_dir / CURVES, self.history)

    def close(self) -> None:
        self.file.close()
        if self.visualdl is not None:
            self.visualdl.close()


CURVE_SIZE = (900, 330)


def draw_curves(path: Path, history: list[dict]) -> None:
    """Training loss (log scale) and validation PSNR (with bicubic's) against the iteration, as a PNG."""
    width, height = CURVE_SIZE
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    losses = [(r["iter"], math.log10(r["loss"])) for r in history if r.get("loss", 0) > 0]
    psnrs = [(r["iter"], r["val_psnr"]) for r in history if isinstance(r.get("val_psnr"), (int, float))
             and math.isfinite(r["val_psnr"])]
    bicubic = [(r["iter"], r["bicubic_psnr"]) for r in history if isinstance(r.get("bicubic_psnr"), (int, float))
               and math.isfinite(r["bicubic_psnr"])]
    x_max = max([p[0] for p in losses + psnrs] or [1])
    panel_w = width // 2
    plot_panel(draw, (0, 0, panel_w, height), "training loss (log10)", [(losses, (200, 40, 40))], x_max)
    plot_panel(draw, (panel_w, 0, width, height), "val PSNR dB (grey: bicubic)",
               [(bicubic, (150, 150, 150)), (psnrs, (30, 90, 200))], x_max)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    write_bytes(path, buffer.getvalue())


def plot_panel(draw, box, title: str, series: list, x_max: int) -> None:
    """One framed plot: lines of (x, y) points scaled to the box, with min/max y and max x labels."""
    left, top, right, bottom = box[0] + 50, box[1] + 25, box[2] - 15, box[3] - 30
    draw.rectangle([left, top, right, bottom], outline=(0, 0, 0))
    draw.text((left, box[1] + 6), title, fill=(0, 0, 0))
    ys = [y for points, _ in series for _, y in points]
    if not ys:
        return
    y_lo, y_hi = min(ys), max(ys)
    if y_hi - y_lo < 1e-9:
        y_lo, y_hi = y_lo - 0.5, y_hi + 0.5
    draw.text((box[0] + 4, top), f"{y_hi:.2f}", fill=(0, 0, 0))
    draw.text((box[0] + 4, bottom - 10), f"{y_lo:.2f}", fill=(0, 0, 0))
    draw.text((right - 40, bottom + 8), f"{x_max}", fill=(0, 0, 0))
    draw.text((left, bottom + 8), "0", fill=(0, 0, 0))
    for points, colour in series:
        xy = [(left + (right - left) * x / x_max, bottom - (bottom - top) * (y - y_lo) / (y_hi - y_lo))
              for x, y in points]
        if len(xy) == 1:
            draw.ellipse([xy[0][0] - 2, xy[0][1] - 2, xy[0][0] + 2, xy[0][1] + 2], fill=colour)
        elif xy:
            draw.line(xy, fill=colour, width=2)
