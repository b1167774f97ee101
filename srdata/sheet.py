"""Contact sheet: see what the model will learn from, one row per sampled HR/LR pair.

Shrinking a whole 1000-px HR image to a thumbnail makes it look like its LR, which hides
exactly what a user needs to see (blur, noise, JPEG, aliasing). So each row shows:

    [whole HR, crop outlined] [HR crop 1:1] [LR crop, nearest x scale] [LR crop, bicubic x scale]

The crop is the most detailed window of the image (largest sum of gradient magnitude), so
lines and textures are what ends up on screen. Every tile has a label strip above it, and each
row a header with the pair's name, split and sizes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from srdata.atomic import atomic_open
from srdata.errors import UserError

TILE = 256  # side of a crop tile, px
OVERVIEW_W = 384  # box the whole HR is fitted into (TILE high)
PAD = 8
HEADER_H = 26  # row header: name, split, sizes
LABEL_H = 20  # strip above each tile
ROW_H = HEADER_H + LABEL_H + TILE + PAD
SHEET_W = PAD + OVERVIEW_W + 3 * (PAD + TILE) + PAD
DEFAULT_ROWS = 6

BACKGROUND = (24, 24, 24)
STRIP = (52, 52, 52)
TEXT = (235, 235, 235)
HEADER_TEXT = (255, 214, 102)
CROP_BOX = (255, 64, 64)


@dataclass(frozen=True)
class SheetPair:
    """One row: the images and what the header says about them."""

    name: str
    split: str
    hr: np.ndarray  # uint8 HWC RGB
    lr: np.ndarray  # uint8 HWC RGB, HR = scale x LR


def sheet_size(rows: int) -> tuple[int, int]:
    """(width, height) of a sheet with `rows` rows: fixed, whatever the image sizes."""
    return SHEET_W, PAD + rows * ROW_H


def choose_rows(splits: list[str], rows: int, seed: int) -> list[int]:
    """Indices (sorted) of the pairs to show, given each pair's split: a seeded sample that
    includes every split when there are enough rows (val/test are small but matter most)."""
    rng = random.Random(seed)
    by_split: dict[str, list[int]] = {}
    for index, split in enumerate(splits):
        by_split.setdefault(split, []).append(index)
    chosen = [rng.choice(members) for members in by_split.values()][:rows]
    rest = [i for i in range(len(splits)) if i not in set(chosen)]
    chosen += rng.sample(rest, min(rows - len(chosen), len(rest)))
    return sorted(chosen)


def render_sheet(pairs: list[SheetPair], scale: int) -> Image.Image:
    if not pairs:
        raise ValueError("a contact sheet needs at least one pair")
    sheet = Image.new("RGB", sheet_size(len(pairs)), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    fonts = load_fonts()
    for row, pair in enumerate(pairs):
        _draw_row(sheet, draw, fonts, PAD + row * ROW_H, pair, scale)
    return sheet


def write_sheet(path: Path, pairs: list[SheetPair], scale: int) -> tuple[int, int]:
    """Render and write the sheet as PNG atomically; returns its size."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise UserError(f"--sheet {path}: the contact sheet is a PNG; give a path ending in .png")
    image = render_sheet(pairs, scale)
    with atomic_open(path, "wb") as handle:
        image.save(handle, format="PNG")
    return image.size


def detail_crop(hr: np.ndarray, lr: np.ndarray, scale: int) -> tuple[int, int, int]:
    """(x, y, side) in HR pixels of the square window with the most edges, aligned to `scale`.

    Searched on the LR (scale^2 fewer pixels) with an integral image of the gradient magnitude.
    """
    lr_side = max(1, min(TILE // scale, lr.shape[0], lr.shape[1]))
    grey = cv2.cvtColor(lr, cv2.COLOR_RGB2GRAY).astype(np.float32)
    magnitude = np.abs(cv2.Sobel(grey, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(grey, cv2.CV_32F, 0, 1))
    s = cv2.integral(magnitude, sdepth=cv2.CV_64F)
    k = lr_side
    window = s[k:, k:] - s[:-k, k:] - s[k:, :-k] + s[:-k, :-k]
    y, x = np.unravel_index(int(np.argmax(window)), window.shape)  # first maximum: deterministic
    return int(x) * scale, int(y) * scale, lr_side * scale


def _draw_row(sheet: Image.Image, draw: ImageDraw.ImageDraw, fonts, top: int, pair: SheetPair, scale: int):
    hr, lr = pair.hr, pair.lr
    x, y, side = detail_crop(hr, lr, scale)
    lx, ly, lside = x // scale, y // scale, side // scale
    hr_crop = hr[y : y + side, x : x + side]
    lr_crop = lr[ly : ly + lside, lx : lx + lside]
    nearest = cv2.resize(lr_crop, (side, side), interpolation=cv2.INTER_NEAREST)
    bicubic = cv2.resize(lr_crop, (side, side), interpolation=cv2.INTER_CUBIC)

    header = (
        f"{pair.name}   [{pair.split}]   HR {hr.shape[1]}x{hr.shape[0]}   "
        f"LR {lr.shape[1]}x{lr.shape[0]}   x{scale}"
    )
    draw.text((PAD, top + 4), fit_text(draw, header, fonts[1], SHEET_W - 2 * PAD), fill=HEADER_TEXT, font=fonts[1])
    tiles_top = top + HEADER_H + LABEL_H

    overview, factor = _fit_into(hr, OVERVIEW_W, TILE)
    ox = PAD + (OVERVIEW_W - overview.width) // 2
    sheet.paste(overview, (ox, tiles_top))
    box = [ox + x * factor, tiles_top + y * factor, ox + (x + side) * factor - 1, tiles_top + (y + side) * factor - 1]
    draw.rectangle(box, outline=CROP_BOX, width=2)
    label_strip(draw, fonts[0], PAD, tiles_top, OVERVIEW_W, f"HR {hr.shape[1]}x{hr.shape[0]} (whole)")

    columns = [
        (hr_crop, f"HR crop {side}x{side} at {x},{y}"),
        (nearest, f"LR {lside}x{lside} nearest x{scale}"),
        (bicubic, f"LR {lside}x{lside} bicubic x{scale}"),
    ]
    zoom = "" if side == TILE else f" (shown {TILE / side:.3g}x)"
    for i, (tile, text) in enumerate(columns):
        left = PAD + OVERVIEW_W + PAD + i * (TILE + PAD)
        shown = cv2.resize(tile, (TILE, TILE), interpolation=cv2.INTER_NEAREST) if side != TILE else tile
        sheet.paste(Image.fromarray(shown), (left, tiles_top))
        label_strip(draw, fonts[0], left, tiles_top, TILE, text + zoom)


def _fit_into(img: np.ndarray, width: int, height: int) -> tuple[Image.Image, float]:
    """The image scaled (area filter) to fit in width x height, and the scale factor used."""
    factor = min(width / img.shape[1], height / img.shape[0])
    size = (max(1, round(img.shape[1] * factor)), max(1, round(img.shape[0] * factor)))
    interp = cv2.INTER_AREA if factor < 1 else cv2.INTER_NEAREST
    return Image.fromarray(cv2.resize(img, size, interpolation=interp)), factor


def label_strip(draw: ImageDraw.ImageDraw, font, left: int, tiles_top: int, width: int, text: str) -> None:
    top = tiles_top - LABEL_H
    draw.rectangle([left, top, left + width - 1, tiles_top - 1], fill=STRIP)
    draw.text((left + 5, top + 3), fit_text(draw, text, font, width - 10), fill=TEXT, font=font)


def fit_text(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> str:
    """Shorten `text` with an ellipsis until it fits `width` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "...", font=font) > width:
        text = text[:-1]
    return text + "..."


def load_fonts():
    """Pillow's bundled font at readable sizes (no font files needed)."""
    try:
        return ImageFont.load_default(size=13), ImageFont.load_default(size=16)
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        font = ImageFont.load_default()
        return font, font
