"""Relativistic average GAN losses (ESRGAN), with binary cross-entropy on logits.

A relativistic average discriminator does not ask "is this real?" but "is this more real than the
average of the other kind?": the real logits are judged relative to the mean fake logit and vice
versa. ESRGAN found this gives sharper, less artefact-prone textures than a standard GAN, and both
terms give the generator a gradient (the real images' term depends on the fakes' mean too).
"""

from __future__ import annotations

from typing import NamedTuple

import paddle
import paddle.nn.functional as F


def _bce_to(logits, label: float):
    """Mean binary cross-entropy of `logits` against a constant label (1 = real, 0 = fake)."""
    return F.binary_cross_entropy_with_logits(logits, paddle.full_like(logits, label))


def ragan_generator_loss(real_logits, fake_logits):
    """The generator's adversarial loss (not yet multiplied by the recipe's GAN weight).

    The labels are swapped with respect to the discriminator: the generator wants real images to
    look *less* real than the average fake, and fakes *more* real than the average real.
    `real_logits` are treated as constants (the discriminator is not being trained here); the
    gradient flows into the generator through `fake_logits` in both terms.
    """
    real_logits = real_logits.detach()
    loss_real = _bce_to(real_logits - paddle.mean(fake_logits), 0.0)
    loss_fake = _bce_to(fake_logits - paddle.mean(real_logits), 1.0)
    return (loss_real + loss_fake) / 2


class DiscriminatorLoss(NamedTuple):
    """The discriminator's loss split as PaddleGAN logs it: `total = real + fake`, each half-weighted."""

    total: paddle.Tensor
    real: paddle.Tensor
    fake: paddle.Tensor


def ragan_discriminator_loss(real_logits, fake_logits) -> DiscriminatorLoss:
    """The discriminator's loss: real should beat the average fake, fakes lose to the average real.

    `fake_logits` must come from a generator output that is detached (`D(sr.detach())`) so this
    loss trains the discriminator only. Each term uses the *other* kind's mean as a constant, so the
    real term's gradient reaches the discriminator through the real logits and the fake term's
    through the fake logits — the same gradients as PaddleGAN/BasicSR, which run D on the fakes one
    extra time to get a detached mean.
    """
    loss_real = _bce_to(real_logits - paddle.mean(fake_logits.detach()), 1.0) * 0.5
    loss_fake = _bce_to(fake_logits - paddle.mean(real_logits.detach()), 0.0) * 0.5
    return DiscriminatorLoss(total=loss_real + loss_fake, real=loss_real, fake=loss_fake)
