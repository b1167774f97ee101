"""srkit's generators as Paddle layers: `RRDBNet` (ESRGAN) and `Compact` (SRVGGNetCompact-like).

An architecture is a JSON-able dict `{"arch": "rrdbnet" | "compact", ...constructor args}`; it is
stored in every weights file so eval/predict rebuild the network without a recipe.
"""

from __future__ import annotations

import inspect

import numpy as np
import paddle

from sr_train.models import compact, rrdbnet
from sr_train.models.compact import Compact
from sr_train.models.rrdbnet import RRDBNet
from srdata.errors import UserError

__all__ = ["RRDBNet", "Compact", "build_model", "count_parameters", "init_weights", "infer_arch", "to_srkit_names",
           "to_basicsr_names", "ARCHS"]

ARCHS = ("rrdbnet", "compact")


def arch_class(name: str) -> type:
    """The layer class of architecture `name` (the value of "arch" in an architecture dict)."""
    if name == "rrdbnet":
        return RRDBNet
    if name == "compact":
        return Compact
    raise UserError(f"unknown model arch {name!r}: use one of {', '.join(ARCHS)}")


def arch_args(name: str) -> dict:
    """The constructor arguments of architecture `name` with their defaults."""
    params = inspect.signature(arch_class(name).__init__).parameters
    return {k: p.default for k, p in params.items() if k != "self"}


def complete_arch(arch: dict) -> dict:
    """`arch` with every constructor argument filled in (defaults for the missing ones), checked."""
    name = arch.get("arch")
    defaults = arch_args(name)
    unknown = sorted(set(arch) - set(defaults) - {"arch"})
    if unknown:
        raise UserError(f"model arch {name!r} has no setting {', '.join(unknown)}: "
                        f"its settings are {', '.join(defaults)}")
    return {"arch": name, **defaults, **{k: v for k, v in arch.items() if k != "arch"}}


def build_model(arch: dict) -> paddle.nn.Layer:
    """Build the network an architecture dict describes (missing settings take their defaults)."""
    full = complete_arch(arch)
    kwargs = {k: v for k, v in full.items() if k != "arch"}
    try:
        return arch_class(full["arch"])(**kwargs)
    except ValueError as exc:
        raise UserError(f"model: {exc}") from None


def count_parameters(arch: dict) -> int:
    """The number of parameters of the network `arch` describes, counted without allocating them
    (paddle.LazyGuard: only shapes are made), so any size can be described cheaply."""
    with paddle.LazyGuard():
        model = build_model(arch)
    return sum(int(np.prod(param.shape)) for param in model.parameters())


def init_weights(model: paddle.nn.Layer, seed: int) -> None:
    """Re-initialise `model` from a numpy generator seeded with `seed` (same seed -> same bytes)."""
    model.init_weights(np.random.default_rng(seed))


def to_srkit_names(state: dict[str, np.ndarray], source: str = "weights") -> dict[str, np.ndarray]:
    """A foreign state dict under srkit's parameter names. Only RRDBNet has other names (BasicSR's,
    the original ESRGAN's); PaddleGAN's, BSRGAN's and RealSR's RRDBNet and Real-ESRGAN's
    SRVGGNetCompact already use srkit's names."""
    return rrdbnet.from_foreign_names(state, source)


def to_basicsr_names(arch: dict, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A srkit state (of the complete architecture `arch`) under BasicSR/Real-ESRGAN's names, as
    spandrel (chaiNNer) and Real-ESRGAN's scripts load them; a UserError says why a network that
    those projects cannot build is refused."""
    if arch["arch"] == "rrdbnet":
        return rrdbnet.to_basicsr(arch, state)
    return compact.to_basicsr(arch, state)


def infer_arch(state: dict[str, np.ndarray], source: str = "weights") -> dict:
    """The architecture dict that fits a state dict with srkit's names, read off its shapes by the
    architecture's own `arch_from_state`."""
    if rrdbnet.is_rrdbnet_state(state):
        return rrdbnet.arch_from_state(state, source)
    if compact.is_compact_state(state):
        return compact.arch_from_state(state, source)
    shown = ", ".join(list(state)[:5]) or "none"
    raise UserError(f"{source}: cannot tell the architecture from the parameter names (first: {shown}): "
                    "expected ESRGAN/RRDBNet (conv_first, RRDB_trunk or body.N.rdbK, conv_last) or "
                    "SRVGGNetCompact (body.N)")
