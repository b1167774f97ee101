"""srkit weights as BasicSR / Real-ESRGAN files, the ones chaiNNer (spandrel), Real-ESRGAN's scripts
and shared model collections load: a `.pth` (a `torch.save` zip written by
`sr_train.weights.torch_zip`, the state dict under `params_ema` when it is an EMA, else `params`,
as BasicSR saves them) and a `.safetensors` (the same tensors, contiguous float32, no wrapper).
`sr-train export` names them (`sr_train.export`).

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
from sr_train.weights.foreign import BASICSR_EMA_KEY, BASICSR_RAW_KEY, read_foreign_detailed
from sr_train.weights.srkit import safetensors_bytes
from sr_train.weights.torch_zip import write_torch_zip
from srdata.atomic import write_bytes

def container_key(ema: bool) -> str:
    """The key BasicSR saves a generator under: `params_ema` for an EMA, else `params`."""
    return BASICSR_EMA_KEY if ema else BASICSR_RAW_KEY


def write_basicsr(pth_path: str | os.PathLike, safetensors_path: str | os.PathLike, arch: dict,
                  state: dict[str, np.ndarray], ema: bool) -> None:
    """Write the `.pth` and the `.safetensors` (in one folder; each appears whole, after both were
    checked). A network the other projects would build differently is refused before the folder is
    created."""
    arch = complete_arch(arch)
    named = {name: np.ascontiguousarray(value, np.float32) for name, value in to_basicsr_names(arch, state).items()}
    targets = [Path(pth_path), Path(safetensors_path)]
    folder = targets[0].parent
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".export-", suffix=".tmp", dir=folder) as tmp:
        written = [Path(tmp) / target.name for target in targets]
        write_torch_zip(written[0], {container_key(ema): named})
        write_bytes(written[1], safetensors_bytes(named, {"format": "pt"}))
        for path in written:
            check_written(path, arch, state)
        for path, target in zip(written, targets):
            os.replace(path, target)


def check_written(path: Path, arch: dict, state: dict[str, np.ndarray]) -> None:
    """Read `path` back as a foreign file: same architecture, same tensors bit for bit."""
    found = read_foreign_detailed(path)
    if complete_arch(found.arch) != arch or found.state.keys() != state.keys() or not all(
            np.array_equal(found.state[name], value) for name, value in state.items()):
        raise RuntimeError(f"{path.name}: reading the written file back does not give the exported weights")
