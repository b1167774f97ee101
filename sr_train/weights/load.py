"""Read any weights file srkit knows (its own `.safetensors`, PaddleGAN `.pdparams`, BasicSR /
Real-ESRGAN `.pth`) and put it into a network: the one module that knows both srkit's format
(`sr_train.weights.srkit`) and the foreign ones (`sr_train.weights.foreign`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from sr_train.models import build_model, complete_arch
from sr_train.weights.foreign import ForeignWeights, from_safetensors, read_foreign, read_foreign_detailed
from sr_train.weights.srkit import SUFFIX, read_weights_file, save_weights
from srdata.errors import UserError


def read_weights(path: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    """(arch, generator state dict with srkit's names), EMA preferred when present.

    A `.safetensors` file with an architecture record is srkit's own (`sr_train.weights.srkit`);
    a `.safetensors` of another project (BasicSR names, say) is renamed from the same read, and any
    other file goes to `sr_train.weights.foreign.read_foreign`. The architecture is inferred from the
    parameters when the file records none.
    """
    if Path(path).suffix.lower() == SUFFIX:
        weights = read_weights_file(path)
        if weights.arch is not None:
            return weights.arch, weights.preferred()
        found = from_safetensors(weights, path)
        return found.arch, found.state
    return read_foreign(path)


def load_model(path: str | os.PathLike, arch_override: dict | None = None):
    """The network stored in `path`, in eval mode.

    The architecture comes from the file (inferred from its parameters when it records none);
    `arch_override` (e.g. the recipe's model) must agree with the file's settings that it
    names, else a one-line UserError lists the differing keys.
    """
    file_arch, state = read_weights(path)
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


def convert_weights(src: str | Path, dst: str | Path) -> ForeignWeights:
    """Write the generator of any readable weights file as a srkit `.safetensors` (with its arch).

    The weights are loaded into the network first, so a file that does not fit its inferred
    architecture is refused here rather than at the first `fit`/`predict`.
    """
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
