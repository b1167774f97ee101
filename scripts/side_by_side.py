"""A labelled side-by-side PNG: LR (nearest-enlarged), bicubic and srkit's output (and the HR if given).

    .venv/bin/python scripts/side_by_side.py --lr LR.png --sr SR.png [--hr HR.png] [--crop X,Y,W,H] --out side.png

`--lr`, `--sr` and `--hr` may also be folders (e.g. a dataset's `test_X4`, predict's output and
`test`): the first LR image by name is shown, with the files of the same name from the others.
The scale is SR width / LR width. Every panel is shown at the SR size so pixels line up; with
`--hr` the bicubic and srkit labels also give their PSNR (Y channel, border = scale cropped, as
`sr-train eval` computes it) against the HR image. `--crop` (in LR pixels) zooms into a region.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from srdata.atomic import write_bytes  # noqa: E402
from srdata.errors import UserError  # noqa: E402
from srdata.metrics import psnr  # noqa: E402

LABEL_HEIGHT = 28  # at the smallest font
GAP = 6


def read_rgb(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise UserError(f"{path}: not a readable image: check the path")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def resolve_paths(lr: Path, sr: Path, hr: Path | None) -> tuple[Path, Path, Path | None]:
    """Folders -> the first LR PNG by name and the same-named files in the SR/HR folders."""
    if not lr.is_dir():
        return lr, sr, hr
    names = sorted(p.name for p in lr.iterdir() if p.suffix.lower() == ".png" and not p.name.startswith("."))
    if not names:
        raise UserError(f"--lr {lr}: no PNG in this folder")
    pick = names[0]
    return lr / pick, (sr / pick if sr.is_dir() else sr), (hr / pick if hr is not None and hr.is_dir() else hr)


def make_panels(lr: np.ndarray, sr: np.ndarray, hr: np.ndarray | None) -> list[tuple[str, np.ndarray]]:
    """(label, RGB image at SR size) for LR, bicubic, srkit (and HR)."""
    scale = sr.shape[1] // lr.shape[1]
    if scale < 1 or sr.shape[:2] != (lr.shape[0] * scale, lr.shape[1] * scale):
        raise UserError(f"SR is {sr.shape[1]}x{sr.shape[0]}, not an integer multiple of LR {lr.shape[1]}x{lr.shape[0]}: "
                        "pass the LR that was upscaled, without --outscale")
    size = (sr.shape[1], sr.shape[0])
    nearest = cv2.resize(lr, size, interpolation=cv2.INTER_NEAREST)
    bicubic = cv2.resize(lr, size, interpolation=cv2.INTER_CUBIC)
    labels = [f"LR x{scale} (nearest)", "bicubic", "srkit"]
    if hr is not None:
        if hr.shape != sr.shape:
            raise UserError(f"HR is {hr.shape[1]}x{hr.shape[0]} but SR is {sr.shape[1]}x{sr.shape[0]}: pass the matching HR")
        labels[1] += f"  {psnr(bicubic, hr, crop_border=scale, y_channel=True):.2f} dB (whole image)"
        labels[2] += f"  {psnr(sr, hr, crop_border=scale, y_channel=True):.2f} dB (whole image)"
    panels = list(zip(labels, [nearest, bicubic, sr]))
    if hr is not None:
        panels.append(("HR (ground truth)", hr))
    return panels


def crop_panels(panels, crop: tuple[int, int, int, int], scale: int):
    x, y, w, h = (v * scale for v in crop)
    return [(label, img[y: y + h, x: x + w]) for label, img in panels]


def label_style(panel_width: int) -> tuple[float, int, int]:
    """(font scale, thickness, label strip height): text readable at any panel size (0.6 up to 500 px)."""
    font_scale = max(0.6, panel_width / 800)
    return font_scale, max(1, round(font_scale)), int(LABEL_HEIGHT * font_scale / 0.6)


def compose(panels: list[tuple[str, np.ndarray]]) -> np.ndarray:
    """Panels in a row on white, each with its label above it."""
    height = max(img.shape[0] for _, img in panels)
    width = sum(img.shape[1] for _, img in panels) + GAP * (len(panels) - 1)
    font_scale, thickness, label_height = label_style(min(img.shape[1] for _, img in panels))
    sheet = np.full((height + label_height, width, 3), 255, np.uint8)
    x = 0
    for label, img in panels:
        sheet[label_height: label_height + img.shape[0], x: x + img.shape[1]] = img
        cv2.putText(sheet, label, (x + 4, label_height - int(8 * font_scale / 0.6)), cv2.FONT_HERSHEY_SIMPLEX,
                    font_scale, (0, 0, 0), thickness, cv2.LINE_AA)
        x += img.shape[1] + GAP
    return sheet


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lr", type=Path, required=True)
    parser.add_argument("--sr", type=Path, required=True)
    parser.add_argument("--hr", type=Path)
    parser.add_argument("--crop", help="X,Y,W,H in LR pixels")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        lr_path, sr_path, hr_path = resolve_paths(args.lr, args.sr, args.hr)
        lr, sr = read_rgb(lr_path), read_rgb(sr_path)
        panels = make_panels(lr, sr, read_rgb(hr_path) if hr_path else None)
        if args.crop:
            try:
                crop = tuple(int(v) for v in args.crop.split(","))
                assert len(crop) == 4 and all(v >= 0 for v in crop) and crop[2] > 0 and crop[3] > 0
            except (ValueError, AssertionError):
                raise UserError(f"--crop {args.crop!r}: give X,Y,W,H in LR pixels, e.g. 40,30,64,48") from None
            panels = crop_panels(panels, crop, sr.shape[1] // lr.shape[1])
            if any(img.size == 0 for _, img in panels):
                raise UserError(f"--crop {args.crop}: outside the {lr.shape[1]}x{lr.shape[0]} LR image")
    except UserError as exc:
        print(f"side_by_side: error: {exc}", file=sys.stderr)
        return 2
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(compose(panels), cv2.COLOR_RGB2BGR))
    write_bytes(args.out, encoded.tobytes())
    print(f"wrote {args.out} ({lr_path.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
