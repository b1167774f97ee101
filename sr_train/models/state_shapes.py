"""Reading the settings of an architecture off a foreign state dict's shapes (used by each
architecture's `arch_from_state`)."""

from __future__ import annotations

import numpy as np

from srdata.errors import UserError


def param_shape(state: dict[str, np.ndarray], name: str, source: str, ndim: int) -> tuple[int, ...]:
    """The shape of parameter `name`; UserError naming `source` if it is missing or not `ndim`-D."""
    if name not in state or state[name].ndim != ndim:
        raise UserError(f"{source}: parameter {name} is missing or not {ndim}-D: the file is not a complete model")
    return tuple(int(n) for n in state[name].shape)
