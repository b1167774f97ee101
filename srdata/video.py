"""Reading video for `srdata frames`: opening a file and its video stream with PyAV (FFmpeg's
libraries), exact frame times, and each decoded frame as 8-bit RGB with the right colour matrix
and range; plus the letterbox bars of `--crop auto`.

Colour: YUV is converted to RGB by FFmpeg's swscale with the matrix and range the stream is tagged
with (BT.709, BT.601, BT.2020, ...; limited or full range). Untagged streams get what players
assume: BT.709 when the frame is at least 1280 wide or more than 576 high, BT.601 below; limited
range unless the pixel format is a full-range (yuvj) one. Accurate rounding, full chroma
interpolation and bit-exact mode are on, so every machine writes the same bytes; 10-bit sources are
rounded to 8 bits by the same conversion. HDR transfer functions (PQ, HLG) are refused: they
would need tone mapping, not a matrix.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace, ColorTrc, Interpolation, VideoReformatter

from srdata.errors import Refused
from srdata.quality import grey_of

# --crop auto: a row or column belongs to a letterbox bar when no pixel of it is brighter than
# BAR_LEVEL (grey, 0-255) in any of BAR_SAMPLES frames spread over the video (keyframes, reached by
# seeking). Bars covering half the picture or more are taken for a dark video and not cropped.
BAR_LEVEL = 24
BAR_SAMPLES = 24

# AVColorSpace values (libavutil/pixfmt.h) srdata knows the matrix of; 2 = unspecified, 3 = reserved.
_TAGGED_MATRIX = {1: "BT.709", 4: "FCC", 5: "BT.601", 6: "BT.601", 7: "SMPTE 240M", 9: "BT.2020"}
_UNTAGGED = (2, 3)
_SWS_MATRIX = {
    "BT.709": Colorspace.ITU709, "BT.601": Colorspace.ITU601, "BT.2020": Colorspace.BT2020,
    "SMPTE 240M": Colorspace.SMPTE240M, "FCC": Colorspace.FCC,
}
_HDR_TRANSFER = {int(ColorTrc.SMPTE2084): "PQ (HDR10)", int(ColorTrc.ARIB_STD_B67): "HLG"}
_CONVERT_FLAGS = (
    Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT | Interpolation.BITEXACT
)


# ---------------------------------------------------------------------------------------------
# Colour


@dataclass(frozen=True)
class Colour:
    """How a decoded frame's samples become RGB."""

    matrix: str  # "BT.709", "BT.601", ..., or "RGB" for RGB sources
    full_range: bool
    guessed: bool  # matrix or range not tagged in the stream

    def describe(self) -> str:
        if self.matrix == "RGB":
            return "RGB source (no matrix)"
        return f"{self.matrix} {'full' if self.full_range else 'limited'} range ({'guessed' if self.guessed else 'tagged'})"


class VideoFailure(Refused):
    """A video that cannot be used; str() is the one-line reason shown and recorded."""


def frame_colour(frame: av.VideoFrame) -> Colour:
    """The matrix and range of a decoded frame, from its tags, else guessed as players do."""
    if frame.format.is_rgb:
        return Colour("RGB", True, False)
    transfer = _HDR_TRANSFER.get(int(frame.color_trc))
    if transfer:
        raise VideoFailure("unsupported", f"HDR video ({transfer} transfer); tone-map it to SDR first")
    space = int(frame.colorspace)
    guessed = space in _UNTAGGED
    if guessed:
        matrix = "BT.709" if frame.width >= 1280 or frame.height > 576 else "BT.601"
    elif space in _TAGGED_MATRIX:
        matrix = _TAGGED_MATRIX[space]
    else:
        raise VideoFailure("unsupported", f"colour matrix {space} (AVColorSpace) is not handled; re-encode as BT.709")
    tagged_range = int(frame.color_range)
    if tagged_range == ColorRange.JPEG:
        full = True
    elif tagged_range == ColorRange.MPEG:
        full = False
    else:
        full, guessed = frame.format.name.startswith("yuvj"), True
    return Colour(matrix, full, guessed)


def frame_rgb(frame: av.VideoFrame, colour: Colour, reformatter: VideoReformatter) -> np.ndarray:
    """The frame as a uint8 HxWx3 RGB array, converted with `colour` (see the module docstring)."""
    if colour.matrix == "RGB":
        converted = reformatter.reformat(frame, format="rgb24", interpolation=_CONVERT_FLAGS, threads=1)
    else:
        converted = reformatter.reformat(
            frame, format="rgb24", src_colorspace=_SWS_MATRIX[colour.matrix],
            src_color_range=ColorRange.JPEG if colour.full_range else ColorRange.MPEG,
            dst_color_range=ColorRange.JPEG, interpolation=_CONVERT_FLAGS, threads=1,
        )
    return converted.to_ndarray()


# ---------------------------------------------------------------------------------------------
# Reading a video


def open_video(path: Path):
    """(container, its first video stream); VideoFailure with a one-line reason otherwise."""
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        raise VideoFailure("unreadable", exc.strerror or str(exc)) from None
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        detail = getattr(exc, "strerror", None) or str(exc)
        raise VideoFailure("not a video", f"FFmpeg cannot read it: {detail}; or it is damaged/truncated") from None
    if not container.streams.video:
        container.close()
        raise VideoFailure("no video stream", "audio or data only")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    return container, stream


@dataclass(frozen=True)
class Clock:
    """Frame times in seconds since the stream's start, as exact fractions."""

    time_base: Fraction
    start_pts: int
    rate: Fraction  # average frame rate (for durations a frame does not carry)

    @staticmethod
    def of(stream) -> "Clock":
        rate = stream.guessed_rate or stream.average_rate
        return Clock(
            _fraction(stream.time_base), int(stream.start_time or 0),
            _fraction(rate) if rate else Fraction(25),
        )

    def seconds(self, pts: int) -> Fraction:
        return (pts - self.start_pts) * self.time_base

    def duration(self, frame: av.VideoFrame) -> Fraction:
        if frame.duration:
            return frame.duration * self.time_base
        return 1 / self.rate


def _fraction(rational) -> Fraction:
    return Fraction(int(rational.numerator), int(rational.denominator))


def expected_duration(container, stream, clock: Clock) -> Fraction | None:
    """Seconds from the stream's start to its end by the headers (the stream's duration, else
    the container's), or None when neither says."""
    if stream.duration:
        return stream.duration * clock.time_base
    if container.duration:
        container_start = Fraction(container.start_time or 0, 1_000_000)
        return container_start + Fraction(container.duration, 1_000_000) - clock.start_pts * clock.time_base
    return None


def find_bars(path: Path) -> tuple[int, int, int, int] | None:
    """--crop auto: the box (left, top, right, bottom) without letterbox bars, or None for none.

    Looks at BAR_SAMPLES keyframes spread over the video (seeking, so it costs a few decodes);
    see BAR_LEVEL.
    """
    container, stream = open_video(path)
    with container:
        clock = Clock.of(stream)
        length = expected_duration(container, stream, clock)
        rows = cols = None
        seen: set[int] = set()
        reformatter = VideoReformatter()
        positions = [Fraction(0)] if not length else [length * (2 * i + 1) / (2 * BAR_SAMPLES) for i in range(BAR_SAMPLES)]
        for position in positions:
            try:
                container.seek(clock.start_pts + int(position / clock.time_base), stream=stream)
                frame = next(container.decode(stream), None)
            except (av.error.FFmpegError, OSError):
                continue
            if frame is None or frame.pts in seen:
                continue
            seen.add(frame.pts)
            grey = grey_of(frame_rgb(frame, frame_colour(frame), reformatter))
            row_max, col_max = grey.max(axis=1), grey.max(axis=0)
            rows = row_max if rows is None else np.maximum(rows, row_max)
            cols = col_max if cols is None else np.maximum(cols, col_max)
    if rows is None:
        return None
    top, bottom = _bar_span(rows)
    left, right = _bar_span(cols)
    if (top, bottom, left, right) == (0, rows.size, 0, cols.size):
        return None
    return left, top, right, bottom


def _bar_span(maxima: np.ndarray) -> tuple[int, int]:
    """(first, end) of the rows (or columns) between dark bars at both ends."""
    bright = np.flatnonzero(maxima > BAR_LEVEL)
    if bright.size == 0:
        return 0, maxima.size
    first, end = int(bright[0]), int(bright[-1]) + 1
    if end - first <= maxima.size // 2:  # "bars" over half the picture: a dark video, not bars
        return 0, maxima.size
    return first, end
