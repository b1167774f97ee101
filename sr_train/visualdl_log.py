"""A run's VisualDL log (`log.visualdl: true`): RUN/visualdl/vdlrecords.srkit-NNNNNN.log, shown by
`visualdl --logdir RUN`.

Scalars are logged at the iteration they describe: `train/<term>` (every loss term, `loss`, `lr`),
`speed/<name>` (iterations/s, data and step milliseconds), `val/psnr`, `val/ssim`,
`val/bicubic_psnr`, `val/bicubic_ssim`; at every validation a few `val/<image>` pictures show a
crop of LR (enlarged, nearest) | SR | HR side by side.

Resuming without duplicate steps: VisualDL shows, per folder, only the record file whose name sorts
last, and record files are append-only. So every run segment starts a new file named after the
previous ones (`vdlrecords.srkit-000002.log` after `-000001`), copies into it the records of the
older files up to the iteration it resumes from (oldest file first, each tag and step once), then
deletes the older files. A kill at any moment leaves files whose union, cut back the same way at
the next resume, is the log; a torn last record (killed mid-write) is dropped. VisualDL writes the
file itself (appending, not through srdata.atomic): a failed write (disk full) is turned into the
same WriteError, naming the file and the errno.
"""

from __future__ import annotations

import re
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from sr_train.run_files import VISUALDL_DIR
from srdata.errors import UserError, WriteError
from srdata.jsonio import is_finite_number

FILE_NAME = "vdlrecords.srkit-{:06d}.log"
FILE_PATTERN = re.compile(r"^vdlrecords\.srkit-(\d{6})\.log$")
RECORD_FILES = "*vdlrecords*"  # VisualDL reads any file whose name contains this
META_TAG = "meta_data_tag"  # VisualDL's per-file metadata record
SPEED_KEYS = ("it_per_s", "data_ms", "step_ms")
IMAGES = 3  # validation images shown per validation
IMAGE_SIDE = 192  # HR pixels of the centre crop shown per image


def tag_of(key: str) -> str:
    """The VisualDL tag of a metrics.jsonl key: `val_psnr` -> `val/psnr`, `bicubic_psnr` ->
    `val/bicubic_psnr`, `it_per_s` -> `speed/it_per_s`, a loss term or `lr` -> `train/<key>`."""
    if key.startswith("val_"):
        return "val/" + key[len("val_"):]
    if key.startswith("bicubic_"):
        return "val/" + key
    return ("speed/" if key in SPEED_KEYS else "train/") + key


def record_files(folder: Path) -> list[Path]:
    """VisualDL record files in `folder`, oldest first (VisualDL shows the last one)."""
    return sorted(folder.glob(RECORD_FILES)) if folder.is_dir() else []


class VisualDLLog:
    """Writes one run segment's file; see the module docstring for what happens on resume."""

    def __init__(self, run_dir: Path, resumed_at: int):
        try:
            from visualdl.component.base_component import image, meta_data, scalar
            from visualdl.writer.record_writer import RecordFileWriter
        except ImportError:
            raise UserError("log.visualdl is true but VisualDL is not installed: pip install visualdl "
                            "(or set log.visualdl: false)") from None
        self._image, self._scalar = image, scalar
        folder = Path(run_dir) / VISUALDL_DIR
        folder.mkdir(parents=True, exist_ok=True)
        old = record_files(folder)
        numbers = [int(m.group(1)) for m in (FILE_PATTERN.match(p.name) for p in old) if m]
        self.path = folder / FILE_NAME.format(max(numbers, default=0) + 1)
        with self._writing():
            self.writer = RecordFileWriter(logdir=str(folder), filename=self.path.name)
            self.writer.add_record(meta_data(tag=META_TAG, walltime=_now_ms()))
            for record in kept_records(old, resumed_at):
                self.writer.add_record(record)
            self.writer.flush()
        for path in old:
            path.unlink(missing_ok=True)

    @contextmanager
    def _writing(self):
        try:
            yield
        except OSError as exc:
            raise WriteError.from_os_error(self.path, exc) from None

    def scalars(self, row: dict) -> None:
        """Every finite number of a metrics row, at the row's iteration."""
        now = _now_ms()
        with self._writing():
            for key, value in row.items():
                if key != "iter" and is_finite_number(value):
                    self.writer.add_record(self._scalar(tag=tag_of(key), value=value, step=row["iter"], walltime=now))

    def images(self, step: int, images: dict[str, np.ndarray]) -> None:
        """uint8 HWC RGB pictures under `val/<name>` at `step`."""
        now = _now_ms()
        with self._writing():
            for name, picture in images.items():
                self.writer.add_record(self._image(tag=f"val/{name}", image_array=picture.copy(), step=step,
                                                   walltime=now))
            self.writer.flush()

    def close(self) -> None:
        with self._writing():
            self.writer.close()


def kept_records(files: list[Path], resumed_at: int):
    """The records of `files` (oldest first) with a step <= resumed_at, each (tag, step) once,
    VisualDL's per-file metadata dropped; a file's unreadable tail ends that file."""
    from google.protobuf.message import DecodeError
    from visualdl.proto.record_pb2 import Record
    from visualdl.reader.record_reader import RecordReader

    seen: set[tuple[str, int]] = set()
    for path in files:
        for raw in RecordReader(str(path)).get_all():
            record = Record()
            try:
                record.ParseFromString(raw)
            except DecodeError:
                break
            if not record.values:
                break
            value = record.values[0]
            key = (value.tag, value.id)
            if value.tag == META_TAG or value.id > resumed_at or key in seen:
                continue
            seen.add(key)
            yield record


def val_picture(lr: np.ndarray, sr: np.ndarray, hr: np.ndarray, scale: int, side: int = IMAGE_SIDE) -> np.ndarray:
    """LR (nearest, enlarged to HR size) | SR | HR, a centre crop of at most `side` HR pixels each."""
    height, width = hr.shape[:2]
    crop_h, crop_w = (min(side, n) // scale * scale for n in (height, width))
    top, left = (height - crop_h) // 2 // scale * scale, (width - crop_w) // 2 // scale * scale
    window = (slice(top, top + crop_h), slice(left, left + crop_w))
    lr_crop = lr[top // scale:(top + crop_h) // scale, left // scale:(left + crop_w) // scale]
    enlarged = np.repeat(np.repeat(lr_crop, scale, axis=0), scale, axis=1)
    return np.concatenate([enlarged, sr[window], hr[window]], axis=1)


def _now_ms() -> int:
    return round(time.time() * 1000)
