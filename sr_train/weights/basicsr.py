"""srkit weights as BasicSR / Real-ESRGAN files, the ones chaiNNer (spandrel), Real-ESRGAN's scripts
and shared model collections load: `model.pth` (a `torch.save` zip written by
`sr_train.weights.torch_zip`, the state dict under `params_ema` when it is an EMA, else `params`,
as BasicSR saves them) and `model.safetensors` (the same tensors, contiguous float32, no wrapper).

Parameter names come from the architecture's own table (`sr_train.models.to_basicsr_names`), which
also refuses networks those projects would build differently. Both files are read back with srkit's
own readers before they are put in place: they must hold exactly the exported tensors, under names
that map back to the same architecture.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from sr_train.models import complete_arch, to_basicsr_names
from sr_train.weights.foreign import read_foreign_detailed
from sr_train.weights.torch_zip import write_torch_zip
from srdata.atomic import write_bytes

PTH_NAME = "model.pth"
SAFETENSORS_NAME = "model.safetensors"
EMA_KEY = "params_ema"  # BasicSR's key for the EMA generator
RAW_KEY = "params"  # and for the trained weights themselves


def container_key(ema: bool) -> str:
    return EMA_KEY if ema else RAW_KEY


def write_basicsr(out_dir: str | os.PathLike, arch: dict, state: dict[str, np.ndarray], ema: bool) -> list[Path]:
    """Write `model.pth` and `model.safetensors` into `out_dir` (each appears whole, after both were
    checked); returns their paths."""
    from safetensors.numpy import save

    arch = complete_arch(arch)
    named = {name: np.ascontiguousarray(value, np.float32) for name, value in to_basicsr_names(arch, state).items()}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".export-", suffix=".tmp", dir=out_dir) as tmp:
        pth, safetensors = Path(tmp) / PTH_NAME, Path(tmp) / SAFETENSORS_NAME
        write_torch_zip(pth, {container_key(ema): named})
        write_bytes(safetensors, save(named, metadata={"format": "pt"}))
        for path in (pth, safetensors):
            check_written(path, arch, state)
        for path in (pth, safetensors):
            os.replace(path, out_dir / path.name)
    return [out_dir / PTH_NAME, out_dir / SAFETENSORS_NAME]


def check_written(path: Path, arch: dict, state: dict[str, np.ndarray]) -> None:
    """Read `path` back as a foreign file: same architecture, same tensors bit for bit."""
    found = read_foreign_detailed(path)
    if complete_arch(found.arch) != arch or found.state.keys() != state.keys() or not all(
            np.array_equal(found.state[name], value) for name, value in state.items()):
        raise RuntimeError(f"{path.name}: reading the written file back does not give the exported weights")
