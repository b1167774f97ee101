"""ESRGAN's generator with PaddleGAN's exact parameter names, so PaddleGAN weights load unchanged."""

from __future__ import annotations

import numpy as np
import paddle
import paddle.nn as nn

from sr_train.models._ops import LeakyReLU, nearest_upsample, pixel_unshuffle, unshuffle_kernel

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

    Args (all recorded by `arch_of`): `in_nc`/`out_nc` image channels, `nf` features, `nb` RRDB
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
