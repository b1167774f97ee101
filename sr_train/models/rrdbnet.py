"""ESRGAN's generator with PaddleGAN's exact parameter names, so PaddleGAN weights load unchanged."""

from __future__ import annotations

import re
from dataclasses import dataclass

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
# srkit's names are PaddleGAN's (BSRGAN and RealSR use them too). Two other projects name the same
# parameters differently; each naming is one table, read in both directions (`name_table`): the
# trunk's dense-block convs follow a pattern, the six other layers are named one by one.


@dataclass(frozen=True)
class Naming:
    project: str
    block: str  # a trunk dense-block conv parameter: {i} block, {k} dense block 1-3, {j} conv 1-5, {p} weight|bias
    layers: dict[str, str]  # srkit layer -> this project's layer ({nb}: the number of trunk blocks)

    def block_name(self, i: int, k: int = 1, j: int = 1, p: str = "weight") -> str:
        return self.block.format(i=i, k=k, j=j, p=p)


SRKIT = Naming("srkit/PaddleGAN/BSRGAN/RealSR", "RRDB_trunk.{i}.RDB{k}.conv{j}.{p}",
               {layer: layer for layer in ("conv_first", "trunk_conv", "upconv1", "upconv2", "HRconv", "conv_last")})
BASICSR = Naming("BasicSR/Real-ESRGAN", "body.{i}.rdb{k}.conv{j}.{p}",
                 {"conv_first": "conv_first", "trunk_conv": "conv_body", "upconv1": "conv_up1", "upconv2": "conv_up2",
                  "HRconv": "conv_hr", "conv_last": "conv_last"})
# The original ESRGAN code: one nn.Sequential `model` (conv, shortcut(trunk + conv), upsample + conv
# + lrelu twice, conv, lrelu, conv), each dense-block conv wrapped in its own Sequential (`.0`).
OLD_ESRGAN = Naming("ESRGAN (old arch)", "model.1.sub.{i}.RDB{k}.conv{j}.0.{p}",
                    {"conv_first": "model.0", "trunk_conv": "model.1.sub.{nb}", "upconv1": "model.3",
                     "upconv2": "model.6", "HRconv": "model.8", "conv_last": "model.10"})
FOREIGN_NAMINGS = (BASICSR, OLD_ESRGAN)
SPANDREL_GROWTH = 32  # spandrel (chaiNNer) and Real-ESRGAN's scripts build RRDBNet with 32 growth channels


def name_table(naming: Naming, nb: int) -> dict[str, str]:
    """srkit name -> `naming`'s name, for every parameter of an RRDBNet with `nb` trunk blocks."""
    def layer(name: str) -> dict[str, str]:
        return {f"{name}.{p}": f"{naming.layers[name].format(nb=nb)}.{p}" for p in ("weight", "bias")}

    table = layer("conv_first")  # in the network's order, as BasicSR's files list them
    for i in range(nb):
        for k in (1, 2, 3):
            for j in range(1, 6):
                for p in ("weight", "bias"):
                    table[SRKIT.block_name(i, k, j, p)] = naming.block_name(i, k, j, p)
    for name in ("trunk_conv", "upconv1", "upconv2", "HRconv", "conv_last"):
        table.update(layer(name))
    return table


def count_blocks(state: dict, naming: Naming) -> int:
    """Trunk blocks 0, 1, ... present in `state` under `naming` (a gap ends the count: the keys after
    it stay unmapped and are reported by the state check)."""
    nb = 0
    while naming.block_name(nb) in state:
        nb += 1
    return nb


def naming_of(state: dict) -> Naming | None:
    """The foreign naming `state` uses, or None (srkit's own names, or not an RRDBNet)."""
    return next((naming for naming in FOREIGN_NAMINGS if naming.block_name(0) in state), None)


def from_foreign_names(state: dict[str, np.ndarray], source: str) -> dict[str, np.ndarray]:
    """`state` under srkit's names when it uses BasicSR's or old ESRGAN's; other keys are kept as they
    are (so the state check names them). Old-arch files that srkit's network cannot hold are refused."""
    naming = naming_of(state)
    if naming is None:
        return dict(state)
    if naming is OLD_ESRGAN:
        check_old_esrgan(state, source)
    inverse = {theirs: ours for ours, theirs in name_table(naming, count_blocks(state, naming)).items()}
    return {inverse.get(name, name): value for name, value in state.items()}


OLD_TOP_LAYER = re.compile(r"^model\.(\d+)\.(?:weight|bias)$")


def check_old_esrgan(state: dict, source: str) -> None:
    """UserError for old-arch files other than ESRGAN's x4 layout: srkit's RRDBNet has exactly two
    upsampling stages (x2 and x1 go through pixel-unshuffle first), and no ESRGAN+ 1x1 convs."""
    if any(".conv1x1." in name for name in state):
        raise UserError(f"{source}: an ESRGAN+ model (dense blocks with conv1x1 layers): srkit's RRDBNet "
                        "has no such layers; not supported")
    top = {int(m.group(1)) for m in map(OLD_TOP_LAYER.match, state) if m}
    stages = (max(top, default=0) + 1 - 5) // 3  # conv, trunk, 3 layers per stage, conv, lrelu, conv
    if stages != 2:
        raise UserError(f"{source}: an old-arch ESRGAN with {stages} upsampling stage(s) (x{2 ** max(stages, 0)}): "
                        "srkit's RRDBNet has two (x4; x2 and x1 pixel-unshuffle the input first, as BasicSR "
                        "does); convert the model with a x4 layout or use another model")


def to_basicsr(arch: dict, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A srkit RRDBNet state under BasicSR/Real-ESRGAN's names, in their order; UserError when the
    projects that load such files could not build the network."""
    if arch["gc"] != SPANDREL_GROWTH:
        raise UserError(f"RRDBNet with gc {arch['gc']}: spandrel (chaiNNer) and Real-ESRGAN build it with "
                        f"{SPANDREL_GROWTH} growth channels; train with model.gc={SPANDREL_GROWTH} to export it")
    table = name_table(BASICSR, arch["nb"])
    return {table[name]: state[name] for name in table}


def is_rrdbnet_state(state: dict) -> bool:
    return "conv_first.weight" in state and "conv_last.weight" in state


def arch_from_state(state: dict[str, np.ndarray], source: str) -> dict:
    """RRDBNet's settings from a state dict's shapes (srkit's names): nf (conv_first out), nb (trunk
    blocks), gc (dense-block growth), out_nc (conv_last out) and scale (conv_first's input channels =
    in_nc × unshuffle², unshuffle 1/2/4 for ×4/×2/×1, taking in_nc = out_nc)."""
    nf, first_in = param_shape(state, "conv_first.weight", source, 4)[:2]
    out_nc = param_shape(state, "conv_last.weight", source, 4)[0]
    nb = count_blocks(state, SRKIT)
    if not nb:
        raise UserError(f"{source}: RRDBNet weights without RRDB_trunk blocks: the file is not a complete model")
    gc = param_shape(state, SRKIT.block_name(0), source, 4)[0]
    scale, in_nc = 4, first_in
    for unshuffle, candidate in ((2, 2), (4, 1)):
        if first_in == out_nc * unshuffle * unshuffle:
            scale, in_nc = candidate, out_nc
    return {"arch": "rrdbnet", "in_nc": in_nc, "out_nc": out_nc, "nf": nf, "nb": nb, "gc": gc,
            "scale": scale}
