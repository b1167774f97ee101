"""Weights from other SR projects, read safely and renamed to srkit's parameter names.

Formats (told apart by content, not by extension):
- PaddleGAN `.pdparams`: one pickle of a dict of numpy arrays, either flat (a generator state
  dict, as `paddle.save(model.state_dict())` writes it, with the extra key
  `StructuredToParameterName@@`) or nested (`{"generator": ..., "discriminator": ...}`, as
  PaddleGAN's trainer writes `iter_N_weight.pdparams`; newer Paddle pickles each tensor as a
  `(name, array)` tuple there).
- PyTorch files (`torch.save`, zip or legacy, whatever the extension: `.pth`, `.pt`, `.ckpt`): the
  state dict bare or under one of the keys spandrel (chaiNNer) unwraps (`params_ema` preferred: the
  EMA is what Real-ESRGAN releases), or alone inside a one-key dict; a `module.` (DataParallel) or
  `netG.` prefix on every name is removed. BasicSR/Real-ESRGAN, original ESRGAN, BSRGAN/RealSR and
  SRVGGNetCompact names are all understood (`sr_train.models.to_srkit_names`).
- A `.safetensors` file under another extension (`paddle.save(..., safetensors=True)`).
Every pickle goes through `sr_train.weights.safe_pickle`, which refuses anything but arrays.

Renaming to srkit's parameter names and reading the architecture off the shapes belong to each
architecture (`sr_train.models.to_srkit_names`, `infer_arch`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sr_train.models import infer_arch, to_srkit_names
from sr_train.weights.safe_pickle import load_file
from sr_train.weights.srkit import WeightsFile, looks_like_safetensors, read_weights_file
from srdata.errors import UserError

# Containers that hold the generator, most preferred first: BasicSR's EMA (both spellings) and raw
# weights, PaddleGAN's trainer checkpoints, then the other wrappers spandrel unwraps (Lightning
# `.ckpt`, training scripts' `model`/`net`).
BASICSR_EMA_KEY, BASICSR_RAW_KEY = "params_ema", "params"  # where BasicSR saves the EMA and the raw generator
GENERATOR_KEYS = (BASICSR_EMA_KEY, "params-ema", BASICSR_RAW_KEY, "generator", "model_state_dict", "state_dict", "model",
                  "net")
EMA_CONTAINERS = (BASICSR_EMA_KEY, "params-ema", "ema")
# Name prefixes removed when every parameter has them: DataParallel's, and BasicSR-style `netG.`.
COMMON_PREFIXES = ("module.", "netG.")
# Bookkeeping entries `paddle.save` adds next to the parameters.
PADDLE_NAME_TABLE = "StructuredToParameterName@@"
PADDLE_SPLIT_INFO = "UnpackBigParamInfor@@"  # (sic) Paddle's spelling


@dataclass
class ForeignWeights:
    """What `read_foreign` found: the mapped state, its inferred arch, and where it came from."""

    arch: dict
    state: dict[str, np.ndarray]
    format: str  # "torch", "paddle pickle" or "safetensors"
    container: str | None  # e.g. "params_ema"; None for a bare state dict
    meta: dict = field(default_factory=dict)  # a srkit file's metadata (training record); {} for others

    @property
    def is_ema(self) -> bool:
        """True when the weights are an exponential moving average (by their container's name)."""
        return self.container in EMA_CONTAINERS


def read_foreign(path: str | Path) -> tuple[dict | None, dict[str, np.ndarray]]:
    """(architecture, generator state dict with srkit's names) of a PaddleGAN/BasicSR/Real-ESRGAN file."""
    found = read_foreign_detailed(path)
    return found.arch, found.state


def read_foreign_detailed(path: str | Path) -> ForeignWeights:
    """`read_foreign` plus the file's format and the container the weights were taken from."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such weights file: check the path")
    if looks_like_safetensors(path):
        return from_safetensors(read_weights_file(path), path)
    kind, tree = load_file(path)
    state, container = _pick_generator(tree, path)
    state = to_srkit_names(_clean_state(state, path), str(path))
    return ForeignWeights(infer_arch(state, source=str(path)), state,
                          "torch" if kind == "torch" else "paddle pickle", container)


def from_safetensors(weights: WeightsFile, path: str | Path) -> ForeignWeights:
    """A `.safetensors` file already read (`weights`), with other projects' names renamed to srkit's and
    the architecture inferred when the file records none."""
    state = to_srkit_names(_clean_state(weights.preferred(), path), str(path))
    arch = weights.arch if weights.arch is not None else infer_arch(state, source=str(path))
    return ForeignWeights(arch, state, "safetensors", "ema" if weights.ema else None, weights.meta)


def _is_array_like(value) -> bool:
    return isinstance(value, np.ndarray) or _is_paddle_tensor_tuple(value)


def _is_paddle_tensor_tuple(value) -> bool:
    """Paddle >= 2.1 pickles a tensor inside a nested dict as `(tensor name, array)`."""
    return (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str)
            and isinstance(value[1], np.ndarray))


def _is_state_dict(tree) -> bool:
    params = {k: v for k, v in tree.items() if k not in (PADDLE_NAME_TABLE, PADDLE_SPLIT_INFO)}
    return bool(params) and all(_is_array_like(v) for v in params.values())


def _pick_generator(tree, path: Path) -> tuple[dict, str | None]:
    """The generator's state dict inside a loaded file, and the key it was under (None if bare):
    the tree itself, else under the first of GENERATOR_KEYS holding one, else inside the only entry
    of a one-key dict."""
    if not isinstance(tree, dict):
        raise UserError(f"{path}: holds a {type(tree).__name__}, not a dict of weights: "
                        f"expected a state dict (or one under {', '.join(GENERATOR_KEYS)})")
    if _is_state_dict(tree):
        return tree, None
    for key in GENERATOR_KEYS:
        if isinstance(tree.get(key), dict) and _is_state_dict(tree[key]):
            return tree[key], key
    if len(tree) == 1:
        (key, inner), = tree.items()
        if isinstance(inner, dict) and _is_state_dict(inner):
            return inner, str(key)
    shown = ", ".join(repr(k) for k in list(tree)[:8])
    raise UserError(f"{path}: no generator weights found (top-level keys: {shown}): expected a state dict "
                    f"or one under {', '.join(GENERATOR_KEYS)}")


def _clean_state(state: dict, path: Path) -> dict[str, np.ndarray]:
    """Plain `name -> array` with floats as float32: Paddle's bookkeeping dropped, split arrays joined,
    `(name, array)` tuples unwrapped, a `module.` or `netG.` prefix on every name removed."""
    state = _join_split_params(dict(state), path)
    state.pop(PADDLE_NAME_TABLE, None)
    clean: dict[str, np.ndarray] = {}
    for name, value in state.items():
        array = value[1] if _is_paddle_tensor_tuple(value) else value
        if not isinstance(name, str) or not isinstance(array, np.ndarray) or array.dtype.kind not in "fiub":
            raise UserError(f"{path}: entry {name!r} is not a numeric array: not a weights file srkit can read")
        clean[name] = np.ascontiguousarray(array.astype(np.float32) if array.dtype.kind == "f" else array)
    for prefix in COMMON_PREFIXES:
        if clean and all(name.startswith(prefix) for name in clean):
            clean = {name[len(prefix):]: value for name, value in clean.items()}
    return clean


def _join_split_params(state: dict, path: Path) -> dict:
    """Undo `paddle.save`'s splitting of >1 GiB arrays (protocol 2/3) into `NAME@@.i` slices."""
    info = state.pop(PADDLE_SPLIT_INFO, None)
    if info is None:
        return state
    try:
        for name, record in info.items():
            parts = [np.asarray(state.pop(part)).ravel() for part in record["slices"]]
            state[name] = np.concatenate(parts).reshape(record["OriginShape"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UserError(f"{path}: its split-array table {PADDLE_SPLIT_INFO} is damaged ({exc})") from None
    return state


def describe(found: ForeignWeights) -> str:
    """One line for the CLI: what was read and which architecture it is."""
    where = f" (from '{found.container}')" if found.container else ""
    return f"{found.format} weights{where}, {len(found.state)} tensors, arch {json.dumps(found.arch, sort_keys=True)}"
