"""Does a randomized degradation pipeline make a model robust? Train the same small model twice and see.

    .venv/bin/python scripts/degradation_proof.py [--src /work/shared/data/cartoon-dev] [--work out/proof]
        [--iters 1000] [--robust anime-video realesrgan]

1. `srdata build` the sources at x4 with the `seed` pipeline (blur 1.2 + bicubic): train, 8 val and
   16 test images (split by content, so no test image is trained on).
2. Build the same sources and split again with an independent degradation neither model trains
   on, the --blur/--noise/--jpeg shorthand: blur 1.0, bicubic, Gaussian noise sigma 3-6 (0-255),
   JPEG quality 40-70. Only its test split is used.
3. Train the quickstart's Compact network (nf 32, nc 8, bicubic skip, MSE, batch 16 x 128 px)
   with equal iterations and seed, LRs made on the fly from the same HR patches (recipe key
   data.degrade): once with `seed`, once with each --robust pipeline. Validation: the seed val pairs.
4. Score both (and bicubic) on both test sets: PSNR/SSIM on the Y channel, 4 px border cropped
   (`sr-train eval`'s numbers).
5. Write WORK/proof.json (the table), data/figures/degradation-proof.png (the chart) and
   data/figures/degradation-before-after.png (one degraded test image: the one where the first
   robust model's gain over the seed model is the median of the test set, not the best; the crop
   is where the seed model and that model disagree most, whichever is right).

A run that already reached --iters is not trained again; an interrupted one is continued.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sr_train.evaluate import evaluate, super_resolve  # noqa: E402
from sr_train.fit import fit  # noqa: E402
from sr_train.recipe import recipe_from_dict  # noqa: E402
from sr_train.weights.load import load_model  # noqa: E402
from srdata.atomic import write_bytes, write_json  # noqa: E402
from srdata.build import build_dataset  # noqa: E402
from srdata.build_options import BuildOptions  # noqa: E402
from srdata.imageio import read_png_rgb  # noqa: E402
from srdata.metrics import psnr  # noqa: E402
from srdata.sheet import BACKGROUND, HEADER_TEXT, TEXT, load_fonts  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SCALE = 4
TEST_DEGRADATION = {"blur": 1.0, "noise": (3.0, 6.0), "jpeg": (40, 70)}
TEST_LABEL = "blur 1.0 + noise 3-6 + JPEG 40-70"


def build(src: Path, out: Path, **degradation) -> None:
    report = build_dataset(BuildOptions(src=src, out=out, scale=SCALE, val=8, test=16, seed=0, **degradation),
                           progress=False)
    print(f"built {out}: {report.counts}")


def recipe(work: Path, pipeline: str, iters: int) -> dict:
    return {
        "seed": 0, "run_dir": str(work / f"run-{pipeline}"),
        "data": {"root": str(work / "ds-seed"), "degrade": pipeline},
        "model": {"arch": "compact", "nf": 32, "nc": 8, "skip": "bicubic"},
        "train": {"iters": iters, "batch_size": 16, "patch_size": 128, "lr": 1e-3, "loss": "mse", "clip_output": True,
                  "scheduler": {"name": "cosine_restart", "eta_min": 1e-6}},
        "val": {"interval": max(1, iters // 5)}, "checkpoint": {"interval": max(1, iters // 5), "keep_states": 1},
        "log": {"interval": 10, "visualdl": False},
    }


def train(work: Path, pipeline: str, iters: int) -> tuple[Path, float]:
    """The run's last weights and its training wall time (kept in RUN/proof-seconds.json)."""
    raw = recipe(work, pipeline, iters)
    run_dir = Path(raw["run_dir"])
    timing = run_dir / "proof-seconds.json"
    if (run_dir / "ckpt" / f"iter_{iters}.state").exists() and timing.exists():
        return run_dir / "last.safetensors", json.loads(timing.read_text())["seconds"]
    started = time.perf_counter()
    resume = "auto" if (run_dir / "ckpt").is_dir() else None
    fit(recipe_from_dict(raw, f"proof recipe ({pipeline})"), resume=resume, progress=True)
    seconds = time.perf_counter() - started
    write_json(timing, {"seconds": seconds})
    return run_dir / "last.safetensors", seconds


def score(datasets: dict[str, Path], weights: dict[str, Path]) -> dict:
    """{test set: {"bicubic": {...}, model: {...}}} of mean PSNR/SSIM, and per-image PSNRs."""
    table = {}
    for test_name, ds in datasets.items():
        row = {}
        for model_name, path in weights.items():
            report = evaluate(str(ds), str(path), split="test", progress=False)
            row["bicubic"] = {"psnr": report["mean"]["bicubic_psnr"], "ssim": report["mean"]["bicubic_ssim"]}
            row[model_name] = {"psnr": report["mean"]["psnr"], "ssim": report["mean"]["ssim"],
                               "images": {i["name"]: i["psnr"] for i in report["images"]}}
        table[test_name] = row
    return table


def draw_chart(table: dict, models: list[str], path: Path) -> None:
    """Grouped bars: mean PSNR-Y per test set for bicubic and each model, values written on the bars."""
    fonts = load_fonts()
    names = ["bicubic", *models]
    colours = [(150, 150, 150), (90, 140, 220), (230, 120, 40), (120, 190, 90)]
    width, height, pad = 1000, 420, 60
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.text((pad, 12), "Mean PSNR-Y (dB) on 16 held-out cartoon images, x4, same network and iterations",
              fill=HEADER_TEXT, font=fonts[1])
    values = [table[t][n]["psnr"] for t in table for n in names]
    low, high = min(values) - 1.0, max(values) + 0.5
    base, top = height - 70, 60
    group_w = (width - 2 * pad) / len(table)
    bar_w = group_w / (len(names) + 1)
    for g, (test_name, row) in enumerate(table.items()):
        x0 = pad + g * group_w + bar_w / 2
        for i, name in enumerate(names):
            value = row[name]["psnr"]
            y = base - (value - low) / (high - low) * (base - top)
            box = [x0 + i * bar_w, y, x0 + (i + 1) * bar_w - 6, base]
            draw.rectangle(box, fill=colours[i])
            draw.text((box[0] + 4, y - 18), f"{value:.2f}", fill=TEXT, font=fonts[0])
        draw.text((x0, base + 8), test_name, fill=TEXT, font=fonts[0])
    for i, name in enumerate(names):
        draw.rectangle([pad + i * 230, height - 28, pad + i * 230 + 14, height - 14], fill=colours[i])
        label = name if name == "bicubic" else f"trained on {name}"
        draw.text((pad + i * 230 + 20, height - 30), label, fill=TEXT, font=fonts[0])
    draw.line([pad - 10, base, width - pad, base], fill=TEXT)
    draw.text((8, base - 8), f"{low:.1f}", fill=TEXT, font=fonts[0])  # the bars start here, not at 0
    _save(image, path)


def disagreement_crop(a: np.ndarray, b: np.ndarray, side: int) -> tuple[int, int]:
    """(x, y) of the side x side window, on a 4 px grid, where images a and b differ most (summed
    absolute grey difference): where two models disagree, whichever of them is right."""
    diff = np.abs(cv2.cvtColor(a, cv2.COLOR_RGB2GRAY).astype(np.float64) - cv2.cvtColor(b, cv2.COLOR_RGB2GRAY))
    s = cv2.integral(diff)
    window = s[side:, side:] - s[:-side, side:] - s[side:, :-side] + s[:-side, :-side]
    window = window[::SCALE, ::SCALE]
    y, x = np.unravel_index(int(np.argmax(window)), window.shape)
    return int(x) * SCALE, int(y) * SCALE


def draw_before_after(ds: Path, name: str, weights: dict[str, Path], path: Path, side: int = 192) -> None:
    """One degraded test image: LR (nearest), bicubic, each model, HR, on the window where the seed
    model and the first robust model disagree most, enlarged to 288 px with nearest neighbour."""
    fonts = load_fonts()
    hr = read_png_rgb(ds / "test" / f"{name}.png")
    lr = read_png_rgb(ds / f"test_X{SCALE}" / f"{name}.png")
    size = (hr.shape[1], hr.shape[0])
    panels = [("degraded LR (nearest)", cv2.resize(lr, size, interpolation=cv2.INTER_NEAREST)),
              ("bicubic", cv2.resize(lr, size, interpolation=cv2.INTER_CUBIC))]
    for model_name, w in weights.items():
        panels.append((f"trained on {model_name}", super_resolve(load_model(w), lr, SCALE, tile=0)))
    panels.append(("HR", hr))
    x, y = disagreement_crop(panels[2][1], panels[3][1], side)
    tile, gap, label_h = 288, 8, 40
    image = Image.new("RGB", (gap + len(panels) * (tile + gap), label_h + tile + gap), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for i, (label, full) in enumerate(panels):
        crop = cv2.resize(full[y:y + side, x:x + side], (tile, tile), interpolation=cv2.INTER_NEAREST)
        left = gap + i * (tile + gap)
        image.paste(Image.fromarray(crop), (left, label_h))
        score = "" if label == "HR" or label.startswith("degraded") else f"whole image {psnr(full, hr, SCALE, True):.2f} dB"
        draw.text((left, 4), label, fill=HEADER_TEXT, font=fonts[0])
        draw.text((left, 20), f"{name[:24]} at {x},{y}" if i == 0 else score, fill=TEXT, font=fonts[0])
    _save(image, path)


def _save(image: Image.Image, path: Path) -> None:
    ok, png = cv2.imencode(".png", cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_PNG_COMPRESSION, 9])
    write_bytes(path, png.tobytes())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=Path("/work/shared/data/cartoon-dev"))
    parser.add_argument("--work", type=Path, default=ROOT / "out" / "proof")
    parser.add_argument("--iters", type=int, default=1000)
    parser.add_argument("--robust", nargs="+", default=["anime-video", "realesrgan"],
                        help="the pipelines of the models compared with the seed one")
    parser.add_argument("--figures", type=Path, default=ROOT / "data" / "figures")
    args = parser.parse_args()
    work = args.work
    build(args.src, work / "ds-seed", degrade="seed")
    build(args.src, work / "ds-test-degraded", **TEST_DEGRADATION)
    models = ["seed", *args.robust]
    weights, seconds = {}, {}
    for pipeline in models:
        weights[pipeline], seconds[pipeline] = train(work, pipeline, args.iters)
    datasets = {"clean (seed pairs)": work / "ds-seed", f"degraded ({TEST_LABEL})": work / "ds-test-degraded"}
    table = score(datasets, weights)
    degraded = table[f"degraded ({TEST_LABEL})"]
    first = args.robust[0]
    gains = {n: degraded[first]["images"][n] - degraded["seed"]["images"][n] for n in degraded["seed"]["images"]}
    median_image = sorted(gains, key=gains.get)[len(gains) // 2]
    result = {"iters": args.iters, "models": models, "train_seconds": seconds, "test_degradation": TEST_LABEL,
              "table": table, "before_after_image": median_image, f"{first}_gain_per_image": gains}
    write_json(work / "proof.json", result)
    draw_chart(table, models, args.figures / "degradation-proof.png")
    draw_before_after(work / "ds-test-degraded", median_image, weights, args.figures / "degradation-before-after.png")
    print(f"\n{'test set':<48}{'model':<26}{'PSNR-Y':>8}{'SSIM-Y':>8}")
    for test_name, row in table.items():
        for name in ["bicubic", *models]:
            label = name if name == "bicubic" else f"trained on {name}"
            print(f"{test_name:<48}{label:<26}{row[name]['psnr']:>8.2f}{row[name]['ssim']:>8.4f}")
    print(f"training seconds: {seconds}; before/after image: {median_image}; figures in {args.figures}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
