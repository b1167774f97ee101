"""Speed of `srdata frames` beside a plain PyAV decode of the same file, measured in the same run.

    .venv/bin/python bench/frames.py [VIDEO] [--repeat 3] [--seconds 20]

Without VIDEO, a 1920x1080 24 fps clip of --seconds is made first (x264 CRF 18, veryfast): three
drawings of the shared cartoon set side by side per scene, panned on twos, a new scene every 2-4 s,
light grain (so the decoder has texture to work through, as on real sources). Printed:

- baseline: frames/s of `for frame in container.decode(stream)` (frame threads as srdata uses);
- srdata frames: decoded frames/s of extract_frames (cuts, pool, conversion of the frames it
  tries, quality checks, pHash, PNG writing, lists) and how many it kept;
- their ratio (1.0 = the filtering is free; the target is > 0.5: filtering costs less than decoding),
  in wall time and in CPU time of this process (all threads: the decoder's, the PNG writer's),
  which other users' load disturbs much less than wall time.

Best of --repeat interleaved runs, since the machine may be shared.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from helpers import drawing, pan, write_video  # noqa: E402

from bench.common import CARTOONS  # noqa: E402

from srdata.frames import FramesOptions, extract_frames  # noqa: E402
from srdata.video import open_video  # noqa: E402

WIDTH, HEIGHT, FPS = 1920, 1080, 24


def make_clip(path: Path, seconds: int) -> Path:
    """The default clip (see the module docstring); deterministic."""
    rng = np.random.default_rng(0)
    images = sorted(CARTOONS.glob("*.png")) if CARTOONS.is_dir() else []
    frames, scene = [], 0
    while len(frames) < seconds * FPS:
        length = int(rng.integers(2, 5)) * FPS
        columns = []
        for k in range(3):
            paper = tuple(int(c) for c in rng.integers(150, 256, 3))
            picture = _picture(images, 3 * scene + k, paper)
            columns.append(pan(picture, HEIGHT, length, hold=2, speed=int(rng.integers(2, 7))))
        grain = rng.normal(0, 2.0, (HEIGHT, WIDTH, 3)).astype(np.float32)
        for trio in zip(*columns):
            shot = np.concatenate(trio, axis=1).astype(np.float32) + grain
            frames.append(np.clip(shot, 0, 255).astype(np.uint8))
        scene += 1
    return write_video(path, frames[: seconds * FPS], fps=FPS, options={"preset": "veryfast", "crf": "18", "threads": "0"})


def _picture(images: list[Path], index: int, paper) -> np.ndarray:
    """A 640-wide drawing at least HEIGHT tall: a shared-set cartoon, else a bundled sample."""
    if images:
        bgr = cv2.imread(str(images[index % len(images)]))
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        rgb = cv2.resize(rgb, (640, round(rgb.shape[0] * 640 / rgb.shape[1])), interpolation=cv2.INTER_AREA)
        rgb[rgb.min(axis=2) > 235] = paper
    else:
        rgb = drawing(index, 640, paper)
    while rgb.shape[0] < HEIGHT:
        rgb = np.concatenate([rgb, rgb], axis=0)
    return rgb


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def plain_decode(path: Path) -> tuple[int, float, float]:
    """(frames, wall s, CPU s) of decoding every frame, as srdata opens the stream."""
    wall, cpu = time.perf_counter(), _cpu()
    container, stream = open_video(path)
    with container:
        count = sum(1 for _ in container.decode(stream))
    return count, time.perf_counter() - wall, _cpu() - cpu


def srdata_frames(path: Path, out: Path) -> tuple[int, int, float, float]:
    """(frames decoded, kept, wall s, CPU s) of extract_frames into an empty folder."""
    shutil.rmtree(out, ignore_errors=True)
    wall, cpu = time.perf_counter(), _cpu()
    report = extract_frames(FramesOptions(videos=[path], out=out))
    wall, cpu = time.perf_counter() - wall, _cpu() - cpu
    video = report.videos[0]
    if video.status != "done":
        raise SystemExit(f"{path}: {video.error}")
    return video.decoded, video.kept, wall, cpu


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("video", nargs="?", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=20)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        video = args.video
        if video is None:
            started = time.perf_counter()
            video = make_clip(Path(tmp) / "clip.mp4", args.seconds)
            print(f"made {video.name}: {args.seconds} s of {WIDTH}x{HEIGHT} at {FPS} fps, "
                  f"{video.stat().st_size / 1e6:.1f} MB, in {time.perf_counter() - started:.0f} s")
        base, ours = [], []
        for _ in range(args.repeat):
            base.append(plain_decode(video))
            ours.append(srdata_frames(video, Path(tmp) / "out"))
    frames, base_wall, base_cpu = min(base, key=lambda r: r[1])
    decoded, kept, ours_wall, ours_cpu = min(ours, key=lambda r: r[2])
    base_cpu, ours_cpu = min(r[2] for r in base), min(r[3] for r in ours)
    assert decoded == frames, (decoded, frames)
    print(f"plain PyAV decode:  {frames / base_wall:7.1f} frames/s ({base_cpu / frames * 1000:.1f} ms CPU per frame)")
    print(f"srdata frames:      {decoded / ours_wall:7.1f} frames/s ({ours_cpu / decoded * 1000:.1f} ms CPU per frame; "
          f"{kept} of {decoded} frames kept)")
    print(f"ratio (srdata frames / plain decode; 1.0 = filtering costs nothing): "
          f"{base_wall / ours_wall:.2f} in wall time, {base_cpu / ours_cpu:.2f} in CPU time")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
