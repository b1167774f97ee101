"""Make data/demo/episode.mp4, the tiny cartoon `srdata frames` is shown on (README, make demo).

Eleven seconds of 640x360 at 24 fps from the bundled samples, one of each thing an episode
throws at a frame extractor: a pan on twos, a held drawing, a pan on threes that fades to black,
black, the held drawing again (near-duplicates), a fast pan smeared by motion blur, a last pan.
x264 CRF 26, BT.709 limited range, tagged. Deterministic; re-run it only to change the clip.

    .venv/bin/python scripts/make_demo_video.py [OUT]
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from helpers import drawing, fade, hold, pan, write_video  # noqa: E402

WIDTH, HEIGHT, FPS = 640, 360, 24
PAPER = [(250, 232, 204), (204, 228, 250), (222, 248, 212), (248, 214, 230), (236, 236, 204)]


def shots() -> list[np.ndarray]:
    black = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    smear = np.full((9, 1), 1 / 9, np.float32)  # vertical motion blur along a fast vertical pan
    fast = [cv2.filter2D(f, -1, smear) for f in pan(drawing(4, WIDTH, PAPER[4]), HEIGHT, 24, hold=1, speed=12)]
    return (
        pan(drawing(0, WIDTH, PAPER[0]), HEIGHT, 48, hold=2)  # 0-2 s
        + hold(drawing(1, WIDTH, PAPER[1]), HEIGHT, 48)  # 2-4 s
        + fade(pan(drawing(2, WIDTH, PAPER[2]), HEIGHT, 48, hold=3), 12)  # 4-6 s
        + [black] * 12  # 6-6.5 s
        + hold(drawing(1, WIDTH, PAPER[1]), HEIGHT, 36)  # 6.5-8 s
        + fast  # 8-9 s
        + pan(drawing(3, WIDTH, PAPER[3]), HEIGHT, 48, hold=2, speed=4)  # 9-11 s
    )


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else ROOT / "data" / "demo" / "episode.mp4"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_video(out, shots(), fps=FPS, options={"crf": "26", "preset": "slow", "g": "48"})
    print(f"{out}: {out.stat().st_size / 1000:.0f} kB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
