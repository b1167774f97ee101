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
Other formats (PaddleGAN .pdparams, BasicSR/Real-ESRGAN .pth) are read by `sr_train.weights.foreign`;
`sr_train.weights.load` reads any of them.
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
    tensors = {name: _as_float32(value) for name, value in state.items()}
    for name, value in (ema or {}).items():
        tensors[EMA_PREFIX + name] = _as_float32(value)
    metadata = {"format": FORMAT, "format_version": FORMAT_VERSION, "arch": json.dumps(arch, sort_keys=True),
                "meta": json.dumps(meta or {}, sort_keys=True)}
    write_bytes(path, safetensors_bytes(tensors, metadata))


def safetensors_bytes(tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> bytes:
    """A safetensors file's bytes, the same for the same tensors and metadata in every process.

    `safetensors.numpy.save` writes its JSON header from a hash map whose order changes from one
    process to the next (the `__metadata__` entries came out in a different order at each run), so
    the same weights gave different files. The header is re-serialised here with sorted keys, in the
    library's compact form, padded with spaces to the same length; the data after it is untouched.
    """
    from safetensors.numpy import save

    blob = save(tensors, metadata=metadata)
    length = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + length])
    text = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    if len(text) > length:  # cannot happen for the same content; keep the library's bytes then
        return blob
    return blob[:8] + text.ljust(length, b" ") + blob[8 + length :]


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


def looks_like_safetensors(path: Path) -> bool:
    """safetensors: an 8-byte little-endian header length, then a JSON header (whatever the file's suffix)."""
    with open(path, "rb") as handle:
        head = handle.read(9)
    return len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < path.stat().st_size
