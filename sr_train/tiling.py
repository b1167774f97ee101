"""Upscale an image of any size in bounded memory by running the model on overlapping tiles.

A convolutional network's output pixel depends only on the input pixels within its receptive
field. So each tile of `tile` LR pixels is run with `tile_pad` extra pixels of real image
around it (clamped at the image border, where the untiled run sees the same zero padding),
and only the centre of the result is kept. When the receptive field fits in the pad the
tiled result equals the untiled one (tests check it to float precision); for networks whose
receptive field is wider than the pad (RRDBNet) the far pixels' contribution is what decides
the (small) difference at tile seams.

`model` is either a `paddle.nn.Layer` (dygraph or `paddle.jit.load`ed) or any callable that
maps a float32 NCHW numpy array to a numpy array (e.g. an ONNX Runtime session wrapper from
`sr_train.engines`). It is called as it is: the caller puts a Layer in eval mode.
"""

from __future__ import annotations

import sys
from typing import Callable, Iterator

import numpy as np

# Paddle's CPU convolutions unfold their input (im2col), so RRDBNet's memory grows with the tile's
# area at 4x. Peak RSS of one forward pass of the dygraph RRDBNet (nb 23, nf 64, gc 32, x4, 1 thread)
# on side x side inputs, `bench/predict.py --memory --arch rrdbnet --engines paddle-dygraph`:
# 144 px 1.47 GB, 160 px 1.71 GB (and 2.1 GB at 192 px, measured with nb 1). A 128 px tile plus
# 2 x 16 px of pad is a 160 px input: under 2 GB. (sr_train.engines has the other runners' tiles.)
DEFAULT_TILE = 128
# Context around each tile. Exact (to float rounding) for models that see at most this far, e.g.
# Compact with nc <= 12 (receptive-field radius nc + 2 LR px, + 2 for the bicubic skip); deeper
# networks see further: a 1-block RRDBNet tiled at this pad differs from untiled by at most
# 0.05/255 (8/255 at pad 2; tests/test_tiling.py checks <= 1/255 on srkit's models).
DEFAULT_PAD = 16


def input_multiple(model) -> int:
    """Side lengths the model's input must be a multiple of (1 for most models).

    RRDBNet handles x2 and x1 by pixel-unshuffling the input by 2 and 4 first (as PaddleGAN and
    Real-ESRGAN do); such a model (or the engine wrapper running its export) says so with an
    `input_multiple` attribute. The image is then reflect-padded to that multiple, and tiles and
    pads are rounded up to it so that the unshuffle grid of every tile stays aligned.
    """
    return max(int(getattr(model, "input_multiple", 1) or 1), 1)


def upscale(
    model,
    lr: np.ndarray,
    scale: int,
    tile: int = DEFAULT_TILE,
    tile_pad: int = DEFAULT_PAD,
    on_tile: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Super-resolve `lr` (float32 HWC in [0, 1]) by `scale`; returns float32 HWC clipped to [0, 1].

    `tile=0` runs the whole image at once. Otherwise the image is cut into tiles of at most
    `tile` x `tile` LR pixels, each run with `tile_pad` pixels of context. `on_tile(n)` is
    called after each tile with the number of LR pixels it covered (for progress bars).
    This is the float result eval and validation score; `sr-train predict` consumes
    `upscaled_tiles` itself to write 8/16-bit samples without ever holding the float image.
    """
    height, width = _check_image(lr).shape[:2]
    size = (height * int(scale), width * int(scale))
    out = None
    for rows, cols, result in upscaled_tiles(model, lr, scale, tile, tile_pad, on_tile):
        if out is None:
            if result.shape[:2] == size:  # the whole image in one run: no second copy
                return result
            out = np.empty(size + result.shape[2:], np.float32)
        out[rows, cols] = result
    return out


def upscaled_tiles(
    model,
    lr: np.ndarray,
    scale: int,
    tile: int = DEFAULT_TILE,
    tile_pad: int = DEFAULT_PAD,
    on_tile: Callable[[int], None] | None = None,
) -> Iterator[tuple[slice, slice, np.ndarray]]:
    """Yield `(rows, cols, result)` for each tile in raster order (left to right, then down):
    `result` is the float32 HWC output, clipped to [0, 1], for `output[rows, cols]`.

    The output slices cover exactly `lr`'s size times `scale` (the padding to the model's input
    multiple is cut off). A caller that stores each result as it comes holds one tile's floats
    at a time instead of the whole float image (12 bytes per output pixel).
    """
    lr = _check_image(lr)
    scale = int(scale)
    height, width = lr.shape[:2]
    multiple = input_multiple(model)
    padded = _pad_to_multiple(lr, multiple)
    tile, tile_pad = _round_up(tile, multiple), _round_up(tile_pad, multiple)
    for y0, y1, x0, x1, result in _padded_tiles(model, padded, scale, tile, tile_pad):
        # Tiles start below the true size: it is at most multiple - 1 px short of the padded size.
        y1, x1 = min(y1, height), min(x1, width)
        result = result[: (y1 - y0) * scale, : (x1 - x0) * scale]
        np.clip(result, 0.0, 1.0, out=result)
        if on_tile is not None:
            on_tile((y1 - y0) * (x1 - x0))
        yield slice(y0 * scale, y1 * scale), slice(x0 * scale, x1 * scale), result


def _padded_tiles(model, img: np.ndarray, scale: int, tile: int, pad: int):
    """(y0, y1, x0, x1, result) per tile of an image whose sides are multiples of the model's input
    multiple; `result` is the model's output for img[y0:y1, x0:x1] (its context cut off), not clipped."""
    height, width = img.shape[:2]
    if tile <= 0 or (height <= tile and width <= tile):
        out = run_model(model, img)
        _check_output(out, img, scale)
        yield 0, height, 0, width, out
        return
    for y0 in range(0, height, tile):
        for x0 in range(0, width, tile):
            y1, x1 = min(y0 + tile, height), min(x0 + tile, width)
            py0, px0 = max(y0 - pad, 0), max(x0 - pad, 0)
            py1, px1 = min(y1 + pad, height), min(x1 + pad, width)
            result = run_model(model, img[py0:py1, px0:px1])
            _check_output(result, img[py0:py1, px0:px1], scale)
            oy, ox = (y0 - py0) * scale, (x0 - px0) * scale
            yield y0, y1, x0, x1, result[oy : oy + (y1 - y0) * scale, ox : ox + (x1 - x0) * scale]


def run_model(model, img: np.ndarray) -> np.ndarray:
    """Run `model` on one float32 HWC image and return float32 HWC (not clipped)."""
    batch = np.ascontiguousarray(img.transpose(2, 0, 1)[None], dtype=np.float32)
    # A Paddle Layer exists only if Paddle was imported; an ONNX runner never pays the ~2 s import.
    paddle = sys.modules.get("paddle")
    if paddle is not None and isinstance(model, paddle.nn.Layer):
        with paddle.no_grad():
            result = model(paddle.to_tensor(batch)).numpy()
    else:
        result = np.asarray(model(batch))
    return np.ascontiguousarray(result[0].transpose(1, 2, 0), dtype=np.float32)


def _check_image(lr: np.ndarray) -> np.ndarray:
    if lr.ndim != 3 or lr.shape[0] == 0 or lr.shape[1] == 0:
        raise ValueError(f"upscale expects an HWC image, got shape {lr.shape}")
    return lr.astype(np.float32, copy=False)


def _check_output(out: np.ndarray, img: np.ndarray, scale: int) -> None:
    expected = (img.shape[0] * scale, img.shape[1] * scale)
    if out.shape[:2] != expected:
        raise ValueError(
            f"the model turned a {img.shape[1]}x{img.shape[0]} input into {out.shape[1]}x{out.shape[0]}, "
            f"not x{scale}: is the scale right for these weights?"
        )


def _pad_to_multiple(img: np.ndarray, multiple: int) -> np.ndarray:
    """Reflect-pad bottom/right to a multiple of `multiple` (edge-pad when the image is too small to reflect)."""
    pad_h, pad_w = (-img.shape[0]) % multiple, (-img.shape[1]) % multiple
    if pad_h == 0 and pad_w == 0:
        return img
    mode = "reflect" if img.shape[0] > pad_h and img.shape[1] > pad_w else "edge"
    return np.pad(img, ((0, pad_h), (0, pad_w), (0, 0)), mode=mode)


def _round_up(value: int, multiple: int) -> int:
    value = max(int(value), 0)
    return -(-value // multiple) * multiple
