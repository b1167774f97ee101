"""ESRGAN's generator with PaddleGAN's exact parameter names, so PaddleGAN weights load unchanged."""

from __future__ import annotations

import re

import numpy as np
import paddle
import paddle.nn as nn

from sr_train.models.ops import LeakyReLU, nearest_upsample, pixel_unshuffle, unshuffle_kernel
from sr_train.models.state_shapes import param_shape
from srdata.errors import UserError

RESIDUAL_SCALE = 0.2  # ESRGAN scales every dense block's and RRDB's residual by 0.2
LRELU_SLOPE = 0.2
SCALES = (1, 2, 4)


def _conv(cin: int, cout: int) -> nn.Conv2D:
    return nn.Conv2D(cin, cout, 3, 1, 1)


class ResidualDenseBlock(nn.Layer):
    """Five 3×3 convs, each seeing the block input and all earlier outputs (growth `gc`)."""

    def __init__(self, nf: int, gc: int):
        super().__init__()
        self.conv1 = _conv(nf, gc)
        self.conv2 = _conv(nf + gc, gc)
        self.conv3 = _conv(nf + 2 * gc, gc)
        self.conv4 = _conv(nf + 3 * gc, gc)
        self.conv5 = _conv(nf + 4 * gc, nf)
        self.lrelu = LeakyReLU(LRELU_SLOPE)

    def forward(self, x):
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(paddle.concat([x, x1], 1)))
        x3 = self.lrelu(self.conv3(paddle.concat([x, x1, x2], 1)))
        x4 = self.lrelu(self.conv4(paddle.concat([x, x1, x2, x3], 1)))
        x5 = self.conv5(paddle.concat([x, x1, x2, x3, x4], 1))
        return x5 * RESIDUAL_SCALE + x


class RRDB(nn.Layer):
    """Residual in residual dense block: three dense blocks, scaled residual around them."""

    def __init__(self, nf: int, gc: int):
        super().__init__()
        self.RDB1 = ResidualDenseBlock(nf, gc)
        self.RDB2 = ResidualDenseBlock(nf, gc)
        self.RDB3 = ResidualDenseBlock(nf, gc)

    def forward(self, x):
        return self.RDB3(self.RDB2(self.RDB1(x))) * RESIDUAL_SCALE + x


class RRDBNet(nn.Layer):
    """ESRGAN generator: RRDB trunk at LR resolution, two nearest ×2 + conv stages, two output convs.

    Args (all recorded in `self.arch`): `in_nc`/`out_nc` image channels, `nf` features, `nb` RRDB
    blocks, `gc` dense-block growth, `scale` 4, 2 or 1. As in PaddleGAN, ×2 and ×1 keep the ×4 body
    and pixel-unshuffle the input by 2 or 4 first (so their input sides must be multiples of 2 or 4
    and `conv_first` takes 4× or 16× the channels). Input/output RGB in [0, 1], NCHW; not clamped.
    """

    def __init__(self, in_nc: int = 3, out_nc: int = 3, nf: int = 64, nb: int = 23, gc: int = 32, scale: int = 4):
        super().__init__()
        if scale not in SCALES:
            raise ValueError(f"RRDBNet scale must be one of {SCALES}, got {scale}")
        self.arch = {"arch": "rrdbnet", "in_nc": in_nc, "out_nc": out_nc, "nf": nf, "nb": nb, "gc": gc, "scale": scale}
        self.scale = scale
        self.unshuffle = {4: 1, 2: 2, 1: 4}[scale]
        self.input_multiple = self.unshuffle  # input sides must be multiples of this (sr_train.tiling pads)
        self.conv_first = _conv(in_nc * self.unshuffle**2, nf)
        self.RRDB_trunk = nn.Sequential(*[RRDB(nf, gc) for _ in range(nb)])
        self.trunk_conv = _conv(nf, nf)
        self.upconv1 = _conv(nf, nf)
        self.upconv2 = _conv(nf, nf)
        self.HRconv = _conv(nf, nf)
        self.conv_last = _conv(nf, out_nc)
        self.lrelu = LeakyReLU(LRELU_SLOPE)
        if self.unshuffle > 1:  # fixed, not trained, not in the state dict
            self.register_buffer("unshuffle_kernel", paddle.to_tensor(unshuffle_kernel(in_nc, self.unshuffle)),
                                 persistable=False)

    def forward(self, x):
        if self.unshuffle > 1:
            x = pixel_unshuffle(x, self.unshuffle_kernel, self.unshuffle)
        fea = self.conv_first(x)
        fea = fea + self.trunk_conv(self.RRDB_trunk(fea))
        fea = self.lrelu(self.upconv1(nearest_upsample(fea, 2)))
        fea = self.lrelu(self.upconv2(nearest_upsample(fea, 2)))
        return self.conv_last(self.lrelu(self.HRconv(fea)))

    def init_weights(self, rng: np.random.Generator) -> None:
        """ESRGAN's initialisation: Kaiming-normal × 0.1 inside the dense blocks (keeps the deep
        residual trunk near identity at the start), PyTorch's default uniform elsewhere, zero biases.
        Drawn from a numpy generator so the same seed gives the same network on every machine."""
        for name, layer in self.named_sublayers():
            if isinstance(layer, nn.Conv2D):
                fan_in = int(np.prod(layer.weight.shape[1:]))
                if ".RDB" in f".{name}":
                    w = rng.standard_normal(layer.weight.shape) * np.sqrt(2.0 / fan_in) * 0.1
                else:
                    bound = 1.0 / np.sqrt(fan_in)
                    w = rng.uniform(-bound, bound, layer.weight.shape)
                layer.weight.set_value(w.astype(np.float32))
                layer.bias.set_value(np.zeros(layer.bias.shape, np.float32))


# ------------------------------------------------------------------------------ other projects' names
# srkit's names are PaddleGAN's. BasicSR/Real-ESRGAN name the same layers differently:
# BasicSR layer name -> srkit name (the trunk's blocks are renamed by regex).
BASICSR_RENAMES = {
    "conv_body": "trunk_conv",
    "conv_up1": "upconv1",
    "conv_up2": "upconv2",
    "conv_hr": "HRconv",
}
BASICSR_BLOCK = re.compile(r"^body\.(\d+)\.rdb([123])\.(conv[1-5]\.(?:weight|bias))$")
TRUNK_BLOCK = re.compile(r"^RRDB_trunk\.(\d+)\.RDB1\.conv1\.weight$")


def has_basicsr_names(state: dict) -> bool:
    return any(BASICSR_BLOCK.match(name) for name in state)


def from_basicsr_names(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Rename BasicSR RRDBNet keys (`body.{i}.rdb{k}.conv{j}`, `conv_body`, `conv_up1/2`, `conv_hr`)
    to srkit's/PaddleGAN's (`RRDB_trunk.{i}.RDB{k}.conv{j}`, `trunk_conv`, `upconv1/2`, `HRconv`)."""
    renamed = {}
    for name, value in state.items():
        block = BASICSR_BLOCK.match(name)
        if block:
            index, rdb, rest = block.groups()
            renamed[f"RRDB_trunk.{index}.RDB{rdb}.{rest}"] = value
            continue
        layer, _, param = name.partition(".")
        renamed[f"{BASICSR_RENAMES.get(layer, layer)}.{param}"] = value
    return renamed


def is_rrdbnet_state(state: dict) -> bool:
    return "conv_first.weight" in state and "conv_last.weight" in state


def arch_from_state(state: dict[str, np.ndarray], source: str) -> dict:
    """RRDBNet's settings from a state dict's shapes (srkit's names): nf (conv_first out), nb (trunk
    blocks), gc (dense-block growth), out_nc (conv_last out) and scale (conv_first's input channels =
    in_nc × unshuffle², unshuffle 1/2/4 for ×4/×2/×1, taking in_nc = out_nc)."""
    nf, first_in = param_shape(state, "conv_first.weight", source, 4)[:2]
    out_nc = param_shape(state, "conv_last.weight", source, 4)[0]
    blocks = sorted(int(m.group(1)) for m in map(TRUNK_BLOCK.match, state) if m)
    if not blocks:
        raise UserError(f"{source}: RRDBNet weights without RRDB_trunk blocks: the file is not a complete model")
    gc = param_shape(state, f"RRDB_trunk.{blocks[0]}.RDB1.conv1.weight", source, 4)[0]
    scale, in_nc = 4, first_in
    for unshuffle, candidate in ((2, 2), (4, 1)):
        if first_in == out_nc * unshuffle * unshuffle:
            scale, in_nc = candidate, out_nc
    return {"arch": "rrdbnet", "in_nc": in_nc, "out_nc": out_nc, "nf": nf, "nb": len(blocks), "gc": gc,
            "scale": scale}
