"""A small VGG-style SR network for anime, shaped like Real-ESRGAN's SRVGGNetCompact."""

from __future__ import annotations

import math
import re

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from sr_train.models.ops import LeakyReLU, bicubic_upsample, cubic_kernel, nearest_upsample
from sr_train.models.state_shapes import param_shape
from srdata.errors import UserError

SKIPS = ("bicubic", "nearest")
ACTS = ("prelu", "leakyrelu", "relu")


class PReLU(nn.Layer):
    """Per-channel PReLU whose slope parameter is called `weight` (Paddle's own calls it `_weight`),
    so state dicts use Real-ESRGAN's names (`body.1.weight`)."""

    def __init__(self, channels: int, init: float = 0.25):
        super().__init__()
        self.weight = self.create_parameter([channels], default_initializer=nn.initializer.Constant(init))

    def forward(self, x):
        return F.prelu(x, self.weight)


def _activation(act: str, nf: int) -> nn.Layer:
    if act == "prelu":
        return PReLU(nf)
    if act == "leakyrelu":
        return LeakyReLU(0.1)
    return nn.ReLU()


class Compact(nn.Layer):
    """conv + activation, `nc` × (conv + activation), conv to out_nc·scale², pixel shuffle, + skip.

    Args (all recorded in `self.arch`): `in_nc`/`out_nc` channels (must be equal: the input is added
    to the output), `nf` features, `nc` body convs between the first and the last (Real-ESRGAN's
    `num_conv`; nf 32, nc 8 is about 89k parameters), `scale` any integer ≥ 1, `skip` how the input is
    up-sampled and added ("bicubic", default: OpenCV's INTER_CUBIC; "nearest": as Real-ESRGAN), `act`
    "prelu" (default, per-channel), "leakyrelu" (0.1) or "relu".

    Layers live in `body` with Real-ESRGAN's indices (convs at even, activations at odd positions),
    so its weights map name for name. The last conv starts at zero: an untrained network outputs
    exactly the up-sampled input, and training starts from bicubic's quality rather than from noise.
    The bicubic kernel is a fixed, non-persistable buffer: not trained, not in the state dict.
    """

    def __init__(self, in_nc: int = 3, out_nc: int = 3, nf: int = 64, nc: int = 16, scale: int = 4,
                 skip: str = "bicubic", act: str = "prelu"):
        super().__init__()
        if skip not in SKIPS:
            raise ValueError(f"Compact skip must be one of {SKIPS}, got {skip!r}")
        if act not in ACTS:
            raise ValueError(f"Compact act must be one of {ACTS}, got {act!r}")
        if in_nc != out_nc:
            raise ValueError(f"Compact adds its input to its output: in_nc ({in_nc}) must equal out_nc ({out_nc})")
        if scale < 1:
            raise ValueError(f"Compact scale must be >= 1, got {scale}")
        self.arch = {"arch": "compact", "in_nc": in_nc, "out_nc": out_nc, "nf": nf, "nc": nc, "scale": scale,
                     "skip": skip, "act": act}
        self.scale = scale
        self.skip = skip
        layers = [nn.Conv2D(in_nc, nf, 3, 1, 1), _activation(act, nf)]
        for _ in range(nc):
            layers += [nn.Conv2D(nf, nf, 3, 1, 1), _activation(act, nf)]
        layers.append(nn.Conv2D(nf, out_nc * scale * scale, 3, 1, 1))
        self.body = nn.LayerList(layers)
        self._zero_last_conv()
        self.register_buffer("cubic_kernel", paddle.to_tensor(cubic_kernel(in_nc, scale)), persistable=False)

    def _zero_last_conv(self) -> None:
        last = self.body[-1]
        last.weight.set_value(np.zeros(last.weight.shape, np.float32))
        last.bias.set_value(np.zeros(last.bias.shape, np.float32))

    def upsample_input(self, x):
        """The skip branch: the input up-sampled by `scale` (what an untrained network outputs)."""
        if self.skip == "nearest":
            return nearest_upsample(x, self.scale)
        return bicubic_upsample(x, self.cubic_kernel, self.scale)

    def forward(self, x):
        out = x
        for layer in self.body:
            out = layer(out)
        return F.pixel_shuffle(out, self.scale) + self.upsample_input(x)

    def init_weights(self, rng: np.random.Generator) -> None:
        """He (Kaiming-normal, fan-in) weights and zero biases, PReLU slopes 0.25, last conv zero.

        He init keeps the activations' scale through the 2 + nc conv + PReLU layers (it is Paddle's
        default for convs too). PyTorch's default uniform init shrinks them ~3x per layer: measured
        here, the quickstart then stayed at bicubic's loss for 100+ iterations, even on one batch.
        Drawn from a numpy generator so the same seed gives the same network on every machine.
        """
        for layer in self.body:
            if isinstance(layer, nn.Conv2D):
                fan_in = int(np.prod(layer.weight.shape[1:]))
                layer.weight.set_value((rng.standard_normal(layer.weight.shape) * np.sqrt(2.0 / fan_in)).astype(np.float32))
                layer.bias.set_value(np.zeros(layer.bias.shape, np.float32))
            elif isinstance(layer, PReLU):
                layer.weight.set_value(np.full(layer.weight.shape, 0.25, np.float32))
        self._zero_last_conv()


# ------------------------------------------------------------------------------ other projects' files
# Real-ESRGAN's SRVGGNetCompact names are srkit's (`body.{i}`): only the settings must be inferred.
BODY_PARAM = re.compile(r"^body\.(\d+)\.(weight|bias)$")


def is_compact_state(state: dict) -> bool:
    return "body.0.weight" in state


def arch_from_state(state: dict[str, np.ndarray], source: str) -> dict:
    """Compact's settings from a state dict's shapes: nf, nc (convs between first and last), scale
    (last conv out = out_nc × scale²) and activation (PReLU slopes present or not). A file without an
    architecture record is a foreign one, so it gets Real-ESRGAN's nearest skip."""
    layers: dict[int, int] = {}
    for name, value in state.items():
        match = BODY_PARAM.match(name)
        if match and match.group(2) == "weight":
            layers[int(match.group(1))] = value.ndim
    convs = sorted(i for i, ndim in layers.items() if ndim == 4)
    if len(convs) < 2:
        raise UserError(f"{source}: SRVGGNetCompact weights need at least a first and a last conv, found {len(convs)}")
    nf, in_nc = param_shape(state, f"body.{convs[0]}.weight", source, 4)[:2]
    last_out = param_shape(state, f"body.{convs[-1]}.weight", source, 4)[0]
    scale = math.isqrt(last_out // in_nc) if last_out % in_nc == 0 else 0
    if scale < 1 or scale * scale * in_nc != last_out:
        raise UserError(f"{source}: the last conv outputs {last_out} channels, not {in_nc} × scale²: "
                        "not an SRVGGNetCompact model srkit can run")
    has_prelu = any(ndim == 1 for ndim in layers.values())
    # Without PReLU slopes the activation leaves no trace in the file; Real-ESRGAN's other choice
    # that srkit shares, ReLU, is assumed (a LeakyReLU model would need its arch written by hand).
    return {"arch": "compact", "in_nc": in_nc, "out_nc": in_nc, "nf": nf, "nc": len(convs) - 2, "scale": scale,
            "skip": "nearest", "act": "prelu" if has_prelu else "relu"}


def to_basicsr(arch: dict, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The state as Real-ESRGAN names it (srkit's names are SRVGGNetCompact's), once the network is
    one that SRVGGNetCompact computes and spandrel (chaiNNer) recognises; else a UserError."""
    if arch["skip"] != "nearest":
        raise UserError(f"Compact with skip {arch['skip']!r}: Real-ESRGAN's SRVGGNetCompact adds the "
                        "nearest-upsampled input, so it would compute something else; train with "
                        "model.skip=nearest to export it")
    if arch["act"] != "prelu":
        raise UserError(f"Compact with act {arch['act']!r}: spandrel (chaiNNer) recognises SRVGGNetCompact by "
                        "its PReLU slopes (body.1.weight); train with model.act=prelu to export it")
    def position(name: str) -> tuple[int, bool]:  # body.N.weight before body.N.bias, as torch lists them
        _, index, param = name.split(".")
        return int(index), param != "weight"

    return {name: state[name] for name in sorted(state, key=position)}
