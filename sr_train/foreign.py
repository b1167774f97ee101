"""Weights from other SR projects, read safely and renamed to srkit's parameter names.

Formats (told apart by content, not by extension):
- PaddleGAN `.pdparams`: one pickle of a dict of numpy arrays, either flat (a generator state
  dict, as `paddle.save(model.state_dict())` writes it, with the extra key
  `StructuredToParameterName@@`) or nested (`{"generator": ..., "discriminator": ...}`, as
  PaddleGAN's trainer writes `iter_N_weight.pdparams`; newer Paddle pickles each tensor as a
  `(name, array)` tuple there).
- BasicSR / Real-ESRGAN `.pth` (`torch.save`, zip or legacy): the state dict under `params_ema`
  (preferred: the EMA is what Real-ESRGAN releases), `params`, or bare.
- A `.safetensors` file under another extension (`paddle.save(..., safetensors=True)`).
Every pickle goes through `sr_train.safe_pickle`, which refuses anything but arrays.

srkit's `rrdbnet` already uses PaddleGAN's names, and `compact` uses Real-ESRGAN's
SRVGGNetCompact names (`body.{i}`), so only BasicSR's RRDBNet needs renaming.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sr_train import safe_pickle
from srdata.errors import UserError

# Containers that hold the generator, most preferred first: BasicSR's EMA and raw weights,
# PaddleGAN's trainer checkpoints.
GENERATOR_KEYS = ("params_ema", "params", "generator")
# Bookkeeping entries `paddle.save` adds next to the parameters.
PADDLE_NAME_TABLE = "StructuredToParameterName@@"
PADDLE_SPLIT_INFO = "UnpackBigParamInfor@@"  # (sic) Paddle's spelling

# BasicSR RRDBNet name -> srkit/PaddleGAN RRDBNet name (the trunk's blocks are handled by regex).
_BASICSR_RRDB_RENAMES = {
    "conv_body": "trunk_conv",
    "conv_up1": "upconv1",
    "conv_up2": "upconv2",
    "conv_hr": "HRconv",
}
_BASICSR_BLOCK = re.compile(r"^body\.(\d+)\.rdb([123])\.(conv[1-5]\.(?:weight|bias))$")
_SRKIT_BLOCK = re.compile(r"^RRDB_trunk\.(\d+)\.RDB1\.conv1\.weight$")
_COMPACT_PARAM = re.compile(r"^body\.(\d+)\.(weight|bias)$")


@dataclass
class ForeignWeights:
    """What `read_foreign` found: the mapped state, its inferred arch, and where it came from."""

    arch: dict
    state: dict[str, np.ndarray]
    format: str  # "torch", "paddle pickle" or "safetensors"
    container: str | None  # e.g. "params_ema"; None for a bare state dict


def read_foreign(path: str | Path) -> tuple[dict | None, dict[str, np.ndarray]]:
    """(architecture, generator state dict with srkit's names) of a PaddleGAN/BasicSR/Real-ESRGAN file."""
    found = read_foreign_detailed(path)
    return found.arch, found.state


def read_foreign_detailed(path: str | Path) -> ForeignWeights:
    """`read_foreign` plus the file's format and the container the weights were taken from."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such weights file: check the path")
    if _looks_like_safetensors(path):
        return _read_safetensors(path)
    kind, tree = safe_pickle.load_file(path)
    state, container = _pick_generator(tree, path)
    state = to_srkit_names(_clean_state(state, path))
    return ForeignWeights(infer_arch(state, source=str(path)), state,
                          "torch" if kind == "torch" else "paddle pickle", container)


def _looks_like_safetensors(path: Path) -> bool:
    """safetensors: an 8-byte little-endian header length, then a JSON header."""
    with open(path, "rb") as handle:
        head = handle.read(9)
    return len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < path.stat().st_size


def _read_safetensors(path: Path) -> ForeignWeights:
    from sr_train.weights import read_weights_file

    weights = read_weights_file(path)
    state = to_srkit_names(_clean_state(weights.preferred(), path))
    arch = weights.arch if weights.arch is not None else infer_arch(state, source=str(path))
    return ForeignWeights(arch, state, "safetensors", "ema" if weights.ema else None)


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
    """The generator's state dict inside a loaded file, and the key it was under (None if bare)."""
    if not isinstance(tree, dict):
        raise UserError(f"{path}: holds a {type(tree).__name__}, not a dict of weights: "
                        "expected a state dict (or one under params_ema/params/generator)")
    if _is_state_dict(tree):
        return tree, None
    for key in GENERATOR_KEYS:
        if isinstance(tree.get(key), dict) and _is_state_dict(tree[key]):
            return tree[key], key
    shown = ", ".join(repr(k) for k in list(tree)[:8])
    raise UserError(f"{path}: no generator weights found (top-level keys: {shown}): expected a state dict "
                    f"or one under {', '.join(GENERATOR_KEYS)}")


def _clean_state(state: dict, path: Path) -> dict[str, np.ndarray]:
    """Plain `name -> array` with floats as float32: Paddle's bookkeeping dropped, split arrays joined,
    `(name, array)` tuples unwrapped, a DataParallel `module.` prefix removed."""
    state = _join_split_params(dict(state), path)
    state.pop(PADDLE_NAME_TABLE, None)
    clean: dict[str, np.ndarray] = {}
    for name, value in state.items():
        array = value[1] if _is_paddle_tensor_tuple(value) else value
        if not isinstance(name, str) or not isinstance(array, np.ndarray) or array.dtype.kind not in "fiub":
            raise UserError(f"{path}: entry {name!r} is not a numeric array: not a weights file srkit can read")
        clean[name] = np.ascontiguousarray(array.astype(np.float32) if array.dtype.kind == "f" else array)
    if clean and all(name.startswith("module.") for name in clean):
        clean = {name[len("module."):]: value for name, value in clean.items()}
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


def to_srkit_names(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Rename BasicSR RRDBNet keys (`body.{i}.rdb{k}.conv{j}`, `conv_body`, `conv_up1/2`, `conv_hr`)
    to srkit's/PaddleGAN's (`RRDB_trunk.{i}.RDB{k}.conv{j}`, `trunk_conv`, `upconv1/2`, `HRconv`).

    Other names are left as they are: PaddleGAN's RRDBNet and Real-ESRGAN's SRVGGNetCompact already
    match srkit's `rrdbnet` and `compact`.
    """
    if not any(_BASICSR_BLOCK.match(name) for name in state):
        return dict(state)
    renamed = {}
    for name, value in state.items():
        block = _BASICSR_BLOCK.match(name)
        if block:
            index, rdb, rest = block.groups()
            renamed[f"RRDB_trunk.{index}.RDB{rdb}.{rest}"] = value
            continue
        layer, _, param = name.partition(".")
        renamed[f"{_BASICSR_RRDB_RENAMES.get(layer, layer)}.{param}"] = value
    return renamed


def infer_arch(state: dict[str, np.ndarray], source: str = "weights") -> dict:
    """The architecture dict (see `sr_train.models`) that fits a state dict with srkit's names.

    From shapes: RRDBNet's nf (conv_first out), nb (trunk blocks), gc (dense-block growth), out_nc
    (conv_last out) and scale (conv_first's input channels = in_nc × unshuffle², unshuffle 1/2/4 for
    ×4/×2/×1, taking in_nc = out_nc); Compact's nf, nc (convs between first and last), scale (last
    conv out = out_nc × scale²) and activation (PReLU slopes present or not). A file without an
    architecture record is a foreign one, so a Compact gets Real-ESRGAN's nearest skip.
    """
    if "conv_first.weight" in state and "conv_last.weight" in state:
        return _infer_rrdbnet(state, source)
    if "body.0.weight" in state:
        return _infer_compact(state, source)
    shown = ", ".join(list(state)[:5]) or "none"
    raise UserError(f"{source}: cannot tell the architecture from the parameter names (first: {shown}): "
                    "expected ESRGAN/RRDBNet (conv_first, RRDB_trunk or body.N.rdbK, conv_last) or "
                    "SRVGGNetCompact (body.N)")


def _shape(state: dict[str, np.ndarray], name: str, source: str, ndim: int) -> tuple[int, ...]:
    if name not in state or state[name].ndim != ndim:
        raise UserError(f"{source}: parameter {name} is missing or not {ndim}-D: the file is not a complete model")
    return tuple(int(n) for n in state[name].shape)


def _infer_rrdbnet(state: dict[str, np.ndarray], source: str) -> dict:
    nf, first_in = _shape(state, "conv_first.weight", source, 4)[:2]
    out_nc = _shape(state, "conv_last.weight", source, 4)[0]
    blocks = sorted(int(m.group(1)) for m in map(_SRKIT_BLOCK.match, state) if m)
    if not blocks:
        raise UserError(f"{source}: RRDBNet weights without RRDB_trunk blocks: the file is not a complete model")
    gc = _shape(state, f"RRDB_trunk.{blocks[0]}.RDB1.conv1.weight", source, 4)[0]
    scale, in_nc = 4, first_in
    for unshuffle, candidate in ((2, 2), (4, 1)):
        if first_in == out_nc * unshuffle * unshuffle:
            scale, in_nc = candidate, out_nc
    return {"arch": "rrdbnet", "in_nc": in_nc, "out_nc": out_nc, "nf": nf, "nb": len(blocks), "gc": gc,
            "scale": scale}


def _infer_compact(state: dict[str, np.ndarray], source: str) -> dict:
    layers: dict[int, int] = {}
    for name, value in state.items():
        match = _COMPACT_PARAM.match(name)
        if match and match.group(2) == "weight":
            layers[int(match.group(1))] = value.ndim
    convs = sorted(i for i, ndim in layers.items() if ndim == 4)
    if len(convs) < 2:
        raise UserError(f"{source}: SRVGGNetCompact weights need at least a first and a last conv, found {len(convs)}")
    nf, in_nc = _shape(state, f"body.{convs[0]}.weight", source, 4)[:2]
    last_out = _shape(state, f"body.{convs[-1]}.weight", source, 4)[0]
    scale = math.isqrt(last_out // in_nc) if last_out % in_nc == 0 else 0
    if scale < 1 or scale * scale * in_nc != last_out:
        raise UserError(f"{source}: the last conv outputs {last_out} channels, not {in_nc} × scale²: "
                        "not an SRVGGNetCompact model srkit can run")
    has_prelu = any(ndim == 1 for ndim in layers.values())
    # Without PReLU slopes the activation leaves no trace in the file; Real-ESRGAN's other choice
    # that srkit shares, ReLU, is assumed (a LeakyReLU model would need its arch written by hand).
    return {"arch": "compact", "in_nc": in_nc, "out_nc": in_nc, "nf": nf, "nc": len(convs) - 2, "scale": scale,
            "skip": "nearest", "act": "prelu" if has_prelu else "relu"}


def describe(found: ForeignWeights) -> str:
    """One line for the CLI: what was read and which architecture it is."""
    where = f" (from '{found.container}')" if found.container else ""
    return f"{found.format} weights{where}, {len(found.state)} tensors, arch {json.dumps(found.arch, sort_keys=True)}"


def convert_weights(src: str | Path, dst: str | Path) -> ForeignWeights:
    """Write the generator of any readable weights file as a srkit `.safetensors` (with its arch).

    The weights are loaded into the network first, so a file that does not fit its inferred
    architecture is refused here rather than at the first `fit`/`predict`.
    """
    from sr_train.models import build_model
    from sr_train.weights import SUFFIX, save_weights, set_state_checked

    src, dst = Path(src), Path(dst)
    if dst.suffix.lower() != SUFFIX:
        raise UserError(f"{dst}: the output is a srkit weights file; give a name ending in {SUFFIX}")
    if dst.exists() and src.exists() and dst.resolve() == src.resolve():
        raise UserError(f"{dst}: same file as the input; give another output name")
    found = read_foreign_detailed(src)
    set_state_checked(build_model(found.arch), found.state, src)
    meta = {"converted_from": src.name, "source_format": found.format, "source_container": found.container}
    save_weights(dst, found.state, found.arch, meta=meta)
    return found
