"""A training run's logs: RUN/metrics.jsonl (append-only, one JSON object per line), the RUN/curves.png
picture (`sr_train.plots`, rewritten atomically at every validation) and, with `log.visualdl`, the
VisualDL log in RUN/visualdl (`sr_train.visualdl_log`).

On resume every log is cut back to the resumed iteration, so a continued run never shows rows of
iterations it is about to redo.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sr_train.plots import run_curves
from sr_train.run_files import CURVES, METRICS, read_metrics
from sr_train.visualdl_log import IMAGES, VisualDLLog, val_picture
from srdata.atomic import AppendFile, write_bytes, write_jsonl
from srdata.jsonio import jsonl_line


class RunLog:
    """The logs of one run (written by the main process only)."""

    def __init__(self, run_dir: Path, resumed_at: int | None, visualdl: bool):
        self.run_dir = run_dir
        self.history = [r for r in read_metrics(run_dir) if r.get("iter", 0) <= resumed_at] if resumed_at else []
        write_jsonl(run_dir / METRICS, self.history)  # the log, cut back to the resumed iteration
        self.visualdl = VisualDLLog(run_dir, resumed_at or 0) if visualdl else None
        self.file = AppendFile(run_dir / METRICS)
        self.val_images: dict[str, np.ndarray] = {}

    def log(self, row: dict) -> None:
        """Append a row (flushed: the log is append-only, read back tolerantly) and send its numbers to
        VisualDL at the row's iteration."""
        self.history.append(row)
        self.file.write(jsonl_line(row))
        if self.visualdl is not None:
            self.visualdl.scalars(row)

    def keep_val_image(self, pair, lr: np.ndarray, sr: np.ndarray, hr: np.ndarray, scale: int) -> None:
        """`sr_train.evaluate.score_model`'s per-image hook: keeps the first few LR | SR | HR pictures
        of a validation for VisualDL (nothing when VisualDL is off)."""
        if self.visualdl is not None and len(self.val_images) < IMAGES:
            self.val_images[pair.name] = val_picture(lr, sr, hr, scale)

    def end_validation(self, iteration: int) -> None:
        """After a validation's rows are logged: its pictures to VisualDL, curves.png redrawn."""
        if self.visualdl is not None:
            self.visualdl.images(iteration, self.val_images)
        self.val_images = {}
        write_bytes(self.run_dir / CURVES, run_curves(self.history, title=self.run_dir.name))

    def last_timing(self) -> dict | None:
        """The newest training row (with data_ms/step_ms), if any."""
        return next((r for r in reversed(self.history) if "data_ms" in r), None)

    def close(self) -> None:
        self.file.close()
        if self.visualdl is not None:
            self.visualdl.close()
