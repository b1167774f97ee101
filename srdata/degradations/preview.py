"""The picture `srdata preview` draws: what each step of a pipeline does, and a few full draws.

For every image, on a detailed HR crop (the window with the most edges, as inspect's contact
sheet picks it):

    [HR crop] [step 1 alone] [step 2 alone] ...       each step forced to fire, applied to the HR
    [draw 1]  [draw 2] ...                            the whole pipeline, as `srdata build` would

Under each tile, the values that were drawn. Anything smaller than the crop (an LR, a
downscaled step) is shown enlarged with nearest neighbour, so its pixels stay visible.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageDraw

from srdata.degradations.ops import as_uint8
from srdata.degradations.pipeline import Block, OneOf, Pipeline, label, source_seed
from srdata.sheet import BACKGROUND, HEADER_TEXT, PAD, TEXT, TILE, detail_crop, fit_text, load_fonts

LINE_H = 16  # one caption line
MAX_LINES = 12  # caption lines under a tile at most (the rest is counted)
HEADER_H = 26
DEFAULT_DRAWS = 4


@dataclass(frozen=True)
class PreviewImage:
    name: str  # shown in the header
    bgr: np.ndarray  # the whole image, uint8 BGR
    sha256: str  # of its file: draws depend on it as a build's do


@dataclass(frozen=True)
class Tile:
    pixels: np.ndarray  # uint8 BGR, any size
    lines: list[str]


def hr_crop(bgr: np.ndarray, scale: int, side: int) -> np.ndarray:
    """The most detailed square window of at most `side` px, both sides a multiple of `scale`."""
    height, width = bgr.shape[:2]
    side = min(side, height - height % scale, width - width % scale)
    if side < scale:
        raise ValueError(f"image {width}x{height} is smaller than the scale {scale}")
    rgb = cv2.cvtColor(bgr[: height - height % scale, : width - width % scale], cv2.COLOR_BGR2RGB)
    lr = cv2.resize(rgb, (rgb.shape[1] // scale, rgb.shape[0] // scale), interpolation=cv2.INTER_AREA)
    x, y, found = detail_crop(rgb, lr, scale)
    side = min(side, found)
    return np.ascontiguousarray(bgr[y:y + side, x:x + side])


def step_tiles(pipeline: Pipeline, hr: np.ndarray, scale: int, seed: int, sha256: str) -> list[Tile]:
    """The HR crop, then each top-level step alone (forced to fire) applied to it."""
    lr_size = (hr.shape[1] // scale, hr.shape[0] // scale)
    tiles = [Tile(hr, [f"HR crop {hr.shape[1]}x{hr.shape[0]}"])]
    for index, step in enumerate(pipeline.steps):
        record = pipeline.draw_alone(index, source_seed(seed, f"preview-step:{sha256}:{index}"), scale)
        out = as_uint8(record.run(hr, lr_size))
        chance = "" if isinstance(step, OneOf) or step.p >= 1 else f" (p {step.p:g})"
        title = f"{index + 1}: {step.name}{chance}"
        if isinstance(step, Block) and step.name == "repeat":
            title += f" x{step.times.lo}-{step.times.hi}"
        tiles.append(Tile(out, [title] + [label(values) for values in record.steps]))
    return tiles


def draw_tiles(pipeline: Pipeline, hr: np.ndarray, scale: int, seed: int, sha256: str, draws: int) -> list[Tile]:
    """`draws` full random draws of the pipeline (the LR), with the steps that fired."""
    tiles = []
    for d in range(draws):
        record = pipeline.draw(source_seed(seed, f"preview-draw:{sha256}:{d}"), scale)
        lr = record.apply(hr)
        lines = [f"draw {d + 1}: LR {lr.shape[1]}x{lr.shape[0]}"] + [label(values) for values in record.steps]
        tiles.append(Tile(lr, lines))
    return tiles


def render_preview(pipeline: Pipeline, images: list[PreviewImage], scale: int, draws: int = DEFAULT_DRAWS,
                   seed: int = 0, crop: int = TILE) -> Image.Image:
    """The whole picture (RGB)."""
    fonts = load_fonts()
    blocks = []
    for image in images:
        hr = hr_crop(image.bgr, scale, crop)
        rows = [step_tiles(pipeline, hr, scale, seed, image.sha256),
                draw_tiles(pipeline, hr, scale, seed, image.sha256, draws)]
        blocks.append((image.name, rows))
    columns = max(len(row) for _, rows in blocks for row in rows)
    width = PAD + columns * (TILE + PAD)
    heights = [HEADER_H + sum(_row_height(row) for row in rows) for _, rows in blocks]
    canvas = Image.new("RGB", (width, HEADER_H + sum(heights) + PAD), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    title = (f"pipeline {pipeline.name} ({pipeline.origin}; sha256 {pipeline.sha256[:12]})   x{scale}   "
             f"seed {seed}   top: each step alone on the HR, bottom: whole draws (LR)")
    draw.text((PAD, 5), fit_text(draw, title, fonts[1], width - 2 * PAD), fill=HEADER_TEXT, font=fonts[1])
    top = HEADER_H
    for (name, rows), height in zip(blocks, heights):
        draw.text((PAD, top + 5), fit_text(draw, name, fonts[1], width - 2 * PAD), fill=HEADER_TEXT, font=fonts[1])
        row_top = top + HEADER_H
        for row in rows:
            for column, tile in enumerate(row):
                _paste_tile(canvas, draw, fonts[0], PAD + column * (TILE + PAD), row_top, tile)
            row_top += _row_height(row)
        top += height
    return canvas


def _row_height(row: list[Tile]) -> int:
    return TILE + PAD + LINE_H * max(min(len(tile.lines), MAX_LINES) for tile in row) + PAD


def _paste_tile(canvas: Image.Image, draw: ImageDraw.ImageDraw, font, left: int, top: int, tile: Tile) -> None:
    pixels = tile.pixels
    height, width = pixels.shape[:2]
    factor = min(TILE / width, TILE / height)
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    shown = cv2.resize(pixels, size, interpolation=cv2.INTER_NEAREST if factor >= 1 else cv2.INTER_AREA)
    canvas.paste(Image.fromarray(cv2.cvtColor(shown, cv2.COLOR_BGR2RGB)), (left, top))
    lines = tile.lines
    if len(lines) > MAX_LINES:
        lines = lines[: MAX_LINES - 1] + [f"... {len(tile.lines) - MAX_LINES + 1} more"]
    for i, line in enumerate(lines):
        draw.text((left + 2, top + TILE + PAD // 2 + i * LINE_H), fit_text(draw, line, font, TILE - 4),
                  fill=HEADER_TEXT if i == 0 else TEXT, font=font)
