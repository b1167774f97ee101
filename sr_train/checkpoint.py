"""Resumable training states: safetensors (tensors) + JSON (everything else), never a pickle.

A `.state` file is a safetensors file whose tensors are the generator (`model.NAME`), its EMA
(`ema.NAME`), the optimiser's accumulators (`optim.NAME.ACCUMULATOR`, keyed by srkit's
parameter names, not by Paddle's process-dependent variable names) and, in the GAN stage, the
discriminator (`disc.NAME`, with its BatchNorm/spectral-norm buffers) and its optimiser
(`optim_d.NAME.ACCUMULATOR`), and whose metadata holds
one JSON document: iteration, recipe, data order, best validation score, scheduler and RNG
scheme. Loading one runs no code, so a state from elsewhere is as safe as a weights file.

Written atomically (temp name + rename); `latest_good_state` tries the newest first and skips
any that does not read completely, so a kill -9 at any moment leaves a resumable run.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sr_train.weights.srkit import read_safetensors, safetensors_bytes
from srdata.atomic import is_temp_name, write_bytes
from srdata.errors import UserError

STATE_FORMAT = "srkit-state"
STATE_VERSION = 1
STATE_NAME = re.compile(r"^iter_(\d+)\.state$")
REQUIRED = ("iteration", "recipe", "arch", "data_order")


@dataclass
class TrainState:
    iteration: int  # iterations completed
    model: dict[str, np.ndarray]
    optimizer: dict[str, np.ndarray]  # "PARAM.ACCUMULATOR" -> array
    ema: dict[str, np.ndarray] | None
    info: dict = field(default_factory=dict)  # JSON: recipe, arch, data_order, best, rng, scaler ...
    disc: dict[str, np.ndarray] | None = None  # GAN stage: discriminator state dict
    optimizer_d: dict[str, np.ndarray] | None = None  # GAN stage: its optimiser's accumulators


def save_state(path: str | Path, state: TrainState) -> None:
    tensors = {f"model.{k}": np.ascontiguousarray(v) for k, v in state.model.items()}
    tensors.update({f"optim.{k}": np.ascontiguousarray(v) for k, v in state.optimizer.items()})
    tensors.update({f"ema.{k}": np.ascontiguousarray(v) for k, v in (state.ema or {}).items()})
    tensors.update({f"disc.{k}": np.ascontiguousarray(v) for k, v in (state.disc or {}).items()})
    tensors.update({f"optim_d.{k}": np.ascontiguousarray(v) for k, v in (state.optimizer_d or {}).items()})
    info = {"format": STATE_FORMAT, "version": STATE_VERSION, **state.info, "iteration": state.iteration}
    write_bytes(path, safetensors_bytes(tensors, {"srkit_state": json.dumps(info, sort_keys=True)}))


def read_state(path: str | Path) -> TrainState:
    """Read a state completely; UserError (naming the file) if it is truncated, foreign or damaged."""
    from safetensors import SafetensorError

    path = Path(path)
    try:
        tensors, metadata = read_safetensors(path)
        info = json.loads(metadata["srkit_state"])
    except FileNotFoundError:
        raise UserError(f"{path}: no such state file: give a RUN/ckpt/iter_N.state file or --resume auto") from None
    except (SafetensorError, ValueError, KeyError, OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not a complete srkit training state ({type(exc).__name__}): "
                        "use an earlier RUN/ckpt/iter_N.state") from None
    if not isinstance(info, dict) or info.get("format") != STATE_FORMAT or any(k not in info for k in REQUIRED):
        raise UserError(f"{path}: not a srkit training state (metadata incomplete): use an earlier state")
    if info["version"] > STATE_VERSION:
        raise UserError(f"{path}: written by a newer srkit (state version {info['version']}): upgrade srkit")

    def part(prefix: str) -> dict[str, np.ndarray]:
        return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}

    return TrainState(iteration=int(info["iteration"]), model=part("model."), optimizer=part("optim."),
                      ema=part("ema.") or None, info=info, disc=part("disc.") or None,
                      optimizer_d=part("optim_d.") or None)


def state_path(run_dir: str | Path, iteration: int) -> Path:
    return Path(run_dir) / "ckpt" / f"iter_{iteration}.state"


def weights_path(run_dir: str | Path, iteration: int) -> Path:
    return Path(run_dir) / "ckpt" / f"iter_{iteration}.safetensors"


def list_states(run_dir: str | Path) -> list[tuple[int, Path]]:
    """(iteration, path) of every state in RUN/ckpt, newest first."""
    folder = Path(run_dir) / "ckpt"
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := STATE_NAME.match(p.name))]
    return sorted(found, reverse=True)


def latest_good_state(run_dir: str | Path) -> tuple[TrainState | None, list[str]]:
    """The newest state that reads completely, and a note for each newer one that did not."""
    skipped = []
    for _, path in list_states(run_dir):
        try:
            return read_state(path), skipped
        except UserError as exc:
            skipped.append(str(exc))
    return None, skipped


def prune_states(run_dir: str | Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` states (weights files are kept); returns what was deleted."""
    doomed = [path for _, path in list_states(run_dir)[keep:]]
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed


def remove_temp_files(run_dir: str | Path) -> None:
    """Delete the temp files a killed run left in RUN/ and RUN/ckpt (never a finished file)."""
    for folder in (Path(run_dir), Path(run_dir) / "ckpt"):
        if folder.is_dir():
            for path in folder.iterdir():
                if is_temp_name(path.name):
                    path.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- optimiser state

def optimizer_state(optimizer, named_params: dict) -> dict[str, np.ndarray]:
    """The optimiser's accumulators keyed "PARAM.ACCUMULATOR" by srkit's parameter names.

    Paddle keys them by variable names like `conv2d_3.w_0_moment1_0`, which depend on how many
    layers the process created before; srkit names are stable across processes.
    """
    by_var = {param.name: name for name, param in named_params.items()}
    out = {}
    for key, value in optimizer.state_dict().items():
        if not hasattr(value, "numpy"):
            continue
        split = split_longest_prefix(key, by_var, "_")
        if split is None:
            raise ValueError(f"optimizer state key {key!r} belongs to no parameter")
        var, acc = split
        out[f"{by_var[var]}.{acc}"] = value.numpy().copy()
    return out


def split_longest_prefix(key: str, names, separator: str) -> tuple[str, str] | None:
    """(name, rest) for the longest of `names` such that key == name + separator + rest, else None.

    Longest first because names can prefix each other with the separator in between (Paddle's
    `conv2d_1.w_0` accumulators are `conv2d_1.w_0_moment1_0`; a `p_1` and a `p_1_2` both prefix
    `p_1_2_moment1_0`), and only the longest is the parameter the key belongs to.
    """
    for name in sorted(names, key=len, reverse=True):
        if key.startswith(name + separator):
            return name, key[len(name) + len(separator):]
    return None


def load_optimizer_state(optimizer, named_params: dict, saved: dict[str, np.ndarray]) -> None:
    """Inverse of `optimizer_state` for a freshly built model and optimiser."""
    import paddle

    by_name = {name: param.name for name, param in named_params.items()}
    restored = {}
    for key, value in saved.items():
        split = split_longest_prefix(key, by_name, ".")
        if split is None:
            raise UserError(f"optimizer state entry {key!r} matches no parameter of the model: the state belongs "
                            "to another architecture")
        name, acc = split
        restored[f"{by_name[name]}_{acc}"] = paddle.to_tensor(value)
    optimizer.set_state_dict(restored)


def pick_state(resume: str | None, run_dir: Path) -> tuple[TrainState | None, list[str]]:
    """The state to continue from: none, the newest readable one in RUN (auto), or a given file.

    Runs before any data is read or model built, so a refusal costs nothing. A run_dir holding
    states of another run is refused: a fresh run would overwrite them, and `--resume PATH` would
    mix two runs there (pruning sorts by iteration, so a later `--resume auto` could pick the other
    run's newer state).
    """
    existing = list_states(run_dir)
    if resume is None:
        if existing:
            raise UserError(f"{run_dir} already has training states: continue with --resume auto, or train into "
                            f"another folder with --set run_dir=NEW")
        return None, []
    if resume == "auto":
        state, skipped = latest_good_state(run_dir)
        if state is not None:
            state.info["path"] = str(state_path(run_dir, state.iteration))
        return state, skipped
    others = [path for _, path in existing if path.resolve() != Path(resume).resolve()]
    if others:
        raise UserError(f"--resume {resume}: {run_dir} already holds other training states ({others[0].name}): "
                        "use a new run_dir, or --resume auto")
    state = read_state(resume)
    state.info["path"] = str(resume)
    return state, []
