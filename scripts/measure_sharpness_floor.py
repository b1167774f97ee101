"""Measure where `srdata frames`' sharpness floor should sit (srdata.quality.edge_sharpness).

Every image of the shared cartoon set is scored as it is (sharp drawings), after a video round
trip (x264 CRF 20, 4:2:0, BT.709, decoded by srdata.frames: what a clean frame of a video looks
like), enlarged from a smaller production size (1.5x and 2x: area down, bicubic up, as many
anime Blu-rays are), and blurred: Gaussian (sigma 0.7 to 2) and motion blur (3 to 15 pixels,
horizontal, vertical, diagonal). For each variant the script prints the score's spread and the
share of images each candidate floor would drop. srdata.frames.DEFAULT_SHARPNESS_FLOOR was chosen
from this output: the highest floor that drops no original and no video round trip and keeps 95%
of the 1.5x enlargements.

    .venv/bin/python scripts/measure_sharpness_floor.py [FOLDER]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from av.video.reformatter import VideoReformatter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from helpers import write_video  # noqa: E402

from srdata.video import frame_colour, frame_rgb, open_video  # noqa: E402
from srdata.imageio import decode_source, find_images  # noqa: E402
from srdata.quality import edge_sharpness, grey_of  # noqa: E402

DEFAULT_FOLDER = ROOT.parents[1] / "shared" / "data" / "cartoon-dev"
FLOORS = (0.36, 0.38, 0.40, 0.42, 0.44, 0.46)


def motion(length: int, angle: float = 0.0) -> np.ndarray:
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2] = 1.0
    if angle:
        centre = ((length - 1) / 2, (length - 1) / 2)
        kernel = cv2.warpAffine(kernel, cv2.getRotationMatrix2D(centre, angle, 1.0), (length, length))
    return kernel / kernel.sum()


def enlarged(rgb: np.ndarray, factor: float) -> np.ndarray:
    h, w = rgb.shape[:2]
    small = cv2.resize(rgb, (round(w / factor), round(h / factor)), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def video_round_trip(rgb: np.ndarray, folder: Path) -> np.ndarray:
    even = np.ascontiguousarray(rgb[: rgb.shape[0] // 2 * 2, : rgb.shape[1] // 2 * 2])
    path = write_video(folder / "one.mp4", [even] * 2, options={"crf": "20", "preset": "medium"})
    container, stream = open_video(path)
    with container:
        frame = next(container.decode(stream))
        return frame_rgb(frame, frame_colour(frame), VideoReformatter())


VARIANTS = {
    "original": lambda rgb, tmp: rgb,
    "x264 CRF 20": video_round_trip,
    "enlarged 1.5x": lambda rgb, tmp: enlarged(rgb, 1.5),
    "enlarged 2x": lambda rgb, tmp: enlarged(rgb, 2.0),
    **{f"gauss {s}": (lambda s: lambda rgb, tmp: cv2.GaussianBlur(rgb, (0, 0), s))(s) for s in (0.7, 1.0, 1.5, 2.0)},
    **{f"motion {n} px": (lambda n: lambda rgb, tmp: cv2.filter2D(rgb, -1, motion(n)))(n) for n in (3, 5, 9, 15)},
    "motion 9 px vert": lambda rgb, tmp: cv2.filter2D(rgb, -1, motion(9).T),
    "motion 9 px diag": lambda rgb, tmp: cv2.filter2D(rgb, -1, motion(9, 45)),
}


def main(argv: list[str]) -> int:
    folder = Path(argv[0]) if argv else DEFAULT_FOLDER
    scores: dict[str, list[float]] = {name: [] for name in VARIANTS}
    paths = find_images(folder)
    with tempfile.TemporaryDirectory() as tmp:
        for path in paths:
            rgb = decode_source(path)
            for name, make in VARIANTS.items():
                scores[name].append(edge_sharpness(grey_of(make(rgb, Path(tmp)))))
    if not paths:
        print(f"no images in {folder}", file=sys.stderr)
        return 2
    print(f"{len(paths)} images from {folder}; edge_sharpness per variant")
    header = f"{'variant':18s} {'min':>6s} {'p5':>6s} {'median':>6s} {'p95':>6s} {'max':>6s}   " + "  ".join(
        f"<{f:.2f}" for f in FLOORS)
    print(header)
    for name, values in scores.items():
        v = np.array(values)
        dropped = "  ".join(f"{np.mean(v < f):5.0%}" for f in FLOORS)
        print(f"{name:18s} {v.min():6.3f} {np.percentile(v, 5):6.3f} {np.median(v):6.3f} "
              f"{np.percentile(v, 95):6.3f} {v.max():6.3f}   {dropped}")
    keep = min(min(scores["original"]), min(scores["x264 CRF 20"]), np.percentile(scores["enlarged 1.5x"], 5))
    floor = max((f for f in FLOORS if f <= keep), default=None)
    print(f"highest candidate floor dropping no original or round trip and <= 5% of 1.5x enlargements: {floor}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
