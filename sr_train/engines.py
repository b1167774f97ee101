"""The two ways `sr-train predict` runs a network: Paddle (dygraph) or ONNX Runtime.

- "paddle": a weights file is rebuilt as a dygraph `paddle.nn.Layer` (`sr_train.weights.load_model`);
  an export folder's `model.json` is loaded with `paddle.jit.load`. Neither goes through Paddle's
  inference predictor (`paddle.inference`), whose oneDNN path segfaults on this machine's CPU.
- "onnx": an export folder's `model.onnx`, or, for a weights file, an ONNX export made on the fly
  and kept in srkit's cache folder (`sr_train.cache`) keyed by the weights file's SHA-256, so the
  conversion (a few seconds) happens once.

Both are callables that `sr_train.tiling.upscale` accepts and carry `input_multiple`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from sr_train.cache import default_cache_dir
from sr_train.export import INFO_NAME, MODEL_STEM, ONNX_NAME, export_weights, quiet_paddle_import, read_info
from sr_train.onnx_runner import OnnxRunner
from sr_train.provenance import file_sha256
from sr_train.tiling import DEFAULT_TILE
from srdata.errors import UserError

ENGINES = ("paddle", "onnx")
# Measured with bench/predict.py (OMP_NUM_THREADS=1, CPU shared with other jobs), output MP/s:
# Compact nf 64 nc 16 x4, 3 x 256 px: onnx 0.92, Paddle dygraph 0.19, Paddle jit.load 0.15 (4.9x, 5.9x);
# same tile 128 for all: onnx 0.97 vs 0.19 (5.2x). RRDBNet nb 23 x4, 96 px: onnx 0.040, dygraph 0.0099,
# jit.load 0.0060 (4.1x, 6.7x). So ONNX Runtime is the default.
DEFAULT_ENGINE = "onnx"

# Default tile per runner, for peak memory under 2 GB with RRDBNet nb 23 nf 64 x4 (peak RSS of one
# forward pass on side x side inputs, `bench/predict.py --memory --arch rrdbnet`; side = tile + 2 x 16):
# - Paddle dygraph: 144 px 1.47 GB, 160 px 1.71 GB -> 128 (sr_train.tiling.DEFAULT_TILE);
# - Paddle jit.load of an export: 144 px 1.80 GB, 160 px 2.07 GB -> 112;
# - ONNX Runtime: 160 px 1.09 GB, 224 px 1.64 GB, 288 px 2.41 GB -> 192 (fewer, larger tiles: less
#   pad overhead, 1.36x the tile's pixels instead of 1.56x).
DYGRAPH_TILE = DEFAULT_TILE
PADDLE_EXPORT_TILE = 112
ONNX_TILE = 192


@dataclass
class Engine:
    """A loaded network ready for `upscale`: `model` is a Paddle Layer or an `OnnxRunner`."""

    name: str
    model: object
    scale: int
    in_nc: int
    default_tile: int


def open_engine(weights: str | os.PathLike, engine: str = DEFAULT_ENGINE, cache_dir: Path | None = None) -> Engine:
    """Load `weights` (a weights file or an `sr-train export` folder) for `engine`."""
    if engine not in ENGINES:
        raise UserError(f"--engine {engine!r}: use one of {', '.join(ENGINES)}")
    weights = Path(weights)
    if weights.is_dir():
        return _open_export(weights, engine)
    if not weights.is_file():
        raise UserError(f"--weights {weights}: no such file or folder: check the path")
    if engine == "paddle":
        from sr_train.weights.load import load_model

        disable_onednn()
        model = load_model(weights)
        return Engine("paddle", model, int(model.arch["scale"]), int(model.arch["in_nc"]), DYGRAPH_TILE)
    return _open_export(onnx_export_for(weights, cache_dir), "onnx")


def _open_export(folder: Path, engine: str) -> Engine:
    info = read_info(folder)
    if engine not in info.formats:
        runnable = [fmt for fmt in info.formats if fmt in ENGINES]
        other = f"choose --engine {runnable[0]}" if runnable else "pass one of its weights files as --weights"
        raise UserError(f"{folder}: has no {engine} export (it has {', '.join(info.formats)}): "
                        f"run `sr-train export --format {engine} --out {folder}` or {other}")
    if engine == "onnx":
        model, tile = OnnxRunner(folder / ONNX_NAME, info.input_multiple), ONNX_TILE
    else:
        paddle = quiet_paddle_import()
        disable_onednn()
        model = paddle.jit.load(str(folder / MODEL_STEM))
        model.eval()
        model.input_multiple = info.input_multiple
        tile = PADDLE_EXPORT_TILE
    return Engine(engine, model, info.scale, info.in_nc, tile)


def disable_onednn() -> None:
    """Turn Paddle's oneDNN kernels off (they are off by default, but FLAGS_use_mkldnn=1 in the
    environment would turn them on): with them, Paddle's inference path segfaults on this CPU."""
    paddle = quiet_paddle_import()
    paddle.set_flags({"FLAGS_use_mkldnn": False, "FLAGS_use_onednn": False})


def onnx_export_for(weights: Path, cache_dir: Path | None = None) -> Path:
    """The cache folder holding the ONNX export of `weights`, exporting it first if needed."""
    digest = file_sha256(weights)
    folder = (cache_dir or default_cache_dir()) / "onnx" / digest[:24]
    if not _has_onnx_export(folder, digest):
        print(f"exporting {weights} to ONNX (once; cached in {folder})", file=sys.stderr)
        export_weights(weights, "onnx", folder)
    return folder


def _has_onnx_export(folder: Path, digest: str) -> bool:
    if not (folder / INFO_NAME).is_file() or not (folder / ONNX_NAME).is_file():
        return False
    try:
        info = read_info(folder)
    except UserError:
        return False
    return info.weights_sha256 == digest and "onnx" in info.formats
