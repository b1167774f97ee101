"""Speed of `sr-train predict` with each engine on the same exported model, in one run.

    OMP_NUM_THREADS=1 .venv/bin/python bench/predict.py [--arch compact|rrdbnet] [--crop 256] [--images 3] [--tile N]
    OMP_NUM_THREADS=1 .venv/bin/python bench/predict.py --memory [--arch rrdbnet] [--sides 160,176,192]
    OMP_NUM_THREADS=1 .venv/bin/python bench/predict.py --image-memory [--lr-side 1500] [--kinds rgb8,rgb16,grey8,rgba8]

A network of the chosen architecture (the shipped recipes' sizes: Compact nf 64 nc 16, RRDBNet
nb 23 nf 64 gc 32, x4; random weights, which do not change the speed) is exported once in both
formats into one folder, and `predict()` runs that folder with `--engine paddle` (paddle.jit.load)
and `--engine onnx` (onnxruntime) on the same crops of data/samples, with each engine's default
tile (what `sr-train predict` does) or one `--tile` for all (the engines alone).
The dygraph model rebuilt from the weights file (what eval and validation run) is timed too.
Printed: output megapixels/s per engine and the ratios against the Paddle export, best of
--repeat interleaved runs (the machine may be shared), after one untimed warm-up per engine.

`--memory` instead measures the peak RSS of one forward pass on side x side inputs, one fresh
process per engine and side; it is how sr_train/tiling.py's DEFAULT_TILE was chosen.

`--image-memory` measures the peak RSS of a whole `predict()` of one big synthetic LR image per
kind (8/16-bit, grey, alpha), fresh process each, with a tiny x4 Compact (nf 8) whose activations
are negligible: what is left is the image arrays. Printed per kind: bytes per output pixel above
the process's peak with the engine loaded, next to the output image's own bytes per pixel. The
image is blurred noise, which PNG barely compresses: the encoder's buffer is near its worst case.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sr_train.engines import ONNX_TILE, PADDLE_EXPORT_TILE  # noqa: E402
from sr_train.export import export_model  # noqa: E402
from sr_train.models import build_model, init_weights  # noqa: E402
from sr_train.predict import PredictOptions, predict  # noqa: E402
from sr_train.tiling import DEFAULT_TILE  # noqa: E402
from sr_train.weights.load import model_state  # noqa: E402
from sr_train.weights.srkit import save_weights  # noqa: E402

ARCHS = {
    "compact": {"arch": "compact", "nf": 64, "nc": 16, "scale": 4},
    "rrdbnet": {"arch": "rrdbnet", "nf": 64, "nb": 23, "gc": 32, "scale": 4},
}


def make_export(arch: dict, folder: Path) -> Path:
    """Weights file + one export folder holding both formats of the same network."""
    model = build_model(arch)
    init_weights(model, seed=0)
    model.eval()
    weights = folder / "weights.safetensors"
    save_weights(weights, model_state(model), model.arch)
    for fmt in ("paddle", "onnx"):
        export_model(model, fmt, folder / "export")
    return weights


def make_crops(count: int, crop: int, folder: Path) -> list[Path]:
    """Centre crops of the first `count` sample images (PNG), so every engine reads the same pixels."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for src in sorted((ROOT / "data" / "samples").glob("*.png"))[:count]:
        img = cv2.imread(str(src), cv2.IMREAD_COLOR)
        y, x = (img.shape[0] - crop) // 2, (img.shape[1] - crop) // 2
        path = folder / src.name
        cv2.imwrite(str(path), img[max(y, 0): max(y, 0) + crop, max(x, 0): max(x, 0) + crop])
        paths.append(path)
    return paths


def timed_predict(weights: Path, engine: str, inputs: list[Path], out: Path, tile: int | None = None) -> tuple[float, float]:
    """(output megapixels, wall seconds) of one predict run (tile None: the engine's default)."""
    shutil.rmtree(out, ignore_errors=True)
    report = predict(PredictOptions(weights=weights, inputs=inputs, out=out, engine=engine, tile=tile), progress=False)
    assert not report.skipped, report.skipped
    return report.output_megapixels, report.seconds


def bench_speed(args) -> None:
    arch = ARCHS[args.arch]
    with tempfile.TemporaryDirectory(prefix="srkit-bench-predict-") as tmp:
        tmp = Path(tmp)
        started = time.perf_counter()
        weights = make_export(arch, tmp)
        print(f"exported {args.arch} {json.dumps(arch)} to paddle + onnx in {time.perf_counter() - started:.1f} s")
        crops = make_crops(args.images, args.crop, tmp / "in")
        warm = make_crops(1, 32, tmp / "warm")
        runs = {
            "paddle (jit.load export)": (tmp / "export", "paddle"),
            "onnx (onnxruntime export)": (tmp / "export", "onnx"),
            "paddle (dygraph weights)": (weights, "paddle"),
        }
        for name, (source, engine) in runs.items():
            timed_predict(source, engine, warm, tmp / "out")
        best: dict[str, float] = {}
        for _ in range(args.repeat):
            for name, (source, engine) in runs.items():
                megapixels, seconds = timed_predict(source, engine, crops, tmp / "out", args.tile)
                best[name] = max(best.get(name, 0.0), megapixels / seconds)
    threads = os.environ.get("OMP_NUM_THREADS", "unset")
    tiles = f"--tile {args.tile}" if args.tile is not None else (
        f"default tiles (onnx {ONNX_TILE}, paddle export {PADDLE_EXPORT_TILE}, dygraph {DEFAULT_TILE})")
    print(f"{len(crops)} crops of {args.crop}x{args.crop} from data/samples, x{arch['scale']}, {tiles}, "
          f"OMP_NUM_THREADS={threads}, best of {args.repeat}")
    baseline = best["paddle (jit.load export)"]
    for name, speed in best.items():
        print(f"  {name:28s} {speed:8.4f} output MP/s   x{speed / baseline:5.2f} vs paddle export")
    print(f"onnx / paddle = {best['onnx (onnxruntime export)'] / baseline:.2f}")


def bench_memory(args) -> None:
    arch = ARCHS[args.arch]
    with tempfile.TemporaryDirectory(prefix="srkit-bench-memory-") as tmp:
        weights = make_export(arch, Path(tmp))
        sources = {"paddle-dygraph": (weights, "paddle"), "paddle-export": (Path(tmp) / "export", "paddle"),
                   "onnx-export": (Path(tmp) / "export", "onnx")}
        print(f"peak RSS of one forward pass, {args.arch} {json.dumps(arch)}, fresh process each")
        for name in args.engines.split(","):
            source, engine = sources[name]
            for side in [int(s) for s in args.sides.split(",")]:
                result = subprocess.run([sys.executable, __file__, "--memory-child", engine, str(source), str(side)],
                                        capture_output=True, text=True, check=True)
                print(f"  {name:14s} {side:4d} px input: {result.stdout.strip().splitlines()[-1]}", flush=True)


def memory_child(engine: str, source: str, side: int) -> None:
    from sr_train.engines import open_engine
    from sr_train.tiling import upscale

    loaded = open_engine(source, engine)
    before = peak_rss_gb()
    img = np.random.default_rng(0).random((side, side, 3), dtype=np.float32)
    upscale(loaded.model, img, loaded.scale, tile=0)
    print(f"peak {peak_rss_gb():.2f} GB (model loaded: {before:.2f} GB)")


TINY_X4 = {"arch": "compact", "nf": 8, "nc": 2, "scale": 4}
IMAGE_KINDS = {"rgb8": (3, np.uint8), "rgb16": (3, np.uint16), "grey8": (1, np.uint8), "rgba8": (4, np.uint8)}


def bench_image_memory(args) -> None:
    with tempfile.TemporaryDirectory(prefix="srkit-bench-image-memory-") as tmp:
        tmp = Path(tmp)
        model = build_model(TINY_X4)
        init_weights(model, seed=0)
        weights = tmp / "tiny.safetensors"
        save_weights(weights, model_state(model), model.arch)
        side, scale = args.lr_side, TINY_X4["scale"]
        print(f"peak RSS of predict() on one {side}x{side} LR image, {json.dumps(TINY_X4)}, paddle engine, "
              f"fresh process each; output {side * scale}x{side * scale}")
        for kind in args.kinds.split(","):
            channels, dtype = IMAGE_KINDS[kind]
            source = tmp / f"{kind}.png"
            noise = np.random.default_rng(0).integers(0, np.iinfo(dtype).max, (side, side, channels), dtype=dtype)
            cv2.imwrite(str(source), cv2.GaussianBlur(noise, (5, 5), 0))
            result = subprocess.run([sys.executable, __file__, "--image-memory-child", str(weights), str(source),
                                     str(tmp / "out")], capture_output=True, text=True, check=True)
            loaded, peak = map(float, result.stdout.split())
            pixels = (side * scale) ** 2
            print(f"  {kind:6s} peak {peak:.3f} GB, engine loaded {loaded:.3f} GB: "
                  f"{(peak - loaded) * 1e9 / pixels:5.1f} bytes per output pixel "
                  f"(the output image: {channels * np.dtype(dtype).itemsize})", flush=True)


def image_memory_child(weights: str, source: str, out: str) -> None:
    from sr_train.engines import open_engine

    open_engine(weights, "paddle")  # imports Paddle and builds the model: the baseline
    loaded = peak_rss_gb()
    report = predict(PredictOptions(weights=Path(weights), inputs=[Path(source)], out=Path(out), engine="paddle"),
                     progress=False)
    assert not report.skipped, report.skipped
    print(loaded, peak_rss_gb())


def peak_rss_gb() -> float:
    """This process's peak RSS. VmHWM starts afresh at exec; getrusage's ru_maxrss does not on
    Linux (a child forked from a big parent starts with the parent's peak), so it is the fallback."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1e6
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=sorted(ARCHS), default="compact")
    parser.add_argument("--images", type=int, default=3)
    parser.add_argument("--crop", type=int, default=256, help="side of the LR crops, pixels")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--tile", type=int, help="same tile for every engine (default: each engine's own)")
    parser.add_argument("--memory", action="store_true", help="measure peak RSS per input side instead")
    parser.add_argument("--sides", default="160,176,192")
    parser.add_argument("--engines", default="paddle-dygraph,paddle-export,onnx-export",
                        help="for --memory: which of paddle-dygraph, paddle-export, onnx-export")
    parser.add_argument("--image-memory", action="store_true", help="measure peak RSS of predict on big images instead")
    parser.add_argument("--lr-side", type=int, default=1500, help="for --image-memory: side of the LR image, pixels")
    parser.add_argument("--kinds", default=",".join(IMAGE_KINDS), help="for --image-memory: which of " + ", ".join(IMAGE_KINDS))
    parser.add_argument("--image-memory-child", nargs=3, metavar=("WEIGHTS", "SOURCE", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--memory-child", nargs=3, metavar=("ENGINE", "SOURCE", "SIDE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        engine, source, side = args.memory_child
        memory_child(engine, source, int(side))
    elif args.image_memory_child:
        image_memory_child(*args.image_memory_child)
    elif args.memory:
        bench_memory(args)
    elif args.image_memory:
        bench_image_memory(args)
    else:
        bench_speed(args)


if __name__ == "__main__":
    main()
