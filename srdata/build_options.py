"""`srdata build`'s options: one typed field per command-line option, checked before anything is
read or written, and the record of them that dataset.json keeps."""

from __future__ import annotations

import math
import os
import re
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path

from srdata.dedup import DEFAULT_THRESHOLD
from srdata.degradations.ops import MAX_NOISE_SIGMA, MAX_SIGMA
from srdata.degradations.pipeline import Pipeline, Record, load_pipeline, shorthand_pipeline, source_seed
from srdata.errors import UserError
from srdata.imageio import DEFAULT_MAX_PIXELS
from srdata.resize import FILTERS
from srdata.split import check_amounts

# --group-by: what must stay in one split. Frames listed in a frames.jsonl under --src (made by
# `srdata frames`) are grouped by their video or scene; every other image is its own group.
GROUP_BY = ("video", "scene", "image")


@dataclass
class BuildOptions:
    """One field per `srdata build` option (same names, underscores for dashes)."""

    src: Path | None = None
    out: Path | None = None
    scale: int = 4
    blur: float = 0.0
    down: str = "bicubic"
    hr_size: tuple[int, int] | None = None
    hr_max_side: int | None = None
    hr_resize: str = "nearest"
    noise: tuple[float, float] | None = None
    jpeg: tuple[int, int] | None = None
    degrade: str | None = None  # a pipeline (preset name or YAML file) instead of blur/down/noise/jpeg
    val: float | int = 0.05
    test: float | int = 0.05
    dedup: bool = True
    dedup_threshold: int = DEFAULT_THRESHOLD
    group_by: str = "video"
    seed: int = 0
    workers: int | None = None
    png_level: int = 1
    max_pixels: int = DEFAULT_MAX_PIXELS
    strict: bool = False

    def validate(self) -> None:
        """Refuse bad options with a one-line UserError, before anything is read or written."""
        if self.src is None:
            raise UserError("missing --src RAW: the folder of source images to build from")
        if self.out is None:
            raise UserError("missing --out DS: the folder to write the dataset to")
        if not Path(self.src).is_dir():
            raise UserError(f"--src {self.src}: not a folder; give the folder of source images")
        if Path(self.out).exists() and not Path(self.out).is_dir():
            raise UserError(f"--out {self.out}: exists and is not a folder; choose a folder path")
        if not os.access(_nearest_existing(Path(self.out)), os.W_OK):
            raise UserError(f"--out {self.out}: not writable; choose a folder you can write to")
        if Path(self.src).resolve() == Path(self.out).resolve():
            raise UserError(f"--out {self.out} is --src; write the dataset to another folder")
        if not 2 <= self.scale <= 8:
            raise UserError(f"--scale {self.scale}: must be between 2 and 8")
        if not (math.isfinite(self.blur) and 0 <= self.blur <= MAX_SIGMA):
            raise UserError(f"--blur {self.blur}: sigma must be from 0 (no blur) to {MAX_SIGMA} px")
        _check_choice("--down", self.down)
        _check_choice("--hr-resize", self.hr_resize)
        if self.hr_size is not None and self.hr_max_side is not None:
            raise UserError("--hr-size and --hr-max-side both given; use one of them")
        if self.hr_size is not None and (len(self.hr_size) != 2 or min(self.hr_size) < 1):
            raise UserError(f"--hr-size {self.hr_size}: width and height must be 1 or more")
        if self.hr_size is not None and self.hr_size[0] * self.hr_size[1] > self.max_pixels:
            raise UserError(f"--hr-size {self.hr_size[0]}x{self.hr_size[1]}: more pixels than --max-pixels "
                            f"{self.max_pixels}; choose a smaller size")
        if self.hr_max_side is not None and self.hr_max_side < 1:
            raise UserError(f"--hr-max-side {self.hr_max_side}: must be 1 or more")
        if self.noise is not None:
            lo, hi = self.noise
            if not (math.isfinite(lo) and math.isfinite(hi) and 0 <= lo <= hi <= MAX_NOISE_SIGMA):
                raise UserError(f"--noise {lo}:{hi}: need 0 <= LO <= HI <= {MAX_NOISE_SIGMA} (sigma on the 0-255 scale)")
        if self.jpeg is not None:
            lo, hi = self.jpeg
            if not 1 <= lo <= hi <= 100:
                raise UserError(f"--jpeg {lo}:{hi}: need 1 <= LO <= HI <= 100")
        check_amounts(self.val, self.test)
        if not 0 <= self.dedup_threshold <= 64:
            raise UserError(f"--dedup-threshold {self.dedup_threshold}: must be 0..64 bits")
        if self.group_by not in GROUP_BY:
            raise UserError(f"--group-by {self.group_by!r}: choose one of {', '.join(GROUP_BY)}")
        if self.workers is not None and self.workers < 1:
            raise UserError(f"--workers {self.workers}: must be 1 or more")
        if not 0 <= self.png_level <= 9:
            raise UserError(f"--png-level {self.png_level}: must be 0..9")
        if self.max_pixels < 1:
            raise UserError(f"--max-pixels {self.max_pixels}: must be 1 or more")
        shorthand = self.blur > 0 or self.down != "bicubic" or self.noise is not None or self.jpeg is not None
        if self.degrade is not None and shorthand:
            raise UserError(f"--degrade {self.degrade} replaces --blur/--down/--noise/--jpeg: give either "
                            "--degrade or those options")
        self.pipeline  # noqa: B018 - reads and checks the pipeline file now, before anything is written

    @cached_property
    def pipeline(self) -> Pipeline:
        """The LR pipeline: --degrade's, or the fixed one --blur/--down/--noise/--jpeg stand for.

        Read once: worker processes get the parsed pipeline with the options, not the file."""
        if self.degrade is not None:
            return load_pipeline(self.degrade)
        return shorthand_pipeline(self.blur, self.down, self.noise, self.jpeg)

    def draw(self, sha256: str) -> Record:
        """The LR record of the source with this content (from --seed and the content only)."""
        return self.pipeline.draw(source_seed(self.seed, sha256), self.scale)

    def settings(self) -> dict:
        """What dataset.json records: every option that can change a byte of the dataset."""
        keep = asdict(self)
        for name in ("out", "workers", "strict"):
            keep.pop(name)
        keep["src"] = str(self.src)
        for name in ("hr_size", "noise", "jpeg"):
            keep[name] = list(keep[name]) if keep[name] is not None else None
        keep["pipeline"] = {"name": self.pipeline.name, "origin": self.pipeline.origin,
                            "sha256": self.pipeline.sha256}
        return keep


def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_choice(option: str, value: str) -> None:
    if value not in FILTERS:
        raise UserError(f"{option} {value!r}: choose one of {', '.join(FILTERS)}")


def parse_size(text: str) -> tuple[int, int]:
    """'640x480' -> (640, 480) for --hr-size."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match or min(int(match[1]), int(match[2])) < 1:
        raise UserError(f"--hr-size {text!r}: give WIDTHxHEIGHT in pixels, e.g. 1920x1080")
    return int(match[1]), int(match[2])


def parse_range(text: str, option: str, kind: type) -> tuple:
    """'5' -> (5, 5); '2:10' -> (2, 10), as ints or floats."""
    parts = text.split(":")
    try:
        if len(parts) not in (1, 2):
            raise ValueError
        values = [kind(p) for p in parts]
    except ValueError:
        raise UserError(f"{option} {text!r}: give a value or a range LO:HI, e.g. {option} 5:15") from None
    return (values[0], values[-1])
