"""`sr-train predict`: upscale images or folders with a trained model and write PNGs.

What goes in comes out in kind: 8-bit stays 8-bit and 16-bit stays 16-bit (the model runs on
floats either way), grey stays grey (the model sees it as RGB, its output is turned back to one
channel), and an alpha channel is upscaled on its own (bicubic, or by the model as a grey image)
and kept. Any image size works in bounded memory: `sr_train.tiling.upscaled_tiles` runs the model
tile by tile and each tile is stored straight into the output array of the final dtype, so the
peak is about the output image (3 bytes per pixel for 8-bit RGB, 6 for 16-bit) plus one tile's
activations (see `upscale_image` for what alpha and --outscale add).

An input that cannot be read is skipped with a one-line reason and the others are still
written; the command then exits with code 1 so scripts notice. Bad options exit 2.
"""

from __future__ import annotations

import io
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from sr_train.engines import DEFAULT_ENGINE, ENGINES, Engine, open_engine
from sr_train.tiling import DEFAULT_PAD, upscale, upscaled_tiles
from srdata.atomic import write_bytes
from srdata.cliutil import progress_bar
from srdata.errors import UserError
from srdata.imageio import (DEFAULT_MAX_PIXELS, SOURCE_EXTENSIONS, TOO_MANY_PIXELS, RejectedImage, decode_as_stored,
                            scan_images)

ALPHA_MODES = ("bicubic", "model")
# srdata build's default --max-pixels: one decompression-bomb limit for every srkit reader.
MAX_PIXELS = DEFAULT_MAX_PIXELS


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


def collect_jobs(inputs: list[Path], out: Path) -> tuple[list[Job], list[tuple[Path, str]]]:
    """Files as given and image files under folders (recursive, sorted); output names end in .png.
    Also (path, reason) of what could not be used under the folders (`srdata.imageio.scan_images`:
    links are followed once; loops, dangling links and unreadable folders are reported).

    A file given directly keeps its own name; a folder's files keep their path below it. Files
    already under `out` are left out, so predicting into a subfolder of the input is safe;
    predicting into the input folder itself, or onto an input file, is refused.
    """
    jobs: list[Job] = []
    problems: list[tuple[Path, str]] = []
    out_resolved = out.resolve()
    for item in inputs:
        if item.is_file():
            jobs.append(Job(item, Path(item.name).with_suffix(".png")))
        elif item.is_dir():
            if item.resolve() == out_resolved:
                raise UserError(f"--out {out} is the input folder {item}: outputs would replace or mix with "
                                "the inputs; choose another --out")
            scan = scan_images(item, exclude=out)
            if not scan.files and not scan.problems:
                raise UserError(f"{item}: no image files ({', '.join(SOURCE_EXTENSIONS)}) in this folder")
            jobs.extend(Job(path, path.relative_to(item).with_suffix(".png")) for path in scan.files)
            problems.extend(scan.problems)
        else:
            raise UserError(f"{item}: no such file or folder: check the INPUT path")
    _refuse_name_clashes(jobs, out)
    return jobs, problems


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
    """(pixels as stored: uint8/uint16, 1/3/4 channels, BGR, upright; is the file grey), or SkipImage
    with the one-line reason (`srdata.imageio.decode_as_stored` decides what is readable)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SkipImage(f"cannot read ({exc.strerror or exc})") from None
    try:
        return decode_as_stored(data, max_pixels)
    except RejectedImage as exc:
        reason = str(exc) if exc.kind == TOO_MANY_PIXELS else f"not a readable image: {exc}"
        raise SkipImage(reason) from None


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
    (grey+alpha comes back as 2 channels).

    Each tile's result goes straight into the output array of the final dtype (3 bytes per
    output pixel for 8-bit RGB, 6 for 16-bit): the float image (12 bytes per pixel) never exists
    whole. `--outscale` is the exception: Lanczos needs the whole float image at the model's
    scale (12 bytes per model pixel, 4 more for alpha) and its float resize (12 per output pixel).
    """
    rgb, alpha = split_channels(img, grey)
    tile = engine.default_tile if opts.tile is None else opts.tile
    if opts.outscale is not None:
        return _upscale_and_resize(rgb, alpha, grey, img.dtype, engine, opts, tile, on_tile)
    size = (rgb.shape[0] * engine.scale, rgb.shape[1] * engine.scale)
    writer = SampleWriter(size, grey, alpha is not None, img.dtype)
    for rows, cols, result in upscaled_tiles(engine.model, rgb, engine.scale, tile, opts.tile_pad, on_tile):
        writer.put_colour(rows, cols, result)
    del rgb
    if alpha is not None:
        for rows, cols, values in upscaled_alpha(alpha, engine, opts, tile):
            writer.put_alpha(rows, cols, values)
    return writer.image()


def _upscale_and_resize(rgb, alpha, grey: bool, dtype, engine: Engine, opts: PredictOptions, tile: int, on_tile):
    """`--outscale`: the float result at the model's scale, Lanczos-resized whole, then converted."""
    size = outscale_size(rgb.shape[:2], opts.outscale)
    out = upscale(engine.model, rgb, engine.scale, tile, opts.tile_pad, on_tile=on_tile)
    del rgb
    writer = SampleWriter((size[1], size[0]), grey, alpha is not None, dtype)
    writer.put_colour(slice(None), slice(None), _lanczos(out, size))
    del out
    if alpha is not None:
        whole = np.empty((alpha.shape[0] * engine.scale, alpha.shape[1] * engine.scale), np.float32)
        for rows, cols, values in upscaled_alpha(alpha, engine, opts, tile):
            whole[rows, cols] = values
        writer.put_alpha(slice(None), slice(None), _lanczos(whole, size))
    return writer.image()


def _lanczos(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    resized = cv2.resize(img, size, interpolation=cv2.INTER_LANCZOS4)
    return np.clip(resized, 0, 1, out=resized)


def upscaled_alpha(alpha: np.ndarray, engine: Engine, opts: PredictOptions, tile: int):
    """Yield (rows, cols, float alpha) pieces at the model's scale: bicubic (cheap, soft; one piece)
    or tile by tile through the model as a grey image (the mean of its three output channels)."""
    if opts.alpha == "model":
        grey = np.repeat(alpha[:, :, None], 3, axis=2)
        for rows, cols, result in upscaled_tiles(engine.model, grey, engine.scale, tile, opts.tile_pad):
            yield rows, cols, result.mean(axis=2)
        return
    size = (alpha.shape[1] * engine.scale, alpha.shape[0] * engine.scale)
    resized = cv2.resize(alpha, size, interpolation=cv2.INTER_CUBIC)
    yield slice(None), slice(None), np.clip(resized, 0, 1, out=resized)


def outscale_size(shape: tuple[int, int], outscale: float) -> tuple[int, int]:
    """(width, height) = outscale x the input's, rounded half up, at least 1 px (cv2.resize's order)."""
    height, width = shape
    return max(int(width * outscale + 0.5), 1), max(int(height * outscale + 0.5), 1)


class SampleWriter:
    """The output image in its final dtype (grey, grey+alpha, BGR or BGRA), filled piece by piece
    from float [0, 1] RGB and alpha: each value is scaled to 255 or 65535 and rounded to the
    nearest integer (ties to even, np.rint).

    Pieces are converted in strips of STRIP_ROWS rows, so a whole-image piece (--outscale, bicubic
    alpha) adds strip-sized temporaries, not image-sized ones. Grey is OpenCV's RGB2GRAY, whose
    SIMD body and scalar tail round differently: it must see the same full-width rows as a whole
    image, so tiles of a grey image are gathered into one band of full-width float rows first.
    """

    STRIP_ROWS = 256

    def __init__(self, size: tuple[int, int], grey: bool, has_alpha: bool, dtype):
        self.pixels = np.empty((size[0], size[1], (1 if grey else 3) + int(has_alpha)), dtype)
        self.grey = grey
        self.peak = np.float32(65535.0 if dtype == np.uint16 else 255.0)
        self._band: np.ndarray | None = None

    def put_colour(self, rows: slice, cols: slice, rgb: np.ndarray) -> None:
        if not self.grey:
            self._store(rows, cols, slice(0, 3), rgb, lambda part: part[:, :, ::-1])
            return
        x0, x1, _ = cols.indices(self.pixels.shape[1])
        if x0 == 0 and x1 == self.pixels.shape[1]:
            self._store(rows, cols, 0, rgb, _rgb_to_grey)
            return
        if x0 == 0:
            self._band = np.empty((rgb.shape[0], self.pixels.shape[1], 3), np.float32)
        self._band[:, x0:x1] = rgb
        if x1 == self.pixels.shape[1]:
            band, self._band = self._band, None
            self._store(rows, slice(None), 0, band, _rgb_to_grey)

    def put_alpha(self, rows: slice, cols: slice, alpha: np.ndarray) -> None:
        self._store(rows, cols, -1, alpha, lambda part: part)

    def image(self) -> np.ndarray:
        return self.pixels[:, :, 0] if self.pixels.shape[2] == 1 else self.pixels

    def _store(self, rows: slice, cols: slice, channels, values: np.ndarray, convert) -> None:
        top = rows.indices(self.pixels.shape[0])[0]
        for start in range(0, values.shape[0], self.STRIP_ROWS):
            part = values[start : start + self.STRIP_ROWS]
            scaled = convert(part) * self.peak
            np.rint(scaled, out=scaled)
            np.clip(scaled, 0, self.peak, out=scaled)
            self.pixels[top + start : top + start + part.shape[0], cols, channels] = scaled


def _rgb_to_grey(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


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
    jobs, problems = collect_jobs(opts.inputs, opts.out)
    engine = open_engine(opts.weights, opts.engine)
    if engine.in_nc != 3:
        raise UserError(f"--weights {opts.weights}: the model takes {engine.in_nc} channels; predict needs an RGB model")
    warn = warn or (lambda message: print(f"sr-train predict: {message}", file=sys.stderr))
    report = PredictReport()
    for path, reason in problems:
        report.skipped.append((path, reason))
        warn(f"skipped {path}: {reason}")
    started = time.perf_counter()
    # stderr, like every other command's bar, so stdout holds only the result line
    with progress_bar("MP", progress, digits=3, count="{task.completed:.2f}/{task.total:.2f} output MP") as bar:
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
            with warnings.catch_warnings():  # big headers are judged against --max-pixels later
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(job.source) as img:  # reads the header only, not the whole file
                    width, height = img.size
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            continue  # unreadable or a bomb: counts 0 here, reported when the file's turn comes
        total += width * height
    return total


