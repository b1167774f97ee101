"""`sr-train predict`: upscale images or folders with a trained model and write PNGs.

What goes in comes out in kind: 8-bit stays 8-bit and 16-bit stays 16-bit (the model runs on
floats either way), grey stays grey (the model sees it as RGB, its output is turned back to one
channel), and an alpha channel is upscaled on its own (bicubic, or by the model as a grey image)
and kept. Any image size works in bounded memory through `sr_train.tiling.upscale`.

An input that cannot be read is skipped with a one-line reason and the others are still
written; the command then exits with code 1 so scripts notice. Bad options exit 2.
"""

from __future__ import annotations

import io
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from sr_train.engines import DEFAULT_ENGINE, ENGINES, Engine, open_engine
from sr_train.tiling import DEFAULT_PAD, upscale
from srdata.atomic import write_bytes
from srdata.errors import UserError
from srdata.imageio import (
    DEFAULT_MAX_PIXELS,
    SOURCE_EXTENSIONS,
    RejectedImage,
    apply_orientation,
    check_pixels,
    decode_opened,
    find_images,
    open_header,
)

ALPHA_MODES = ("bicubic", "model")
# srdata build's default --max-pixels: one decompression-bomb limit for every srkit reader.
MAX_PIXELS = DEFAULT_MAX_PIXELS
GREY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L")
EXIF_ORIENTATION = 0x0112


@dataclass
class PredictOptions:
    """One field per `sr-train predict` option."""

    weights: Path
    inputs: list[Path]
    out: Path
    tile: int | None = None  # None: the engine's default (sr_train.engines: memory under 2 GB)
    tile_pad: int = DEFAULT_PAD
    outscale: float | None = None
    alpha: str = "bicubic"
    engine: str = DEFAULT_ENGINE
    max_pixels: int = MAX_PIXELS


@dataclass
class PredictReport:
    written: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    output_megapixels: float = 0.0
    seconds: float = 0.0


@dataclass(frozen=True)
class Job:
    """One input image and the PNG it becomes (its path relative to --out)."""

    source: Path
    relative: Path


class SkipImage(Exception):
    """An input that cannot be upscaled; the message is the one-line reason."""


def check_options(opts: PredictOptions) -> None:
    """UserError for every option that makes the whole run impossible (before loading anything)."""
    if opts.tile is not None and opts.tile < 0:
        raise UserError(f"--tile {opts.tile}: must be >= 0 (0 = whole image at once)")
    if opts.tile_pad < 0:
        raise UserError(f"--tile-pad {opts.tile_pad}: must be >= 0")
    if opts.outscale is not None and not (0 < opts.outscale <= 64):
        raise UserError(f"--outscale {opts.outscale}: must be > 0 and <= 64 (e.g. 2 for x2 from a x4 model)")
    if opts.max_pixels < 1:
        raise UserError(f"--max-pixels {opts.max_pixels}: must be 1 or more")
    if opts.alpha not in ALPHA_MODES:
        raise UserError(f"--alpha {opts.alpha!r}: use one of {', '.join(ALPHA_MODES)}")
    if opts.engine not in ENGINES:
        raise UserError(f"--engine {opts.engine!r}: use one of {', '.join(ENGINES)}")
    if not opts.inputs:
        raise UserError("no INPUT given: pass image files or folders")
    if opts.out.exists() and not opts.out.is_dir():
        raise UserError(f"--out {opts.out}: exists and is not a folder: choose a folder")


def collect_jobs(inputs: list[Path], out: Path) -> list[Job]:
    """Files as given and image files under folders (recursive, sorted); output names end in .png.

    A file given directly keeps its own name; a folder's files keep their path below it. Files
    already under `out` are left out, so predicting into a subfolder of the input is safe;
    predicting into the input folder itself, or onto an input file, is refused.
    """
    jobs: list[Job] = []
    out_resolved = out.resolve()
    for item in inputs:
        if item.is_file():
            jobs.append(Job(item, Path(item.name).with_suffix(".png")))
        elif item.is_dir():
            if item.resolve() == out_resolved:
                raise UserError(f"--out {out} is the input folder {item}: outputs would replace or mix with "
                                "the inputs; choose another --out")
            found = [Job(path, path.relative_to(item).with_suffix(".png")) for path in find_images(item, exclude=out)]
            if not found:
                raise UserError(f"{item}: no image files ({', '.join(SOURCE_EXTENSIONS)}) in this folder")
            jobs.extend(found)
        else:
            raise UserError(f"{item}: no such file or folder: check the INPUT path")
    _refuse_name_clashes(jobs, out)
    return jobs


def _refuse_name_clashes(jobs: list[Job], out: Path) -> None:
    seen: dict[Path, Path] = {}
    for job in jobs:
        if job.relative in seen:
            raise UserError(f"{seen[job.relative]} and {job.source} would both be written as {job.relative}: "
                            "rename one or predict them in separate runs")
        if (out / job.relative).resolve() == job.source.resolve():
            raise UserError(f"{job.source} would be overwritten by its own output: choose another --out")
        seen[job.relative] = job.source


def read_image(path: Path, max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray, bool]:
    """(pixels: uint8/uint16, 1/3/4 channels, BGR, upright; is the file grey), or SkipImage.

    srdata's reader checks the header and the pixel count before anything is decompressed.
    JPEG/MPO (8-bit, no alpha) then go through srdata's decoder: one decode, EXIF orientation
    applied, truncated files refused (libjpeg alone would return them with a grey bottom).
    Other formats are decoded unchanged by OpenCV, the one decoder here that keeps 16-bit
    colour and alpha; their EXIF orientation (which OpenCV ignores when reading unchanged) is
    applied as srdata build applies it. Greyness comes from the header: OpenCV turns grey+alpha
    into BGRA and srdata's decoder turns grey JPEGs into BGR.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SkipImage(f"cannot read ({exc.strerror or exc})") from None
    header = _checked_header(data, max_pixels)
    if header.format in ("JPEG", "MPO"):
        try:
            return decode_opened(header, data), header.mode in GREY_MODES
        except RejectedImage as exc:
            raise SkipImage(f"not a readable image: {exc}") from None
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise SkipImage(f"not a readable image: {header.format} data does not decode (corrupt or truncated)")
    if img.dtype not in (np.uint8, np.uint16):
        raise SkipImage(f"{img.dtype} samples are not supported: convert to 8- or 16-bit PNG")
    if img.ndim == 3 and img.shape[2] not in (1, 3, 4):
        raise SkipImage(f"{img.shape[2]} channels are not supported: use grey, RGB or RGBA")
    img = apply_orientation(img, int(header.getexif().get(EXIF_ORIENTATION, 1) or 1))
    return img, img.ndim == 2 or img.shape[2] == 1 or header.mode in GREY_MODES


def _checked_header(data: bytes, max_pixels: int):
    """srdata's parsed header (a lazy Pillow image) after its decompression-bomb check."""
    try:
        header = open_header(data)
    except RejectedImage as exc:
        raise SkipImage(f"not a readable image: {exc}") from None
    try:
        check_pixels(header.size, max_pixels)
    except RejectedImage as exc:
        raise SkipImage(str(exc)) from None
    return header


def split_channels(img: np.ndarray, grey: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """(RGB float32 in [0, 1], alpha float32 HW or None) from an OpenCV image (grey -> RGB)."""
    peak = 65535.0 if img.dtype == np.uint16 else 255.0
    data = img.astype(np.float32) / peak
    if data.ndim == 2:
        data = data[:, :, None]
    alpha = data[:, :, 3] if data.shape[2] == 4 else None
    if grey:
        return np.repeat(data[:, :, :1], 3, axis=2), alpha
    return cv2.cvtColor(data[:, :, :3], cv2.COLOR_BGR2RGB), alpha


def upscale_image(img: np.ndarray, grey: bool, engine: Engine, opts: PredictOptions, on_tile=None) -> np.ndarray:
    """Upscale an OpenCV image (uint8/uint16, grey/BGR/BGRA) and return one of the same kind
    (grey+alpha comes back as 2 channels)."""
    rgb, alpha = split_channels(img, grey)
    tile = engine.default_tile if opts.tile is None else opts.tile
    out = upscale(engine.model, rgb, engine.scale, tile, opts.tile_pad, on_tile=on_tile)
    out_alpha = None if alpha is None else upscale_alpha(alpha, engine, opts)
    if opts.outscale is not None:
        size = outscale_size(rgb.shape[:2], opts.outscale)
        out = np.clip(cv2.resize(out, size, interpolation=cv2.INTER_LANCZOS4), 0, 1)
        if out_alpha is not None:
            out_alpha = np.clip(cv2.resize(out_alpha, size, interpolation=cv2.INTER_LANCZOS4), 0, 1)
    return to_opencv(out, out_alpha, grey, img.dtype)


def upscale_alpha(alpha: np.ndarray, engine: Engine, opts: PredictOptions) -> np.ndarray:
    """The alpha channel at the model's scale: bicubic (cheap, soft) or run through the model as grey."""
    if opts.alpha == "model":
        grey = np.repeat(alpha[:, :, None], 3, axis=2)
        tile = engine.default_tile if opts.tile is None else opts.tile
        return upscale(engine.model, grey, engine.scale, tile, opts.tile_pad).mean(axis=2)
    size = (alpha.shape[1] * engine.scale, alpha.shape[0] * engine.scale)
    return np.clip(cv2.resize(alpha, size, interpolation=cv2.INTER_CUBIC), 0, 1)


def outscale_size(shape: tuple[int, int], outscale: float) -> tuple[int, int]:
    """(width, height) = outscale x the input's, rounded half up, at least 1 px (cv2.resize's order)."""
    height, width = shape
    return max(int(width * outscale + 0.5), 1), max(int(height * outscale + 0.5), 1)


def to_opencv(rgb: np.ndarray, alpha: np.ndarray | None, grey: bool, dtype) -> np.ndarray:
    """Float [0, 1] RGB (+ alpha) to an image of `dtype`, rounded: grey (+alpha), BGR or BGRA.

    Scales and rounds `rgb` in place: at 4x the result is the largest array of the whole run.
    """
    data = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if grey else rgb[:, :, ::-1]
    if alpha is not None:
        data = np.dstack([data, alpha])
    peak = 65535.0 if dtype == np.uint16 else 255.0
    data *= peak
    np.rint(data, out=data)
    np.clip(data, 0, peak, out=data)
    return np.ascontiguousarray(data.astype(dtype))


def write_png(path: Path, img: np.ndarray) -> None:
    """PNG through OpenCV (keeps 16 bits); grey+alpha, which OpenCV cannot write, as 8-bit LA through
    Pillow, or as RGBA with equal colour channels when 16-bit (Pillow has no 16-bit LA)."""
    if img.ndim == 3 and img.shape[2] == 2:
        if img.dtype == np.uint8:
            from PIL import Image

            buffer = io.BytesIO()
            Image.fromarray(img, "LA").save(buffer, format="PNG")
            write_bytes(path, buffer.getvalue())
            return
        img = np.dstack([img[:, :, 0]] * 3 + [img[:, :, 1]])
    ok, encoded = cv2.imencode(".png", img)
    if not ok:
        raise SkipImage("OpenCV could not encode the result as PNG")
    write_bytes(path, encoded.tobytes())


def predict(opts: PredictOptions, progress: bool = True, warn=None) -> PredictReport:
    """Upscale every input into `opts.out`; unreadable inputs are reported in `skipped`, not raised.

    `warn(message)` is called once per skipped input (default: a line on stderr).
    """
    check_options(opts)
    jobs = collect_jobs(opts.inputs, opts.out)
    engine = open_engine(opts.weights, opts.engine)
    if engine.in_nc != 3:
        raise UserError(f"--weights {opts.weights}: the model takes {engine.in_nc} channels; predict needs an RGB model")
    warn = warn or (lambda message: print(f"sr-train predict: {message}", file=sys.stderr))
    report = PredictReport()
    started = time.perf_counter()
    with _progress_bar(progress) as bar:
        task = bar.add_task("upscaling", total=max(_total_input_pixels(jobs), 1) * engine.scale**2 / 1e6)
        for job in jobs:
            try:
                img, grey = read_image(job.source, opts.max_pixels)
                out = upscale_image(img, grey, engine, opts,
                                    on_tile=lambda n: bar.advance(task, n * engine.scale**2 / 1e6))
                write_png(opts.out / job.relative, out)
            except SkipImage as exc:
                report.skipped.append((job.source, str(exc)))
                warn(f"skipped {job.source}: {exc}")
                continue
            report.written.append(opts.out / job.relative)
            report.output_megapixels += img.shape[0] * img.shape[1] * engine.scale**2 / 1e6
    report.seconds = time.perf_counter() - started
    return report


def _total_input_pixels(jobs: list[Job]) -> int:
    """Pixels of all inputs from their headers (for the progress bar's total; unreadable ones count 0)."""
    total = 0
    for job in jobs:
        try:
            width, height = open_header(job.source.read_bytes()).size
        except (OSError, RejectedImage):  # reported when the file's turn comes
            continue
        total += width * height
    return total


def _progress_bar(enabled: bool):
    """The bar goes to stderr, like every other command's, so stdout holds only the result line."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
    from rich.text import Text

    class MegapixelsPerSecond(ProgressColumn):
        """Average since the start: rich's own speed is a short-window estimate that jumps with tiles."""

        def render(self, task) -> Text:
            elapsed = task.elapsed or 0.0
            return Text(f"{task.completed / elapsed:.3f} MP/s" if elapsed > 0 and task.completed else "-- MP/s")

    return Progress(TextColumn("{task.description}"), BarColumn(),
                    TextColumn("{task.completed:.2f}/{task.total:.2f} output MP"), MegapixelsPerSecond(),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True), disable=not enabled,
                    transient=False)

