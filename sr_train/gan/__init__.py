"""Building blocks of the adversarial (ESRGAN) stage: discriminators, VGG perceptual loss, RaGAN losses.

The training loop in `sr_train/fit.py` composes them; each is usable and tested on its own.
"""

from sr_train.gan.discriminators import (
    UNetDiscriminatorSN,
    VGGDiscriminator128,
    build_discriminator,
    check_patch_size,
    set_trainable,
)
from sr_train.gan.losses import DiscriminatorLoss, ragan_discriminator_loss, ragan_generator_loss
from sr_train.gan.perceptual import PerceptualLoss, VGGFeatures, check_weights_setting

__all__ = [
    "DiscriminatorLoss",
    "PerceptualLoss",
    "UNetDiscriminatorSN",
    "VGGDiscriminator128",
    "VGGFeatures",
    "build_discriminator",
    "check_patch_size",
    "check_weights_setting",
    "ragan_discriminator_loss",
    "ragan_generator_loss",
    "set_trainable",
]
