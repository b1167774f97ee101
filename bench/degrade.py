"""Speed of online degradation: training patches per second on ONE core, per preset, against the
plain crop-only loader measured in the same run.

    .venv/bin/python bench/degrade.py [--src /work/shared/data/cartoon-dev] [--seconds 4] [--repeat 3]

A patch is what the trainer's loader makes for one sample: a 256 x 256 HR crop (Real-ESRGAN's
gt_size) of a random image, flipped/transposed, and its 64 x 64 LR (x4), both converted to
float32 CHW. The crop-only loader cuts the LR from a stored LR image (what training on a built
dataset does); a preset makes it from the HR patch with a fresh draw (recipe key data.degrade).
One core: OpenCV, BLAS and FFT run single-threaded, as in a loader worker process.

Printed per preset: patches/s, ms/patch and the ratio to the crop-only loader, in CPU time of
this (single-threaded) process, which other jobs on a shared machine disturb much less than wall
time; best of --repeat interleaved rounds of --seconds each. Exits 1 if `realesrgan` makes fewer
than --target patches/s (default 100: a few loader workers then keep a GPU fed).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import CARTOONS, images_folder  # noqa: E402
from sr_train.data import degrade_patch, degrade_seed, random_crop, sample_rng, to_chw_float  # noqa: E402
from srdata.degradations.pipeline import PRESETS, load_pipeline  # noqa: E402
from srdata.imageio import find_images, read_png_rgb  # noqa: E402

PATCH, SCALE = 256, 4


def load_images(src: Path, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(HR, LR) RGB pairs in memory: HR cropped to a multiple of 4, LR its INTER_AREA quarter."""
    pairs = []
    for path in find_images(src)[:count]:
        hr = read_png_rgb(path)
        hr = hr[: hr.shape[0] - hr.shape[0] % SCALE, : hr.shape[1] - hr.shape[1] % SCALE]
        if min(hr.shape[:2]) < PATCH:
            continue
        lr = cv2.resize(hr, (hr.shape[1] // SCALE, hr.shape[0] // SCALE), interpolation=cv2.INTER_AREA)
        pairs.append((np.ascontiguousarray(hr), lr))
    return pairs


def crop_only(pairs, i: int) -> tuple[np.ndarray, np.ndarray]:
    hr, lr = pairs[i % len(pairs)]
    hr, lr = random_crop(hr, lr, SCALE, PATCH, sample_rng(0, i, 0), True, True)
    return to_chw_float([lr]), to_chw_float([hr])


def degraded(pairs, i: int, pipeline) -> tuple[np.ndarray, np.ndarray]:
    """What sr_train.data.TrainBatches does for one sample with data.degrade."""
    hr, _ = pairs[i % len(pairs)]
    hr, _ = random_crop(hr, None, SCALE, PATCH, sample_rng(0, i, 0), True, True)
    lr = degrade_patch(hr, pipeline, degrade_seed(0, i, 0), SCALE)
    return to_chw_float([lr]), to_chw_float([hr])


def rate(make, seconds: float) -> float:
    """Patches per CPU second over at least `seconds` of CPU time (and 20 patches)."""
    make(0)  # warm-up
    count, start = 0, time.process_time()
    while count < 20 or time.process_time() - start < seconds:
        make(count)
        count += 1
    return count / (time.process_time() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=CARTOONS, help="images (default: the cartoon set, else data/samples)")
    parser.add_argument("--images", type=int, default=40, help="images kept in memory")
    parser.add_argument("--seconds", type=float, default=4.0, help="per measurement")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the best is kept")
    parser.add_argument("--target", type=float, default=100.0, help="realesrgan patches/s required")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    src = images_folder(args.src)
    pairs = load_images(src, args.images)
    pipelines = {name: load_pipeline(name) for name in PRESETS}
    loaders = {"crop only": lambda i: crop_only(pairs, i)}
    loaders.update({name: (lambda p: lambda i: degraded(pairs, i, p))(p) for name, p in pipelines.items()})
    best = {name: 0.0 for name in loaders}
    for _ in range(args.repeat):  # interleaved rounds: a busy moment hits every loader alike
        for name, make in loaders.items():
            best[name] = max(best[name], rate(make, args.seconds))
    print(f"{len(pairs)} images from {src}; {PATCH}x{PATCH} HR patches, x{SCALE}, one core, "
          f"CPU time, best of {args.repeat} x {args.seconds:g} s")
    print(f"{'loader':<14}{'patches/s':>11}{'ms/patch':>10}{'vs crop only':>14}")
    for name, value in best.items():
        print(f"{name:<14}{value:>11.1f}{1000 / value:>10.2f}{value / best['crop only']:>13.3f}x")
    ok = best["realesrgan"] >= args.target
    print(f"realesrgan: {best['realesrgan']:.1f} patches/s per core ({'meets' if ok else 'MISSES'} the "
          f"{args.target:g} target)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
