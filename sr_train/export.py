"""Export a trained generator for deployment or sharing: a Paddle inference model, an ONNX file, or
BasicSR/Real-ESRGAN files.

An export folder holds `model.json` + `model.pdiparams` (format "paddle", `paddle.jit.save`),
`model.onnx` (format "onnx", converted by paddle2onnx from the same jit-saved program) and/or
`model.pth` + `model.safetensors` (format "basicsr", `sr_train.weights.basicsr`), plus `srkit.json`,
which records the architecture, scale and input multiple so that `sr-train predict --weights FOLDER`
can run a paddle or onnx export without the original weights. Paddle and ONNX exports have dynamic
batch, height and width. The ONNX file is verified against Paddle on a test image before it is put
in place: paddle2onnx has converted ops wrongly before (Paddle's leaky_relu, see
sr_train/models/ops.py), and a wrong export must not be shipped silently. The model card beside
an export is `sr_train.model_card`'s.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sr_train import quiet_paddle_logs
from sr_train.onnx_runner import OnnxRunner
from sr_train.provenance import file_sha256
from srdata.atomic import write_json
from srdata.errors import UserError, WriteError

FORMATS = ("paddle", "onnx", "basicsr")
MODEL_STEM = "model"  # jit.save prefix inside the export folder
ONNX_NAME = "model.onnx"
INFO_NAME = "srkit.json"
PTH_NAME = "model.pth"  # basicsr: the torch.save zip
SAFETENSORS_NAME = "model.safetensors"  # basicsr: the same tensors as safetensors
FORMAT_FILES = {"paddle": (f"{MODEL_STEM}.json", f"{MODEL_STEM}.pdiparams"), "onnx": (ONNX_NAME,),
                "basicsr": (PTH_NAME, SAFETENSORS_NAME)}  # what each format writes into the folder
ONNX_OPSET = 13  # DepthToSpace (pixel shuffle) and dynamic shapes; onnxruntime >= 1.17 runs it
ONNX_TOLERANCE = 1e-4  # max abs difference allowed between ONNX Runtime and Paddle on the test image
INFO_VERSION = 1


@dataclass(frozen=True)
class ExportInfo:
    """What `srkit.json` says about an export folder."""

    arch: dict
    scale: int
    input_multiple: int
    in_nc: int
    formats: tuple[str, ...]
    weights_sha256: str


def export_weights(weights: str | os.PathLike, fmt: str, out_dir: str | os.PathLike) -> Path:
    """Load `weights` (any format `load_model` reads) and export it as `fmt` into `out_dir`.

    Returns the main file written (`model.json`, `model.onnx` or `model.pth`).
    """
    from sr_train.weights.load import load_model  # Paddle is imported when an export runs, not for --help

    if fmt not in FORMATS:
        raise UserError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    quiet_paddle_import()
    if fmt == "basicsr":
        return export_basicsr(weights, out_dir)
    model = load_model(weights)
    return export_model(model, fmt, out_dir, weights_sha256=file_sha256(weights))


def export_basicsr(weights: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """`model.pth` + `model.safetensors` with BasicSR's names, the EMA when the file has one."""
    from sr_train.models import build_model, complete_arch  # Paddle-backed, as in export_weights
    from sr_train.weights.basicsr import write_basicsr
    from sr_train.weights.foreign import read_foreign_detailed
    from sr_train.weights.load import set_state_checked

    found = read_foreign_detailed(weights)
    arch = complete_arch(found.arch)
    model = build_model(arch)
    set_state_checked(model, found.state, weights)  # the weights fit their architecture
    out_dir = _checked_folder(out_dir)
    pth = out_dir / PTH_NAME
    write_basicsr(pth, out_dir / SAFETENSORS_NAME, arch, found.state, ema=found.is_ema)  # creates the folder
    _update_info(out_dir, model, "basicsr", file_sha256(weights))
    return pth


def _checked_folder(out_dir: str | os.PathLike) -> Path:
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir}: exists and is not a folder: choose a folder name")
    return out_dir


def _export_folder(out_dir: str | os.PathLike) -> Path:
    out_dir = _checked_folder(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file in the way higher up, no permission
        raise UserError(f"--out {out_dir}: cannot create this folder ({exc.strerror or exc}): choose another") from None
    return out_dir


def quiet_paddle_import():
    """Import Paddle without its start-up noise (see sr_train.quiet_paddle_logs)."""
    quiet_paddle_logs()
    import paddle

    return paddle


def export_model(model, fmt: str, out_dir: str | os.PathLike, weights_sha256: str = "") -> Path:
    """Export a loaded srkit model (eval mode) as `fmt` into `out_dir`; files appear atomically."""
    out_dir = _export_folder(out_dir)
    with tempfile.TemporaryDirectory(prefix=".export-", suffix=".tmp", dir=out_dir) as tmp:
        prefix = save_inference_model(model, Path(tmp) / MODEL_STEM)
        reference = reference_output(model)
        check_saved(reference, prefix, out_dir)
        if fmt == "paddle":
            written = [prefix.with_suffix(".json"), prefix.with_suffix(".pdiparams")]
        else:
            onnx_path = Path(tmp) / ONNX_NAME
            try:
                convert_to_onnx(prefix, onnx_path)
                verify_onnx(reference, onnx_path)
            except WriteError as exc:  # name the file the user asked for, not the temp folder's
                raise WriteError(out_dir / ONNX_NAME, exc.errno, exc.strerror, storage=exc.storage) from None
            except UserError:
                raise
            except Exception:  # onnxruntime cannot even load it: paddle2onnx's writer lost bytes
                raise _incomplete(out_dir / ONNX_NAME, "paddle2onnx") from None
            written = [onnx_path]
        for path in written:
            os.replace(path, out_dir / path.name)
    _update_info(out_dir, model, fmt, weights_sha256)
    return out_dir / written[0].name


def save_inference_model(model, prefix: Path) -> Path:
    """`paddle.jit.save` with dynamic batch, height and width (writes PREFIX.json + PREFIX.pdiparams)."""
    import paddle
    from paddle.static import InputSpec

    in_nc = int(model.arch["in_nc"])
    paddle.jit.save(model, str(prefix), input_spec=[InputSpec([None, in_nc, None, None], "float32", "x")])
    if not prefix.with_suffix(".json").is_file():  # Paddle < 3 writes .pdmodel; srkit needs PIR's .json
        raise RuntimeError(f"paddle.jit.save wrote no {prefix.with_suffix('.json').name}: Paddle >= 3 is required")
    return prefix


def reference_output(model) -> tuple[np.ndarray, np.ndarray]:
    """(the test image, the loaded model's output on it): what every exported file must reproduce."""
    import paddle

    image = probe_image(int(model.arch["in_nc"]), multiple=int(getattr(model, "input_multiple", 1)))
    with paddle.no_grad():
        return image, model(paddle.to_tensor(image)).numpy()


def check_saved(reference: tuple[np.ndarray, np.ndarray], prefix: Path, out_dir: Path) -> None:
    """Load back what `paddle.jit.save` wrote and run it on the test image. Paddle's C++ writer ignores
    write errors: a full disk or a file-size limit leaves truncated files and no error, which would
    then be put in place (or crash paddle2onnx). A model that does not load back, or computes
    something else, is a failed write (WriteError)."""
    import paddle

    image, expected = reference
    with paddle.no_grad():
        try:
            got = paddle.jit.load(str(prefix))(paddle.to_tensor(image)).numpy()
        except Exception:  # Paddle raises RuntimeError/ValueError/OSError variously on a truncated file
            got = None
    if got is None or got.shape != expected.shape or not np.allclose(got, expected, atol=ONNX_TOLERANCE):
        raise _incomplete(out_dir / prefix.with_suffix(".json").name, "paddle.jit.save")


def _incomplete(path: Path, writer: str) -> WriteError:
    return WriteError(path, None, f"{writer} wrote an incomplete model (it does not load back, and {writer} reports "
                                  "no write errors: the disk is probably full or a file-size limit was reached)",
                      storage=True)


def convert_to_onnx(prefix: Path, onnx_path: Path) -> None:
    """paddle2onnx's Python API on a jit-saved model; its console chatter is shown only on failure."""
    import paddle2onnx

    with _captured_output() as log:
        try:
            paddle2onnx.export(
                str(prefix.with_suffix(".json")),
                str(prefix.with_suffix(".pdiparams")),
                save_file=str(onnx_path),
                opset_version=ONNX_OPSET,
                enable_onnx_checker=True,
            )
        except Exception as exc:  # paddle2onnx raises bare Exceptions on unsupported ops
            failure = exc
        else:
            failure = None
    if isinstance(failure, OSError) and failure.errno is not None:  # a write that failed, not a conversion
        raise WriteError.from_os_error(onnx_path, failure)
    if failure is not None or not onnx_path.is_file():
        tail = " | ".join("".join(log).strip().splitlines()[-3:])
        raise UserError(f"paddle2onnx could not convert the model ({failure or 'no file written'}; {tail}): "
                        "use --format paddle")


def verify_onnx(reference: tuple[np.ndarray, np.ndarray], onnx_path: Path, tolerance: float = ONNX_TOLERANCE) -> float:
    """Run ONNX Runtime on the test image of `reference_output`; UserError if it differs from Paddle's
    output by more than `tolerance`."""
    image, expected = reference
    got = OnnxRunner(onnx_path)(image)
    if got.shape != expected.shape:
        raise UserError(f"{onnx_path.name}: ONNX output shape {got.shape} != Paddle's {expected.shape}: "
                        "the exporter mis-converted the model; use --format paddle")
    diff = float(np.abs(got - expected).max())
    if not diff <= tolerance:
        raise UserError(f"{onnx_path.name}: ONNX Runtime differs from Paddle by {diff:.2e} (> {tolerance:g}) "
                        "on the test image: the exporter mis-converted the model; use --format paddle")
    return diff


def probe_image(channels: int, multiple: int = 1, seed: int = 0) -> np.ndarray:
    """A 1 x C x H x W float32 image in [0, 1] with flat areas, edges and noise (sides not square,
    and not a power of two, to catch exporters that bake in a shape)."""
    height, width = 12 * multiple, 10 * multiple
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    base = np.stack([(xx + yy) / 2, (xx > 0.5).astype(float), np.sin(6 * yy) * 0.5 + 0.5][:channels]
                    + [xx] * max(channels - 3, 0))
    noisy = np.clip(base + rng.normal(0, 0.05, base.shape), 0, 1)
    return noisy[None].astype(np.float32)


def read_info(folder: str | os.PathLike) -> ExportInfo:
    """The `srkit.json` of an export folder; UserError when it is missing or not srkit's."""
    import json

    path = Path(folder) / INFO_NAME
    try:
        data = json.loads(path.read_text())
        return ExportInfo(arch=dict(data["arch"]), scale=int(data["scale"]), input_multiple=int(data["input_multiple"]),
                          in_nc=int(data["in_nc"]), formats=tuple(data["formats"]),
                          weights_sha256=str(data.get("weights_sha256", "")))
    except FileNotFoundError:
        raise UserError(f"{folder}: no {INFO_NAME}: not a folder written by `sr-train export`; "
                        "pass a weights file or export again") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: damaged ({exc}): export again with `sr-train export`") from None


def _update_info(out_dir: Path, model, fmt: str, weights_sha256: str) -> None:
    """Write srkit.json; formats already exported from the same weights are kept in its list."""
    formats = {fmt}
    try:
        old = read_info(out_dir)
        if old.weights_sha256 == weights_sha256 and old.arch == dict(model.arch):
            formats |= set(old.formats)
    except UserError:
        pass
    write_json(out_dir / INFO_NAME, {
        "version": INFO_VERSION,
        "arch": dict(model.arch),
        "scale": int(model.arch["scale"]),
        "input_multiple": int(getattr(model, "input_multiple", 1)),
        "in_nc": int(model.arch["in_nc"]),
        "formats": sorted(formats),
        "weights_sha256": weights_sha256,
    })


@contextlib.contextmanager
def _captured_output():
    """Send file descriptors 1 and 2 (C++ and Python prints alike) to a temp file while the block
    runs; the yielded list receives what was printed when the block ends."""
    import sys

    captured: list[str] = []
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile("w+") as log:
        try:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            yield captured
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            log.seek(0)
            captured.append(log.read())
