"""srkit's weights files: safetensors (no pickle, so loading one never runs code) with the
architecture in the metadata, so eval/predict/export rebuild the network without a recipe.

Layout of a srkit `.safetensors` file:
- tensors `NAME` — the generator's state dict under srkit's parameter names (float32);
- tensors `ema.NAME` — the exponential moving average of the same parameters, when training kept
  one (srkit's own names never start with `ema.`). Readers that want "the" weights take the EMA:
  it is what ESRGAN/Real-ESRGAN release and usually scores higher;
- metadata (string -> string, as safetensors requires): `format` = "srkit", `format_version`,
  `arch` = JSON architecture dict (see `sr_train.models`), `meta` = JSON of anything else
  (iteration, validation metrics, recipe name...).
Other formats (PaddleGAN .pdparams, BasicSR/Real-ESRGAN .pth) go through `sr_train.foreign`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from srdata.atomic import write_bytes
from srdata.errors import UserError

FORMAT = "srkit"
FORMAT_VERSION = "1"
EMA_PREFIX = "ema."
SUFFIX = ".safetensors"


@dataclass
class WeightsFile:
    """Everything a srkit weights file holds."""

    arch: dict | None
    state: dict[str, np.ndarray]
    ema: dict[str, np.ndarray] | None = None
    meta: dict = field(default_factory=dict)

    def preferred(self) -> dict[str, np.ndarray]:
        """The weights to run: the EMA when present, else the raw generator."""
        return self.ema if self.ema else self.state


def save_weights(path: str | os.PathLike, state: dict[str, np.ndarray], arch: dict, meta: dict | None = None,
                 ema: dict[str, np.ndarray] | None = None) -> None:
    """Write a srkit .safetensors file atomically (generator, optional EMA, arch and meta as JSON)."""
    from safetensors.numpy import save

    tensors = {name: _as_float32(value) for name, value in state.items()}
    for name, value in (ema or {}).items():
        tensors[EMA_PREFIX + name] = _as_float32(value)
    metadata = {"format": FORMAT, "format_version": FORMAT_VERSION, "arch": json.dumps(arch, sort_keys=True),
                "meta": json.dumps(meta or {}, sort_keys=True)}
    write_bytes(path, save(tensors, metadata=metadata))


def _as_float32(value) -> np.ndarray:
    array = np.asarray(value)
    return np.ascontiguousarray(array.astype(np.float32) if array.dtype.kind == "f" else array)


def read_weights_file(path: str | os.PathLike) -> WeightsFile:
    """Read a srkit .safetensors file; a missing, truncated or foreign file is a UserError."""
    from safetensors import SafetensorError

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such weights file: check the path")
    try:
        tensors, metadata = read_safetensors(path)
    except (SafetensorError, ValueError, OSError) as exc:
        raise UserError(f"{path}: not a readable .safetensors file ({' '.join(str(exc).split())}): "
                        "it may be truncated; use another checkpoint") from None
    arch = _json_field(metadata, "arch", path) if "arch" in metadata else None
    meta = _json_field(metadata, "meta", path) if "meta" in metadata else {}
    state = {k: v for k, v in tensors.items() if not k.startswith(EMA_PREFIX)}
    ema = {k[len(EMA_PREFIX):]: v for k, v in tensors.items() if k.startswith(EMA_PREFIX)} or None
    return WeightsFile(arch=arch, state=state, ema=ema, meta=meta)


def read_safetensors(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(tensors, metadata) of a safetensors file; weights files and training states both use it.

    `safetensors.numpy.load` drops the metadata, where srkit keeps the architecture and the
    training state's JSON, so the file is read with `safe_open`, which checks the header and the
    file's length. Raises SafetensorError (damaged or truncated) or OSError for the caller to
    turn into a one-line UserError naming the file.
    """
    from safetensors import safe_open

    with safe_open(str(path), "numpy") as f:
        return {name: f.get_tensor(name) for name in f.keys()}, f.metadata() or {}


def _json_field(metadata: dict, key: str, path: Path):
    try:
        return json.loads(metadata[key])
    except json.JSONDecodeError:
        raise UserError(f"{path}: metadata {key!r} is not valid JSON: the file is damaged; "
                        "use another checkpoint") from None


def read_weights(path: str | os.PathLike) -> tuple[dict | None, dict[str, np.ndarray]]:
    """(arch or None, generator state dict with srkit's names), EMA preferred when present.

    `.safetensors` is read here; any other file goes to `sr_train.foreign.read_foreign`.
    """
    if Path(path).suffix.lower() != SUFFIX:
        from sr_train.foreign import read_foreign

        return read_foreign(path)
    weights = read_weights_file(path)
    return weights.arch, weights.preferred()


def load_model(path: str | os.PathLike, arch_override: dict | None = None):
    """The network stored in `path`, in eval mode.

    The architecture comes from the file, or from `sr_train.foreign.infer_arch` when the file has
    none; `arch_override` (e.g. the recipe's model) must agree with the file's settings that it
    names, else a one-line UserError lists the differing keys.
    """
    from sr_train.models import build_model, complete_arch

    file_arch, state = read_weights(path)
    if file_arch is None:
        from sr_train.foreign import infer_arch

        file_arch = infer_arch(state)
    arch = complete_arch(file_arch)
    if arch_override is not None:
        check_arch_agrees(arch, arch_override, path)
        arch = complete_arch({**arch, **arch_override})
    model = build_model(arch)
    set_state_checked(model, state, path)
    model.eval()
    return model


def check_arch_agrees(file_arch: dict, wanted: dict, path) -> None:
    """UserError listing every setting of `wanted` that differs from the weights file's."""
    diffs = [f"{key}: file {file_arch.get(key)!r}, wanted {value!r}"
             for key, value in wanted.items() if file_arch.get(key) != value]
    if diffs:
        raise UserError(f"{path}: architecture mismatch ({'; '.join(diffs)}): "
                        "change the recipe's model settings to match the weights or use other weights")


def state_mismatches(model, state: dict[str, np.ndarray]) -> list[str]:
    """Human-readable differences between a model's parameters and a state dict (names, shapes)."""
    expected = {name: tuple(value.shape) for name, value in model.state_dict().items()}
    problems = [f"missing {name}" for name in expected if name not in state]
    problems += [f"unexpected {name}" for name in state if name not in expected]
    problems += [f"{name} shape {tuple(state[name].shape)} != {shape}"
                 for name, shape in expected.items() if name in state and tuple(state[name].shape) != shape]
    return problems


def set_state_checked(model, state: dict[str, np.ndarray], path) -> None:
    """Load `state` into `model`, refusing (UserError naming the keys) anything but an exact match."""
    problems = state_mismatches(model, state)
    if problems:
        shown = "; ".join(problems[:6]) + (f"; ... {len(problems) - 6} more" if len(problems) > 6 else "")
        raise UserError(f"{path}: weights do not fit the architecture ({shown}): "
                        "check the model settings or the weights file")
    model.set_state_dict({name: np.asarray(value, np.float32) for name, value in state.items()})


def model_state(model) -> dict[str, np.ndarray]:
    """A model's state dict as numpy arrays (copies), ready for `save_weights`."""
    return {name: value.numpy().copy() for name, value in model.state_dict().items()}
