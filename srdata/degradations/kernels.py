"""Blur kernels as normalized float32 numpy arrays, from the parameters a record holds.

The formulas are BasicSR's (basicsr/data/degradations.py), which Real-ESRGAN samples from:
with x the pixel offset from the kernel centre and Σ = R(θ) diag(σx², σy²) R(θ)ᵀ,
- Gaussian: exp(-½ xᵀΣ⁻¹x),
- generalized Gaussian: exp(-½ (xᵀΣ⁻¹x)^β) (β < 1 heavier tails, β > 1 flatter top),
- plateau: 1 / (1 + (xᵀΣ⁻¹x)^β),
- sinc (circular low-pass, ringing): ω·J1(ω r) / (2π r), ω²/(4π) at the centre,
each divided by its sum. albumentations builds the generalized Gaussian (AdvancedBlur) and the
sinc (RingingOvershoot) only inside its transforms' own random draws, with no function that
takes the values, and has no plateau kernel; so the kernels are built here and applied with the
transforms' `apply` (see srdata.degradations.ops).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

GAUSSIAN_KINDS = ("iso", "aniso")
GENERALIZED_KINDS = ("generalized_iso", "generalized_aniso")
PLATEAU_KINDS = ("plateau_iso", "plateau_aniso")
KINDS = (*GAUSSIAN_KINDS, *GENERALIZED_KINDS, *PLATEAU_KINDS)


def gaussian_ksize(sigma: float) -> int:
    """Kernel side 2*ceil(3*sigma)+1 (covers +-3 sigma): what `ksize: auto` means."""
    return 2 * math.ceil(3 * sigma) + 1


def _squared_distance(ksize: int, sigma_x: float, sigma_y: float, rotation_deg: float) -> np.ndarray:
    """xᵀΣ⁻¹x on a ksize x ksize grid centred on the middle pixel."""
    axis = np.arange(ksize, dtype=np.float64) - (ksize - 1) / 2
    xx, yy = np.meshgrid(axis, axis)
    theta = math.radians(rotation_deg)
    cos, sin = math.cos(theta), math.sin(theta)
    rotation = np.array([[cos, -sin], [sin, cos]])
    inverse = np.linalg.inv(rotation @ np.diag([sigma_x**2, sigma_y**2]) @ rotation.T)
    return inverse[0, 0] * xx * xx + (inverse[0, 1] + inverse[1, 0]) * xx * yy + inverse[1, 1] * yy * yy


def shaped_kernel(kind: str, ksize: int, sigma_x: float, sigma_y: float, rotation_deg: float,
                  beta: float = 1.0) -> np.ndarray:
    """A Gaussian, generalized Gaussian or plateau kernel (`kind` from KINDS).

    The *_iso kinds use sigma_x for both axes (sigma_y and rotation are ignored), as BasicSR does.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kernel kind {kind!r}")
    if kind.endswith("iso") and not kind.endswith("aniso"):
        sigma_y, rotation_deg = sigma_x, 0.0
    d2 = _squared_distance(ksize, sigma_x, sigma_y, rotation_deg)
    if kind in GAUSSIAN_KINDS:
        kernel = np.exp(-0.5 * d2)
    elif kind in GENERALIZED_KINDS:
        kernel = np.exp(-0.5 * np.power(d2, beta))
    else:
        kernel = 1.0 / (np.power(d2, beta) + 1.0)
    return (kernel / kernel.sum()).astype(np.float32)


def sinc_kernel(ksize: int, cutoff: float) -> np.ndarray:
    """The circular low-pass (2-D sinc) kernel with cutoff frequency `cutoff` in radians (<= pi)."""
    axis = np.arange(ksize, dtype=np.float64) - (ksize - 1) / 2
    xx, yy = np.meshgrid(axis, axis)
    radius = np.hypot(xx, yy)
    centre = (ksize - 1) // 2
    radius[centre, centre] = 1.0  # replaced below; avoids 0/0
    kernel = cutoff * special.j1(cutoff * radius) / (2 * np.pi * radius)
    kernel[centre, centre] = cutoff**2 / (4 * np.pi)
    return (kernel / kernel.sum()).astype(np.float32)
