"""`srdata frames`: anime episodes -> a clean, varied set of PNG frames that `srdata build` takes.

Each video is decoded once with PyAV (FFmpeg's libraries), frame by frame in presentation order:

1. Every frame goes, shrunk to PySceneDetect's detection width, through PySceneDetect's
   ContentDetector (its default threshold and minimum scene length unless told otherwise), which
   reports the cuts. A scene runs from one cut to the next.
2. A bounded pool of full-size decoded frames (still YUV, nothing converted yet) is kept per
   scene: every frame at first, every 2nd once the pool is full, then every 4th, ... so the pool
   always spans the whole scene with at most POOL_SIZE frames.
3. When a scene ends, it is cut into --per-scene equal parts and each part keeps at most one frame:
   its pooled frames are tried from the part's middle outwards, skipping those closer than
   --min-gap to a frame already kept in the scene. A tried frame is converted to 8-bit RGB and
   dropped when it is near-constant (srdata.quality's rule, the one `srdata inspect` reports),
   below the sharpness floor (srdata.quality.edge_sharpness), or a near-duplicate (pHash within
   --dedup-threshold bits, srdata.dedup) of any frame kept so far in the whole output folder. At
   most TRIES_PER_PART frames are tried per part.
4. Kept frames are written as PNGs named `VIDEO__t000123.456.png` (seconds since the video's first
   frame, in milliseconds rounded down) and listed in frames.jsonl; frames.json records the
   settings and, per finished video, its size and mtime and its counts.

Every decoded frame ends up counted once: kept, or dropped as near_duplicate, near_constant,
blurry (tried and refused) or not_picked (never tried: between the picks, or thinned out of the
pool).

Colour: each decoded frame becomes 8-bit RGB with the stream's matrix and range (srdata.video).

Re-runs skip videos finished before with the same size and mtime; a video is finished only once
its frames and the lists naming them are written (every file atomically), so a killed run
redoes just the video it was in, with the same result. Frames are deduplicated against every frame
already in the folder, so a video added later never changes the frames of earlier ones; within
one run videos go in name order.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import re
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable

import av
import cv2
import numpy as np
from av.video.reformatter import Interpolation, VideoReformatter
from scenedetect import ContentDetector
from scenedetect.common import FrameTimecode, Timecode
from scenedetect.scene_manager import DEFAULT_MIN_WIDTH

import srdata
from srdata.atomic import is_temp_name, write_bytes, write_json, write_jsonl
from srdata.dedup import DEFAULT_THRESHOLD, hamming_distances, hex_to_u64, phash_hex, phash_u64
from srdata.errors import UserError
from srdata.imageio import encode_png, find_files
from srdata.jsonio import read_jsonl
from srdata.layout import FRAMES_LIST, FRAMES_STATE, flat_name
from srdata.quality import edge_sharpness, grey_of, is_near_constant, level_spread
from srdata.video import Clock, Colour, VideoFailure, expected_duration, find_bars, frame_colour, frame_rgb, open_video

# Files found in folders given as inputs (any case); files named directly may be anything FFmpeg reads.
VIDEO_EXTENSIONS = (
    ".mkv", ".mp4", ".m4v", ".webm", ".avi", ".mov", ".ts", ".m2ts", ".mts", ".flv", ".wmv",
    ".mpg", ".mpeg", ".ogv",
)
STATE_FORMAT = "srkit-frames"

DEFAULT_PER_SCENE = 3
DEFAULT_MIN_GAP = 0.5
# PySceneDetect's own defaults, read from it (one home for each).
DEFAULT_CUT_THRESHOLD = float(inspect.signature(ContentDetector).parameters["threshold"].default)
MIN_SCENE_FRAMES = int(inspect.signature(ContentDetector).parameters["min_scene_len"].default)
# Measured by scripts/measure_sharpness_floor.py on the 164 cartoons of the development set: every
# original (lowest 0.451) and every x264 CRF 20 round trip (lowest 0.436) stays above, as do 99%
# of 1.5x enlargements; below fall 13% of 2x enlargements, 74% of Gaussian blurs of sigma 1, all of
# sigma >= 1.5, 98% of 5-pixel and 99% of 9- and 15-pixel motion blurs.
DEFAULT_SHARPNESS_FLOOR = 0.42
CROPS = ("none", "auto")

POOL_SIZE = 32  # full-size frames held per scene (about 100 MB at 1080p)
TRIES_PER_PART = 4  # frames examined per part of a scene before the part is given up
PNG_LEVEL = 1  # zlib level of the frame PNGs (as srdata build's default), with imageio's fast filters
PNG_QUEUE = 4  # kept frames waiting for the PNG writer thread, at most
# A video whose last frame ends more than this before its header's duration is truncated.
TRUNCATION_TOLERANCE = 1.0
DROP_REASONS = ("near_duplicate", "near_constant", "blurry", "not_picked")
_FRAME_FILE = re.compile(r"^(?P<video>.+)__t\d{6,}\.\d{3}\.png$")

# ---------------------------------------------------------------------------------------------
# Options and inputs


@dataclass
class FramesOptions:
    """One field per `srdata frames` option (same names, underscores for dashes)."""

    videos: list[Path] = field(default_factory=list)
    out: Path | None = None
    per_scene: int = DEFAULT_PER_SCENE
    min_gap: float = DEFAULT_MIN_GAP
    crop: str = "none"
    sharpness_floor: float = DEFAULT_SHARPNESS_FLOOR
    dedup_threshold: int = DEFAULT_THRESHOLD
    cut_threshold: float = DEFAULT_CUT_THRESHOLD

    def validate(self) -> None:
        """Refuse bad options with a one-line UserError, before anything is read or written."""
        if not self.videos:
            raise UserError("no VIDEOS given: name video files or folders of them")
        if self.out is None:
            raise UserError("missing --out FOLDER: where the frames are written")
        if Path(self.out).exists() and not Path(self.out).is_dir():
            raise UserError(f"--out {self.out}: exists and is not a folder; choose a folder path")
        if self.per_scene < 1:
            raise UserError(f"--per-scene {self.per_scene}: keep at least 1 frame per scene")
        if not (math.isfinite(self.min_gap) and self.min_gap >= 0.001):
            raise UserError(f"--min-gap {self.min_gap}: give seconds, at least 0.001 (frame names count milliseconds)")
        if self.crop not in CROPS:
            raise UserError(f"--crop {self.crop!r}: choose one of {', '.join(CROPS)}")
        if not (math.isfinite(self.sharpness_floor) and 0 <= self.sharpness_floor <= 1):
            raise UserError(f"--sharpness-floor {self.sharpness_floor}: must be between 0 (keep all) and 1")
        if not 0 <= self.dedup_threshold <= 64:
            raise UserError(f"--dedup-threshold {self.dedup_threshold}: must be 0..64 bits")
        if not (math.isfinite(self.cut_threshold) and self.cut_threshold > 0):
            raise UserError(f"--cut-threshold {self.cut_threshold}: must be above 0")

    def settings(self) -> dict:
        """What frames.json records: every option that changes which frames are kept."""
        return {
            "per_scene": self.per_scene, "min_gap": self.min_gap, "crop": self.crop,
            "sharpness_floor": self.sharpness_floor, "dedup_threshold": self.dedup_threshold,
            "cut_threshold": self.cut_threshold,
        }


@dataclass(frozen=True)
class Video:
    name: str  # VIDEO in the frame names
    path: Path


def find_videos(inputs: list[Path], out: Path | None = None) -> list[Video]:
    """The videos named by `inputs`, sorted by name.

    A file is taken as it is, named by its stem; a folder is searched recursively for
    VIDEO_EXTENSIONS and each video is named by its path inside the folder (`season1/ep01.mkv`
    -> `season1__ep01`). A missing input, an empty folder or two videos with one name is a
    UserError: names must stay stable, so srdata never invents suffixes.
    """
    found: dict[str, list[Path]] = {}
    for given in inputs:
        path = Path(given)
        if path.is_dir():
            files = find_files(path, VIDEO_EXTENSIONS, exclude=out)
            if not files:
                raise UserError(f"{path}: no videos found (looked for {', '.join(VIDEO_EXTENSIONS)} in all subfolders)")
            for file in files:
                found.setdefault(flat_name(file.relative_to(path).as_posix()), []).append(file)
        elif path.exists():
            found.setdefault(path.stem, []).append(path)
        else:
            raise UserError(f"{path}: no such file or folder")
    clashes = {name: paths for name, paths in found.items() if len(set(paths)) > 1}
    if clashes:
        name, paths = sorted(clashes.items())[0]
        raise UserError(
            f"{' and '.join(str(p) for p in sorted(set(paths)))} would both be named {name!r} in frame "
            "names; rename one, or give their common parent folder"
        )
    return [Video(name, paths[0]) for name, paths in sorted(found.items())]


def frame_name(video: str, seconds: Fraction) -> str:
    """`VIDEO__t000123.456.png`: the frame's time in milliseconds, rounded down (exact)."""
    ms = math.floor(seconds * 1000)
    return f"{video}__t{ms // 1000:06d}.{ms % 1000:03d}.png"


# ---------------------------------------------------------------------------------------------
# Choosing frames


class KeptHashes:
    """pHashes of every frame kept in the output folder, for the near-duplicate check."""

    def __init__(self, hashes=()):
        self._values = np.zeros(max(64, len(hashes)), np.uint64)
        self._count = 0
        for h in hashes:
            self.add(h)

    def add(self, h: int) -> None:
        if self._count == self._values.size:
            self._values = np.concatenate([self._values, np.zeros_like(self._values)])
        self._values[self._count] = np.uint64(h)
        self._count += 1

    def __len__(self) -> int:
        return self._count

    def truncate(self, count: int) -> None:
        """Forget every hash added after the first `count` (those of a video that failed)."""
        self._count = min(self._count, count)

    def nearest(self, h: int) -> int | None:
        """Bits to the closest kept hash, or None when nothing is kept yet."""
        if not self._count:
            return None
        return int(hamming_distances(self._values[: self._count], h).min())


@dataclass
class _Pooled:
    index: int  # decode order = presentation order
    pts: int
    time: Fraction
    frame: av.VideoFrame
    position: int = 0  # order among the frames of its scene


@dataclass
class _Scene:
    number: int
    start: Fraction
    pool: list[_Pooled] = field(default_factory=list)
    step: int = 1
    admitted: int = 0

    def admit(self, item: _Pooled) -> None:
        """Pool every `step`-th frame; halve the pool (doubling the step) when it is full."""
        item.position = self.admitted
        self.admitted += 1
        if item.position % self.step:
            return
        self.pool.append(item)
        if len(self.pool) > POOL_SIZE:
            self.step *= 2
            self.pool = [p for p in self.pool if p.position % self.step == 0]


@dataclass
class VideoResult:
    """What one video gave: its frame rows (for frames.jsonl), counts and facts."""

    rows: list[dict]
    decoded: int
    scenes: int
    cuts: list[float]  # seconds at which PySceneDetect found a cut (scene starts after the first)
    dropped: dict[str, int]
    colour: str
    crop: list[int] | None
    size: list[int]
    duration: float


class _PngWriter:
    """Encodes and writes frame PNGs on one thread, beside the decoding (OpenCV's encoder and file
    writes release the GIL). Leaving the `with` block waits for every file; a failed write is a
    UserError naming the file."""

    def __init__(self):
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._pending: deque[Future] = deque()

    def submit(self, path: Path, rgb: np.ndarray) -> None:
        while len(self._pending) >= PNG_QUEUE:  # bounded memory when the encoder lags behind
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(_write_png, path, rgb))

    def __enter__(self) -> "_PngWriter":
        return self

    def __exit__(self, kind, error, trace) -> None:
        self._pool.shutdown(wait=True)
        if kind is None:
            for write in self._pending:
                write.result()


def _write_png(path: Path, rgb: np.ndarray) -> None:
    write_bytes(path, encode_png(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), PNG_LEVEL, None, fast=True), fsync=False)


class _Chooser:
    """Picks the frames of one video while it is decoded (see the module docstring)."""

    def __init__(self, video: Video, opts: FramesOptions, kept: KeptHashes, writer: _PngWriter, out: Path,
                 crop: tuple[int, int, int, int] | None):
        self.video, self.opts, self.kept, self.writer, self.out, self.crop = video, opts, kept, writer, out, crop
        self.min_gap = Fraction(str(opts.min_gap))
        self.rows: list[dict] = []
        self.dropped = dict.fromkeys(DROP_REASONS, 0)
        self.scene: _Scene | None = None
        self.starts: list[Fraction] = []  # one per scene
        self.cuts: deque[Fraction] = deque()
        self.reformatter = VideoReformatter()
        self.colour: Colour | None = None  # set from the first decoded frame
        self.names: set[str] = set()

    def cut(self, at: Fraction) -> None:
        """A scene starts at `at` (cuts arrive in order, before any frame at or after `at` is
        admitted: see the wait in read_video)."""
        self.cuts.append(at)

    def admit(self, item: _Pooled) -> None:
        """The next frame, in presentation order."""
        while self.cuts and self.cuts[0] <= item.time:
            at = self.cuts.popleft()
            if self.scene is not None:
                self._finish(at)
                self._start(at)
        if self.scene is None:
            self._start(item.time)
        self.scene.admit(item)

    def finish(self, end: Fraction) -> None:
        if self.scene is not None:
            self._finish(end)

    def _start(self, at: Fraction) -> None:
        self.scene = _Scene(len(self.starts), at)
        self.starts.append(at)

    def _finish(self, end: Fraction) -> None:
        """Pick up to --per-scene frames of the current scene, which ends at `end`."""
        scene, parts = self.scene, self.opts.per_scene
        length = end - scene.start
        picks: list[_Pooled] = []
        for part in range(parts):
            low, high = scene.start + length * part / parts, scene.start + length * (part + 1) / parts
            middle = (low + high) / 2
            candidates = sorted((p for p in scene.pool if low <= p.time < high),
                                key=lambda p: (abs(p.time - middle), p.time))
            tries = 0
            for item in candidates:
                if any(abs(item.time - p.time) < self.min_gap for p in picks):
                    continue
                if tries == TRIES_PER_PART:
                    break
                tries += 1
                if self._try(item, scene, end, part):
                    picks.append(item)
                    break
        scene.pool = []

    def _try(self, item: _Pooled, scene: _Scene, end: Fraction, part: int) -> bool:
        """Examine a frame; keep it (write its PNG, record it) or count why it is dropped."""
        rgb = frame_rgb(item.frame, self.colour, self.reformatter)
        if self.crop is not None:
            left, top, right, bottom = self.crop
            rgb = np.ascontiguousarray(rgb[top:bottom, left:right])
        grey = grey_of(rgb)
        spread = level_spread(grey)
        if is_near_constant(spread):
            self.dropped["near_constant"] += 1
            return False
        sharpness = edge_sharpness(grey)
        if sharpness < self.opts.sharpness_floor:
            self.dropped["blurry"] += 1
            return False
        h = phash_u64(rgb)
        nearest = self.kept.nearest(h)
        if nearest is not None and nearest <= self.opts.dedup_threshold:
            self.dropped["near_duplicate"] += 1
            return False
        name = frame_name(self.video.name, item.time)
        if name in self.names:
            return False  # only with broken timestamps: two frames in one millisecond
        self.names.add(name)
        self.writer.submit(self.out / name, rgb)
        self.kept.add(h)
        self.rows.append({
            "file": name, "video": self.video.name, "time": round(float(item.time), 6),
            "pts": item.pts, "frame_index": item.index, "scene": scene.number, "phash": phash_hex(h),
            "why": {
                "part": part + 1, "parts": self.opts.per_scene,
                "scene_start": round(float(scene.start), 6), "scene_end": round(float(end), 6),
                "grey_spread": spread, "sharpness": round(sharpness, 4), "nearest_kept_bits": nearest,
            },
        })
        return True


def read_video(video: Video, opts: FramesOptions, kept: KeptHashes, out: Path,
               on_progress: Callable[[int, int | None], None] | None = None) -> VideoResult:
    """Decode one video and write the frames it keeps into `out`; VideoFailure when it cannot be
    used (the caller removes what it wrote by then)."""
    crop = find_bars(video.path) if opts.crop == "auto" else None
    container, stream = open_video(video.path)
    with container, _PngWriter() as writer:
        clock = Clock.of(stream)
        length = expected_duration(container, stream, clock)
        total = stream.frames or (round(float(length * clock.rate)) if length else None)
        chooser = _Chooser(video, opts, kept, writer, out, crop)
        detector = ContentDetector(threshold=opts.cut_threshold)
        lag: deque[_Pooled] = deque()
        # Frames wait before joining a scene's pool until every cut before them is known: the
        # detector reports a cut at most event_buffer_length frames after it happened, counted at
        # the stream's frame rate (a wait in time, so variable frame rates are covered too).
        wait = Fraction(detector.event_buffer_length + 2) / clock.rate
        small = VideoReformatter()
        decoded, last, size = 0, None, None
        try:
            for frame in container.decode(stream):
                if frame.pts is None:
                    raise VideoFailure("unsupported", f"frame {decoded} has no timestamp")
                when = clock.seconds(frame.pts)
                if size is None:
                    size = [frame.width, frame.height]
                    chooser.colour = frame_colour(frame)
                    # PySceneDetect's detection size; kept if the picture size changes later
                    thumb_width = min(frame.width, DEFAULT_MIN_WIDTH)
                    thumb_height = max(1, round(frame.height * thumb_width / frame.width))
                thumb = small.reformat(frame, thumb_width, thumb_height, "bgr24",
                                       interpolation=Interpolation.AREA, threads=1)
                stamp = FrameTimecode(Timecode(frame.pts, clock.time_base), fps=clock.rate)
                for cut in detector.process_frame(stamp, thumb.to_ndarray()):
                    chooser.cut(clock.seconds(cut.pts))
                if when >= 0:
                    lag.append(_Pooled(decoded, frame.pts, when, frame))
                decoded += 1
                last = (frame, when, stamp)
                while lag and when - lag[0].time > wait:
                    chooser.admit(lag.popleft())
                if on_progress is not None:
                    on_progress(decoded, total)
        except av.error.FFmpegError as exc:
            at = f" at {float(last[1]):.3f} s" if last else ""
            raise VideoFailure("corrupt", f"decoding failed{at}: {exc}") from None
        if last is None:
            raise VideoFailure("no frames", "the video stream decodes to nothing")
        frame, when, stamp = last
        for cut in detector.post_process(stamp):
            chooser.cut(clock.seconds(cut.pts))
        while lag:
            chooser.admit(lag.popleft())
        end = when + clock.duration(frame)
        if length is not None and end < length - TRUNCATION_TOLERANCE:
            raise VideoFailure("truncated", f"the video ends at {float(end):.2f} s of the {float(length):.2f} s its header gives")
        chooser.finish(end)
    dropped = dict(chooser.dropped)
    dropped["not_picked"] = decoded - len(chooser.rows) - sum(dropped.values())
    return VideoResult(
        rows=chooser.rows, decoded=decoded, scenes=len(chooser.starts),
        cuts=[round(float(t), 6) for t in chooser.starts[1:]], dropped=dropped,
        colour=chooser.colour.describe(), crop=list(crop) if crop else None, size=size,
        duration=round(float(end), 6),
    )


# ---------------------------------------------------------------------------------------------
# The output folder


@dataclass
class VideoReport:
    """One line of the summary: a video done now, done before (skipped) or failed."""

    name: str
    source: str
    status: str  # "done" | "skipped" | "failed"
    decoded: int = 0
    scenes: int = 0
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROP_REASONS, 0))
    colour: str | None = None
    crop: list[int] | None = None
    error: str | None = None
    seconds: float = 0.0


@dataclass
class FramesReport:
    out: Path
    videos: list[VideoReport]

    @property
    def failed(self) -> list[VideoReport]:
        return [v for v in self.videos if v.status == "failed"]


@dataclass
class _State:
    """frames.json (settings, finished videos) and frames.jsonl (their frames), as read."""

    settings: dict | None = None
    videos: dict[str, dict] = field(default_factory=dict)
    rows: dict[str, list[dict]] = field(default_factory=dict)


def load_state(out: Path) -> _State:
    """The folder's frames.json and frames.jsonl; rows of videos not finished are left out."""
    state_path, list_path = out / FRAMES_STATE, out / FRAMES_LIST
    if not state_path.exists():
        return _State()
    try:
        meta = json.loads(state_path.read_text())
        if meta.get("format") != STATE_FORMAT:
            raise ValueError(f"format is {meta.get('format')!r}, not {STATE_FORMAT!r}")
        state = _State(meta["settings"], dict(meta["videos"]))
        for row in read_jsonl(list_path):
            if row["video"] in state.videos:
                hex_to_u64(row["phash"])
                state.rows.setdefault(row["video"], []).append(row)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UserError(
            f"{state_path}: unreadable ({exc}); delete {FRAMES_STATE} and {FRAMES_LIST} there to start over"
        ) from None
    return state


def _save_state(out: Path, state: _State) -> None:
    """frames.jsonl, then frames.json (which marks videos finished), each atomically."""
    if hasattr(os, "sync"):
        os.sync()  # the frames' PNGs (written without fsync) reach the disk before the lists
    rows = [row for name in sorted(state.rows) for row in sorted(state.rows[name], key=lambda r: r["time"])]
    write_jsonl(out / FRAMES_LIST, rows)
    write_json(out / FRAMES_STATE, {
        "format": STATE_FORMAT, "version": srdata.__version__, "settings": state.settings,
        "videos": {name: state.videos[name] for name in sorted(state.videos)},
    })


def _settings_differ(recorded: dict, wanted: dict) -> str:
    changed = [f"--{k.replace('_', '-')} {recorded.get(k)} (now {v})" for k, v in wanted.items() if recorded.get(k) != v]
    return ", ".join(changed)


def _remove_frames(out: Path, video: str) -> None:
    """Delete every frame file of this video (temp files are gone: extract_frames removes them first)."""
    for entry in os.listdir(out):
        match = _FRAME_FILE.match(entry)
        if match and match["video"] == video:
            (out / entry).unlink(missing_ok=True)


def extract_frames(
    opts: FramesOptions,
    on_progress: Callable[[Video, int, int | None], None] | None = None,
) -> FramesReport:
    """Run `srdata frames`: read every video not finished before, write its frames, update the lists."""
    opts.validate()
    out = Path(opts.out)
    videos = find_videos(opts.videos, out)
    state = load_state(out)
    if state.settings is not None and state.settings != opts.settings():
        raise UserError(
            f"--out {out} holds frames made with other settings: {_settings_differ(state.settings, opts.settings())}; "
            "use the same options or a new --out folder"
        )
    state.settings = opts.settings()
    out.mkdir(parents=True, exist_ok=True)
    for entry in os.listdir(out):  # temp files of a killed run (frames, lists): this run holds the folder
        if is_temp_name(entry):
            (out / entry).unlink(missing_ok=True)

    todo, reports = [], {}
    for video in videos:
        try:
            stat = video.path.stat()
        except OSError as exc:
            reports[video.name] = VideoReport(video.name, str(video.path), "failed", error=f"unreadable ({exc.strerror or exc})")
            continue
        record = state.videos.get(video.name)
        if record and (record["bytes"], record["mtime_ns"]) == (stat.st_size, stat.st_mtime_ns):
            reports[video.name] = VideoReport(
                video.name, str(video.path), "skipped", record["decoded"], record["scenes"], record["kept"],
                dict(record["dropped"]), record["colour"], record["crop"],
            )
        else:
            todo.append((video, stat))
    redo = {video.name for video, _ in todo}
    kept = KeptHashes([hex_to_u64(row["phash"]) for name, rows in sorted(state.rows.items())
                       if name not in redo for row in rows])

    for video, stat in todo:
        started = time.perf_counter()
        if video.name in state.videos:  # changed since it was done: its old frames go first
            del state.videos[video.name]
            state.rows.pop(video.name, None)
            _save_state(out, state)
        _remove_frames(out, video.name)  # left by a run killed in this video
        known = len(kept)
        try:
            result = read_video(video, opts, kept, out,
                                None if on_progress is None else lambda done, total, v=video: on_progress(v, done, total))
        except VideoFailure as exc:
            _remove_frames(out, video.name)
            kept.truncate(known)
            reports[video.name] = VideoReport(video.name, str(video.path), "failed", error=str(exc),
                                              seconds=time.perf_counter() - started)
            continue
        state.rows[video.name] = result.rows
        state.videos[video.name] = {
            "source": str(video.path), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "decoded": result.decoded, "scenes": result.scenes, "cuts": result.cuts, "kept": len(result.rows),
            "dropped": result.dropped, "colour": result.colour, "crop": result.crop,
            "size": result.size, "duration": result.duration,
        }
        _save_state(out, state)
        reports[video.name] = VideoReport(
            video.name, str(video.path), "done", result.decoded, result.scenes, len(result.rows),
            result.dropped, result.colour, result.crop, seconds=time.perf_counter() - started,
        )
    return FramesReport(out, [reports[v.name] for v in videos])
