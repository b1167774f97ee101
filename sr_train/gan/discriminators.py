"""Discriminators for the adversarial (GAN) stage of ESRGAN-style training.

`VGGDiscriminator128` keeps PaddleGAN's layer names and shapes exactly, so a discriminator saved by
PaddleGAN's ESRGAN loads with `set_state_dict` unchanged; `UNetDiscriminatorSN` follows the
Real-ESRGAN design (per-pixel realness map, spectral normalisation instead of BatchNorm), whose
state-dict names (`convN.weight_orig`, `convN.weight_u`, `convN.weight_v`) match PyTorch's
spectral-norm naming, so converted Real-ESRGAN discriminators need no renaming either.
"""

from __future__ import annotations

from typing import Literal

import paddle
import paddle.nn.functional as F
from paddle import nn

from srdata.errors import UserError

LEAKY_SLOPE = 0.2

DiscriminatorArch = Literal["vgg128", "unet"]


class VGGDiscriminator128(nn.Layer):
    """ESRGAN's VGG-style discriminator: one realness logit per 128×128 image.

    Five stages of (conv3×3 stride 1, conv4×4 stride 2), each followed by BatchNorm (except the very
    first conv) and LeakyReLU 0.2, halve 128 px to 4 px while widening nf→2nf→4nf→8nf→8nf; two
    linear layers (8nf·4·4 → 100 → 1) make the logit. The fixed flatten size is why the input must be
    exactly 128×128 (check it in the recipe with `check_patch_size`).
    """

    INPUT_SIZE = 128

    def __init__(self, in_nc: int = 3, nf: int = 64):
        super().__init__()
        self.in_nc, self.nf = in_nc, nf
        widths = [nf, nf * 2, nf * 4, nf * 8, nf * 8]
        # Stage 0: the first conv has a bias and no BatchNorm (nothing to normalise yet).
        self.conv0_0 = nn.Conv2D(in_nc, nf, 3, 1, 1, bias_attr=True)
        self.conv0_1 = nn.Conv2D(nf, nf, 4, 2, 1, bias_attr=False)
        self.bn0_1 = nn.BatchNorm2D(nf)
        # Stages 1..4: names conv{s}_0/bn{s}_0 (3×3, widen) and conv{s}_1/bn{s}_1 (4×4, stride 2).
        for stage in range(1, 5):
            cin, cout = widths[stage - 1], widths[stage]
            setattr(self, f"conv{stage}_0", nn.Conv2D(cin, cout, 3, 1, 1, bias_attr=False))
            setattr(self, f"bn{stage}_0", nn.BatchNorm2D(cout))
            setattr(self, f"conv{stage}_1", nn.Conv2D(cout, cout, 4, 2, 1, bias_attr=False))
            setattr(self, f"bn{stage}_1", nn.BatchNorm2D(cout))
        self.linear1 = nn.Linear(widths[-1] * 4 * 4, 100)
        self.linear2 = nn.Linear(100, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=LEAKY_SLOPE)

    def forward(self, x):
        if x.shape[2] != self.INPUT_SIZE or x.shape[3] != self.INPUT_SIZE:
            raise ValueError(
                f"VGGDiscriminator128 needs 128×128 inputs, got {x.shape[2]}×{x.shape[3]}: "
                "set train.patch_size: 128 or use discriminator.arch: unet"
            )
        feat = self.lrelu(self.conv0_0(x))
        feat = self.lrelu(self.bn0_1(self.conv0_1(feat)))
        for stage in range(1, 5):
            feat = self.lrelu(getattr(self, f"bn{stage}_0")(getattr(self, f"conv{stage}_0")(feat)))
            feat = self.lrelu(getattr(self, f"bn{stage}_1")(getattr(self, f"conv{stage}_1")(feat)))
        feat = paddle.flatten(feat, start_axis=1)
        return self.linear2(self.lrelu(self.linear1(feat)))


def _sn_conv(cin: int, cout: int, kernel: int, stride: int) -> nn.Layer:
    """A bias-free conv whose weight is divided by its largest singular value at every call.

    Spectral normalisation bounds each layer's Lipschitz constant, which keeps the per-pixel
    discriminator from overpowering the generator without BatchNorm's batch coupling.
    """
    conv = nn.Conv2D(cin, cout, kernel, stride, padding=1, bias_attr=False)
    return nn.utils.spectral_norm(conv)


def _lrelu(x):
    return F.leaky_relu(x, LEAKY_SLOPE)


def _upsample2(x):
    """Bilinear ×2 by output size (not scale_factor), as Real-ESRGAN does, half-pixel centres."""
    return F.interpolate(x, size=[x.shape[2] * 2, x.shape[3] * 2], mode="bilinear", align_corners=False)


class UNetDiscriminatorSN(nn.Layer):
    """Real-ESRGAN's U-Net discriminator: a realness logit for every input pixel.

    conv0 (3×3, bias) then three spectrally normalised 4×4 stride-2 convs go down to 1/8 size with
    nf→2nf→4nf→8nf channels; three rounds of bilinear ×2 + SN 3×3 conv come back up (8nf→4nf→2nf→nf),
    adding the encoder feature of the same size when `skip_connection`; two SN 3×3 convs and a plain
    3×3 conv (bias) give the one-channel map. Per-pixel feedback suits degradations that vary across
    the image; the sides must be multiples of 8.
    """

    def __init__(self, in_nc: int = 3, nf: int = 64, skip_connection: bool = True):
        super().__init__()
        self.in_nc, self.nf, self.skip_connection = in_nc, nf, skip_connection
        self.conv0 = nn.Conv2D(in_nc, nf, 3, 1, 1)
        self.conv1 = _sn_conv(nf, nf * 2, 4, 2)
        self.conv2 = _sn_conv(nf * 2, nf * 4, 4, 2)
        self.conv3 = _sn_conv(nf * 4, nf * 8, 4, 2)
        self.conv4 = _sn_conv(nf * 8, nf * 4, 3, 1)
        self.conv5 = _sn_conv(nf * 4, nf * 2, 3, 1)
        self.conv6 = _sn_conv(nf * 2, nf, 3, 1)
        self.conv7 = _sn_conv(nf, nf, 3, 1)
        self.conv8 = _sn_conv(nf, nf, 3, 1)
        self.conv9 = nn.Conv2D(nf, 1, 3, 1, 1)

    def forward(self, x):
        if x.shape[2] % 8 or x.shape[3] % 8:
            raise ValueError(
                f"UNetDiscriminatorSN needs sides that are multiples of 8, got {x.shape[2]}×{x.shape[3]}: "
                "set train.patch_size to a multiple of 8"
            )
        x0 = _lrelu(self.conv0(x))
        x1 = _lrelu(self.conv1(x0))
        x2 = _lrelu(self.conv2(x1))
        x3 = _lrelu(self.conv3(x2))
        x4 = _lrelu(self.conv4(_upsample2(x3)))
        if self.skip_connection:
            x4 = x4 + x2
        x5 = _lrelu(self.conv5(_upsample2(x4)))
        if self.skip_connection:
            x5 = x5 + x1
        x6 = _lrelu(self.conv6(_upsample2(x5)))
        if self.skip_connection:
            x6 = x6 + x0
        out = _lrelu(self.conv7(x6))
        out = _lrelu(self.conv8(out))
        return self.conv9(out)


def check_patch_size(arch: DiscriminatorArch, patch_size: int) -> None:
    """Refuse, before training starts, an HR patch size the chosen discriminator cannot take."""
    if arch == "vgg128" and patch_size != VGGDiscriminator128.INPUT_SIZE:
        raise UserError(
            f"train.patch_size is {patch_size} but discriminator.arch vgg128 takes 128×128 patches only: "
            "set train.patch_size: 128, or discriminator.arch: unet"
        )
    if arch == "unet" and patch_size % 8:
        raise UserError(
            f"train.patch_size is {patch_size} but discriminator.arch unet needs a multiple of 8: "
            f"set train.patch_size: {max(8, patch_size // 8 * 8)}"
        )


def build_discriminator(arch: DiscriminatorArch, in_nc: int = 3, nf: int = 64,
                        skip_connection: bool = True) -> nn.Layer:
    """The discriminator named by the recipe key `discriminator.arch` (`vgg128` or `unet`)."""
    if arch == "vgg128":
        return VGGDiscriminator128(in_nc=in_nc, nf=nf)
    if arch == "unet":
        return UNetDiscriminatorSN(in_nc=in_nc, nf=nf, skip_connection=skip_connection)
    raise UserError(f"discriminator.arch is {arch!r}: use vgg128 (ESRGAN) or unet (Real-ESRGAN)")


def set_trainable(net: nn.Layer, trainable: bool) -> None:
    """Freeze or unfreeze a network's parameters.

    The generator update freezes the discriminator, so its backward pass neither computes nor
    accumulates discriminator gradients that the discriminator step would then have to discard.
    """
    for param in net.parameters():
        param.stop_gradient = not trainable
