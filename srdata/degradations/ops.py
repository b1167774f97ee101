"""The degradation ops: each reads its YAML keys, draws its values, and applies recorded values.

Images: H x W x 3 in OpenCV's BGR channel order, either uint8 or float on the 0-255 scale
(float32; float64 after the `matlab` resize). An op takes whichever it is given and returns
float unless it needs uint8 (JPEG, WebP, quantize), so nothing is rounded between two float
steps; the pipeline rounds once at the end (`as_uint8`). Noise sigmas are on the 0-255 scale.

Each op class has:
- `parse(keys, p)`: its YAML keys (see `srdata.degradations.spec`), with bounds checked;
- `draw(ctx)`: the values of one firing, plain numbers, drawn only from `ctx.rng`;
- `apply(img, values, ctx)`: the image with exactly those values (a static method: a record is
  re-applied from its values alone); noise fields come from `ctx.seed` and the recorded stream;
- `label(values)`: a short text for `srdata preview`.

albumentations (`srdata.degradations.albu`) applies the ops it has where they fit, always
through a transform's `apply` with srkit's values, so it never draws anything itself:
UnsharpMask, ISONoise, ImageCompression (WebP). Those transforms work on float images in [0, 1]
and clip their output to it; srkit scales to and from that range around them. The rest is
OpenCV, numpy, scipy.fft or Pillow, and each op says why albumentations does not fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import cv2
import numpy as np
from PIL import Image
from scipy import fft

from srdata.degradations.albu import compression, iso_noise, unsharp_mask
from srdata.degradations.kernels import (GENERALIZED_KINDS, KINDS, PLATEAU_KINDS, gaussian_ksize, shaped_kernel,
                                         sinc_kernel)
from srdata.degradations.spec import REQUIRED, IntRange, Keys, Range, Weights, fires
from srdata.resize import FILTERS, resize, to_uint8

# Largest blur/sharpen sigma in pixels (a 121 px kernel: any image is a flat colour long before) and largest
# Gaussian noise sigma (0-255 scale); srdata build's --blur/--noise shorthand has the same bounds.
MAX_SIGMA = 20
MAX_NOISE_SIGMA = 255
_UNIT = np.float32(1 / 255)
_LEVELS = np.float32(255)


@dataclass
class DrawContext:
    """The generator every value of one image is drawn from, and the count of noise streams."""

    rng: np.random.Generator
    streams: int = 0

    def stream(self) -> int:
        """A new noise stream number: the field is default_rng([image seed, stream])."""
        self.streams += 1
        return self.streams


@dataclass(frozen=True)
class ApplyContext:
    lr_size: tuple[int, int]  # (width, height) the pipeline must end at
    seed: int | None  # the image seed noise streams derive from (None: no noise was drawn)

    def noise_rng(self, stream: int) -> np.random.Generator:
        if self.seed is None:
            raise ValueError("the record has noise steps but no seed")
        return np.random.default_rng([self.seed, stream])


def as_float(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float32) if img.dtype == np.uint8 else img


def as_uint8(img: np.ndarray) -> np.ndarray:
    """Round half to even and clip, once (uint8 passes through)."""
    return img if img.dtype == np.uint8 else to_uint8(img)


def to_unit(img: np.ndarray) -> np.ndarray:
    """0-255 (uint8 or float) -> float32 in [0, 1], what albumentations' float transforms take."""
    return img.astype(np.float32) * _UNIT


def from_unit(img: np.ndarray) -> np.ndarray:
    return img * _LEVELS


def gaussian_blur(img: np.ndarray, sigma: float, ksize: int) -> np.ndarray:
    """Isotropic Gaussian blur to float32 with OpenCV's default border (BORDER_REFLECT_101).

    An isotropic Gaussian is separable: cv2.sepFilter2D with cv2.getGaussianKernel is the same
    filter as BasicSR's 2-D isotropic kernel (the 2-D kernel is the outer product of the 1-D one)
    at a fraction of the cost of a 2-D convolution, and it reads uint8 straight into float32, so
    nothing is rounded. It is also exactly what the --blur shorthand has always done.
    """
    kernel = cv2.getGaussianKernel(ksize, sigma, cv2.CV_32F)
    src = img if img.dtype in (np.uint8, np.float32) else img.astype(np.float32)
    return cv2.sepFilter2D(src, cv2.CV_32F, kernel, kernel)


def convolve(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """float32 correlation with an odd square kernel, OpenCV's default border (BORDER_REFLECT_101),
    not clipped.

    albumentations' AdvancedBlur and RingingOvershoot apply their kernels with cv2.filter2D (and
    clip to [0, 1]), but for kernels of 13 px and more cv2.filter2D switches to a DFT that took
    5.7 ms on a 256 x 256 colour patch here, against 1.7 ms for the same correlation through
    scipy.fft (float32, one thread) and 1.0 ms for cv2.filter2D's direct path at 11 px. So kernels
    up to 11 px go to cv2.filter2D, larger ones to scipy.fft on the reflect-101 padded image; the
    two agree within 2e-4 grey levels.
    """
    src = img if img.dtype == np.float32 else img.astype(np.float32)
    side = kernel.shape[0]
    if side <= 11:
        return cv2.filter2D(src, -1, kernel)
    r = side // 2
    height, width = src.shape[:2]
    padded = cv2.copyMakeBorder(src, r, r, r, r, cv2.BORDER_REFLECT_101)
    shape = (fft.next_fast_len(padded.shape[0], real=True), fft.next_fast_len(padded.shape[1], real=True))
    spectrum = fft.rfft2(padded, s=shape, axes=(0, 1), workers=1)
    spectrum *= fft.rfft2(kernel[::-1, ::-1], s=shape, workers=1)[:, :, None]  # correlation = flipped convolution
    out = fft.irfft2(spectrum, s=shape, axes=(0, 1), workers=1)
    return np.ascontiguousarray(out[2 * r:2 * r + height, 2 * r:2 * r + width])


def _fmt(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True)
class Op:
    """Base of the ops; `p` is the probability that the step fires."""

    name: ClassVar[str]
    p: float

    def draw(self, ctx: DrawContext) -> dict:
        return {}

    def draw_into(self, ctx: DrawContext, out: list[dict], force: bool = False) -> None:
        """Append {"op": name, **values} to `out` if the step fires (always when `force`)."""
        if force or fires(self.p, ctx.rng):
            out.append({"op": self.name, **self.draw(ctx)})

    def ends_at_lr(self, at_lr: bool) -> bool:
        """Whether the image is surely at the LR size after this step, given whether it was."""
        return at_lr


@dataclass(frozen=True)
class Blur(Op):
    """Blur with a Gaussian (iso/aniso), generalized Gaussian, plateau or sinc kernel.

    `iso` runs as a separable Gaussian (`gaussian_blur`); the other kernels are built by
    `srdata.degradations.kernels` from the drawn values (albumentations builds its generalized
    Gaussian and sinc kernels only inside its own random draws, and has no plateau kernel) and
    applied by `convolve`.
    """

    name = "blur"

    kernels: Weights
    sinc_prob: float
    ksize: IntRange | None
    sigma: Range
    rotation: Range
    beta_g: Range
    beta_p: Range
    sinc_cutoff: Range
    sinc_cutoff_small: Range

    @classmethod
    def parse(cls, keys: Keys, p: float) -> Blur:
        kernels = keys.weights("kernels", ["iso"], KINDS)
        sinc_prob = keys.prob("sinc_prob", 0.0)
        if keys.raw.get("ksize") == "auto":  # the default: 2*ceil(3*sigma)+1 from the drawn sigma
            keys.raw.pop("ksize")
        ksize = keys.int_range("ksize", None, 3, 51, odd=True)
        sigma = keys.range("sigma", REQUIRED, 0, MAX_SIGMA, lo_open=True, unit=" pixels")
        rotation = keys.range("rotation", (-180, 180), -180, 180, unit=" degrees")
        beta_g = keys.range("beta_g", (0.5, 4), 0, 16, lo_open=True)
        beta_p = keys.range("beta_p", (1, 2), 0, 16, lo_open=True)
        sinc_cutoff = keys.range("sinc_cutoff", (0.6283, 3.1416), 0, 3.1416, lo_open=True, unit=" radians")
        sinc_cutoff_small = keys.range("sinc_cutoff_small", (1.0472, 3.1416), 0, 3.1416, lo_open=True, unit=" radians")
        if sinc_prob > 0 and ksize is None:
            raise keys.where.error("ksize", "a sinc kernel needs a size: give ksize (odd, e.g. [7, 21]) with sinc_prob")
        return cls(p, kernels, sinc_prob, ksize, sigma, rotation, beta_g, beta_p, sinc_cutoff, sinc_cutoff_small)

    def draw(self, ctx: DrawContext) -> dict:
        rng = ctx.rng
        ksize = None if self.ksize is None else self.ksize.draw(rng)
        if fires(self.sinc_prob, rng):
            # BasicSR: kernels under 13 px keep the cutoff above pi/3 (a low cutoff needs room)
            cutoff = (self.sinc_cutoff_small if ksize < 13 else self.sinc_cutoff).draw(rng)
            return {"kernel": "sinc", "ksize": ksize, "cutoff": cutoff}
        kind = self.kernels.draw(rng)
        values = {"kernel": kind, "sigma": self.sigma.draw(rng)}
        if kind.endswith("aniso"):
            values["sigma_y"] = self.sigma.draw(rng)
            values["rotation"] = self.rotation.draw(rng)
        if kind in GENERALIZED_KINDS:
            values["beta"] = self.beta_g.draw_split_at_one(rng)
        elif kind in PLATEAU_KINDS:
            values["beta"] = self.beta_p.draw_split_at_one(rng)
        widest = max(values["sigma"], values.get("sigma_y", 0.0))
        values["ksize"] = ksize if ksize is not None else gaussian_ksize(widest)
        return values

    @staticmethod
    def apply(img: np.ndarray, v: dict, ctx: ApplyContext) -> np.ndarray:
        if v["kernel"] == "iso":
            return gaussian_blur(img, v["sigma"], v["ksize"])
        if v["kernel"] == "sinc":
            return convolve(img, sinc_kernel(v["ksize"], v["cutoff"]))
        return convolve(img, shaped_kernel(v["kernel"], v["ksize"], v["sigma"], v.get("sigma_y", v["sigma"]),
                                           v.get("rotation", 0.0), v.get("beta", 1.0)))

    @staticmethod
    def label(v: dict) -> str:
        if v["kernel"] == "sinc":
            return f"blur sinc k{v['ksize']} w{_fmt(v['cutoff'])}"
        text = f"blur {v['kernel']} k{v['ksize']} s{_fmt(v['sigma'])}"
        if "sigma_y" in v:
            text += f"/{_fmt(v['sigma_y'])} r{_fmt(v['rotation'])}"
        return text + (f" b{_fmt(v['beta'])}" if "beta" in v else "")


@dataclass(frozen=True)
class Sinc(Op):
    """A 2-D sinc (circular low-pass) filter: ringing and overshoot around edges, as Real-ESRGAN's
    final sinc step (what albumentations' RingingOvershoot does, with the kernel built from the
    recorded values and applied by `convolve`)."""

    name = "sinc"

    ksize: IntRange
    cutoff: Range

    @classmethod
    def parse(cls, keys: Keys, p: float) -> Sinc:
        ksize = keys.int_range("ksize", (7, 21), 3, 51, odd=True)
        cutoff = keys.range("cutoff", (1.0472, 3.1416), 0, 3.1416, lo_open=True, unit=" radians")
        return cls(p, ksize, cutoff)

    def draw(self, ctx: DrawContext) -> dict:
        return {"ksize": self.ksize.draw(ctx.rng), "cutoff": self.cutoff.draw(ctx.rng)}

    @staticmethod
    def apply(img: np.ndarray, v: dict, ctx: ApplyContext) -> np.ndarray:
        return convolve(img, sinc_kernel(v["ksize"], v["cutoff"]))

    @staticmethod
    def label(v: dict) -> str:
        return f"sinc k{v['ksize']} w{_fmt(v['cutoff'])}"


@dataclass(frozen=True)
class Resize(Op):
    """Resize by a drawn factor (of the current image or of the LR size), or to exactly the LR size.

    OpenCV's cv2.resize (and srkit's MATLAB bicubic), the filters `--down` has always offered;
    albumentations' Resize is cv2.resize to a fixed size and draws nothing, so it adds nothing.
    `modes` (up/down/keep weights) follows Real-ESRGAN: up draws the factor from [1, HI], down
    from [LO, 1], keep does not resize. A new size is floor(side x factor), at least 1 pixel.
    """

    name = "resize"
    MODES = ("up", "down", "keep")

    to: str | None
    of: str
    modes: Weights | None
    scale: Range | None
    filters: Weights

    @classmethod
    def parse(cls, keys: Keys, p: float) -> Resize:
        to = keys.choice("to", None, ("lr",))
        of = keys.choice("of", None, ("image", "lr"))
        modes = keys.weights("modes", None, cls.MODES)
        scale = keys.range("scale", None, 0, 16, lo_open=True)
        filters = keys.weights("filters", ["bicubic"], FILTERS)
        if to is not None:
            for key, value in (("of", of), ("modes", modes), ("scale", scale)):
                if value is not None:
                    raise keys.where.error(key, "not used with `to: lr` (which resizes to exactly the LR size); remove it")
        elif scale is None:
            raise keys.where.error("scale", "missing; give a factor range [LO, HI] (or `to: lr` for the LR size)")
        elif modes is not None and (("up" in modes and scale.hi < 1) or ("down" in modes and scale.lo > 1)):
            raise keys.where.error("scale", f"[{_fmt(scale.lo)}, {_fmt(scale.hi)}] must contain 1 with modes up/down "
                                   "(up draws from [1, HI], down from [LO, 1])")
        return cls(p, to, of or "image", modes, scale, filters)

    def draw(self, ctx: DrawContext) -> dict:
        rng = ctx.rng
        if self.to is not None:
            return {"to": self.to, "filter": self.filters.draw(rng)}
        values = {}
        if self.modes is None:
            factor = self.scale.draw(rng)
        else:
            mode = self.modes.draw(rng)
            values["mode"] = mode
            if mode == "keep":
                return values
            factor = (Range(1.0, self.scale.hi) if mode == "up" else Range(self.scale.lo, 1.0)).draw(rng)
        return {**values, "of": self.of, "scale": factor, "filter": self.filters.draw(rng)}

    def ends_at_lr(self, at_lr: bool) -> bool:
        if self.to is not None:
            return True if self.p >= 1 else at_lr
        if self.p <= 0 or (self.modes is not None and self.modes.names == ("keep",)):
            return at_lr
        return False

    @staticmethod
    def apply(img: np.ndarray, v: dict, ctx: ApplyContext) -> np.ndarray:
        if v.get("mode") == "keep":
            return img
        if "to" in v:
            size = ctx.lr_size
        else:
            base = (img.shape[1], img.shape[0]) if v["of"] == "image" else ctx.lr_size
            size = tuple(max(1, math.floor(side * v["scale"])) for side in base)
        return resize(as_float(img), size, v["filter"])

    @staticmethod
    def label(v: dict) -> str:
        if v.get("mode") == "keep":
            return "resize: keep"
        if "to" in v:
            return f"resize to LR {v['filter']}"
        return f"resize x{_fmt(v['scale'])} of {v['of']} {v['filter']}"


@dataclass(frozen=True)
class Noise(Op):
    """Gaussian or Poisson noise, in colour (per channel) or grey (one field for all channels).

    numpy, not albumentations: GaussNoise's apply is an addition and a clip to [0, 1] of a field
    it would draw itself, and srkit needs the field from its own seed; adding it on the 0-255
    scale keeps the --noise shorthand's pixels byte-identical. Poisson follows BasicSR, which
    albumentations' ShotNoise does not (that one works in linear light with another scale): the
    image rounded to 8 bits, v = the number of distinct levels rounded up to a power of 2, noise =
    Poisson(image x v) / v - image, times the drawn scale. The distinct levels are counted with
    a 256-bin histogram (np.bincount) instead of np.unique's sort. The result is clipped to 0-255.
    """

    name = "noise"
    KINDS = ("gaussian", "poisson")

    kinds: Weights
    sigma: Range | None
    poisson_scale: Range | None
    grey_prob: float

    @classmethod
    def parse(cls, keys: Keys, p: float) -> Noise:
        kinds = keys.weights("kinds", ["gaussian"], cls.KINDS)
        sigma = keys.range("sigma", REQUIRED if "gaussian" in kinds else None, 0, MAX_NOISE_SIGMA, unit=" (0-255 scale)")
        poisson_scale = keys.range("poisson_scale", REQUIRED if "poisson" in kinds else None, 0, 100)
        grey_prob = keys.prob("grey_prob", 0.0)
        return cls(p, kinds, sigma, poisson_scale, grey_prob)

    def draw(self, ctx: DrawContext) -> dict:
        kind = self.kinds.draw(ctx.rng)
        amount = (self.sigma if kind == "gaussian" else self.poisson_scale).draw(ctx.rng)
        grey = fires(self.grey_prob, ctx.rng)
        key = "sigma" if kind == "gaussian" else "scale"
        return {"kind": kind, key: amount, "grey": grey, "stream": ctx.stream()}

    @staticmethod
    def apply(img: np.ndarray, v: dict, ctx: ApplyContext) -> np.ndarray:
        rng = ctx.noise_rng(v["stream"])
        if v["kind"] == "gaussian":
            noise = rng.standard_normal(img.shape[:2] if v["grey"] else img.shape, dtype=np.float32)
            noise *= np.float32(v["sigma"])
        else:
            noise = poisson_noise(img, v["grey"], rng) * np.float32(v["scale"])
        out = as_float(img) + (noise[..., None] if v["grey"] else noise)
        return np.clip(out, 0, 255, out=out)

    @staticmethod
    def label(v: dict) -> str:
        colour = "grey" if v["grey"] else "colour"
        amount = f"s{_fmt(v['sigma'])}" if v["kind"] == "gaussian" else f"x{_fmt(v['scale'])}"
        return f"noise {v['kind']} {colour} {amount}"


def poisson_noise(img: np.ndarray, grey: bool, rng: np.random.Generator) -> np.ndarray:
    """BasicSR's Poisson noise field on the 0-255 scale (before the scale factor), float32."""
    if grey:
        src = img if img.dtype in (np.uint8, np.float32) else img.astype(np.float32)
        img = cv2.cvtColor(src, cv2.COLOR_BGR2GRAY)
    levels = as_uint8(img)
    distinct = np.count_nonzero(np.bincount(levels.ravel(), minlength=256))
    values = 2.0 ** math.ceil(math.log2(distinct))
    lam = (np.arange(256) * (values / 255))[levels]
    counts = rng.poisson(lam)
    return (counts * (255 / values) - levels).astype(np.float32)


@dataclass(frozen=True)
class IsoNoise(Op):
    """Camera sensor noise (luminance Poisson + colour shift in HLS): albumentations' ISONoise,
    with the noise field's seed from the record."""

    name = "iso_noise"

    color_shift: Range
    intensity: Range

    @classmethod
    def parse(cls, keys: Keys, p: float) -> IsoNoise:
        color_shift = keys.range("color_shift", (0.01, 0.05), 0, 1)
        intensity = keys.range("intensity", (0.1, 0.5), 0, 10)
        return cls(p, color_shift, intensity)

    def draw(self, ctx: DrawContext) -> dict:
        return {"color_shift": self.color_shift.draw(ctx.rng), "intensity": self.intensity.draw(ctx.rng),
                "stream": ctx.stream()}

    @staticmethod
    def apply(img: np.ndarray, v: dict, ctx: ApplyContext) -> np.ndarray:
        if ctx.seed is None:
            raise ValueError("the record has noise steps but no seed")
        rgb = np.clip(to_unit(img)[:, :, ::-1], 0, 1)  # ISONoise works in RGB
        out = iso_noise().apply(np.ascontiguousarray(rgb), color_shift=v["color_shift"], intensity=v["intensity"],
                                random_seed=[ctx.seed, v["stream"]])
        return from_unit(np.ascontiguousarray(out[:, :, ::-1]))

    @staticmethod
    def label(v: dict) -> str:
        return f"iso_noise c{_fmt(v['color_shift'])} i{_fmt(v['intensity'])}"


@dataclass(frozen=True)
class Jpeg(Op):
    """JPEG encode and decode (libjpeg through OpenCV) at a quality, with 4:2:0 or 4:4:4 chroma.

    OpenCV directly: albumentations' ImageCompression has no chroma subsampling option (it
    always writes OpenCV's default, 4:2:0). OpenCV is given the channels in BGR order, so the
    YCbCr conversion sees the colours right.
    """

    name = "jpeg"
    CHROMA = {"420": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420, "444": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444}

    quality: IntRange
    chroma: Weights

    @classmethod
    def parse(cls, keys: Keys, p: float) -> Jpeg:
        quality = keys.int_range("quality", REQUIRED, 1, 100)
        chroma = keys.weights("chroma", ["420"], tuple(cls.CHROMA))
        return cls(p, quality, chroma)

    def draw(self, ctx: DrawContext) -> dict:
        return {"quality": self.quality.draw(ctx.rng), "chroma": self.chroma.draw(ctx.rng)}

    @staticmethod
    def apply(img: np.ndarray, v: dict, ctx: ApplyContext) -> np.ndarray:
        params = [cv2.IMWRITE_JPEG_QUALITY, int(v["quality"]),
                  cv2.IMWRITE_JPEG_SAMPLING_FACTOR, Jpeg.CHROMA[v["chroma"]]]
        ok, buf = cv2.imencode(".jpg", as_uint8(img), params)
        if not ok:
            raise RuntimeError("cv2.imencode failed to write a JPEG")
        return cv2.imdecode(buf, cv2.IMREAD_COLOR)

    @staticmethod
    def label(v: dict) -> str:
        return f"jpeg q{v['quality']} {v['chroma']}"


@dataclass(frozen=True)
class Webp(Op):
    """WebP encode and decode at a quality: albumentations' ImageCompression (.webp)."""

    name = "webp"

    quality: IntRange

    @classmethod
    def parse(cls, keys: Keys, p: float) -> Webp:
        return cls(p, keys.int_range("quality", REQUIRED, 1, 100))

    def draw(self, ctx: DrawContext) -> dict:
        return {"quality": self.quality.draw(ctx.rng)}

    @staticmethod
    def apply(img: np.ndarray, v: dict, ctx: ApplyContext) -> np.ndarray:
        return compression().apply(as_uint8(img), quality=int(v["quality"]), image_type=".webp")

    @staticmethod
    def label(v: dict) -> str:
        return f"webp q{v['quality']}"


@dataclass(frozen=True)
class Sharpen(Op):
    """Unsharp-mask sharpening (halos, as over-sharpened anime sources have): albumentations'
    UnsharpMask. The Gaussian has the drawn sigma (kernel 2*ceil(3*sigma)+1), `amount` is how much
    of the detail is added back, `threshold` (0-255) leaves differences below it unsharpened."""

    name = "sharpen"

    sigma: Range
    amount: Range
    threshold: int

    @classmethod
    def parse(cls, keys: Keys, p: float) -> Sharpen:
        sigma = keys.range("sigma", REQUIRED, 0, MAX_SIGMA, lo_open=True, unit=" pixels")
        amount = keys.range("amount", REQUIRED, 0, 10)
        threshold = keys.integer("threshold", 0, 0, 255)
        return cls(p, sigma, amount, threshold)

    def draw(self, ctx: DrawContext) -> dict:
        return {"sigma": self.sigma.draw(ctx.rng), "amount": self.amount.draw(ctx.rng), "threshold": self.threshold}

    @staticmethod
    def apply(img: np.ndarray, v: dict, ctx: ApplyContext) -> np.ndarray:
        unsharp = unsharp_mask(int(v["threshold"]))
        out = unsharp.apply(np.clip(to_unit(img), 0, 1), ksize=gaussian_ksize(v["sigma"]), sigma=v["sigma"],
                            alpha=v["amount"])
        return from_unit(out)

    @staticmethod
    def label(v: dict) -> str:
        return f"sharpen s{_fmt(v['sigma'])} a{_fmt(v['amount'])}"


@dataclass(frozen=True)
class Quantize(Op):
    """Colour quantization to a palette of N colours (median cut), optionally Floyd-Steinberg
    dithered: Pillow. albumentations has only Posterize (dropping low bits per channel), no
    palette and no dithering."""

    name = "quantize"

    colors: IntRange
    dither: float

    @classmethod
    def parse(cls, keys: Keys, p: float) -> Quantize:
        return cls(p, keys.int_range("colors", REQUIRED, 2, 256), keys.prob("dither", 0.0))

    def draw(self, ctx: DrawContext) -> dict:
        return {"colors": self.colors.draw(ctx.rng), "dither": fires(self.dither, ctx.rng)}

    @staticmethod
    def apply(img: np.ndarray, v: dict, ctx: ApplyContext) -> np.ndarray:
        rgb = Image.fromarray(np.ascontiguousarray(as_uint8(img)[:, :, ::-1]))
        palette = rgb.quantize(int(v["colors"]), method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        if v["dither"]:
            palette = rgb.quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG)
        return np.ascontiguousarray(np.asarray(palette.convert("RGB"))[:, :, ::-1])

    @staticmethod
    def label(v: dict) -> str:
        return f"quantize {v['colors']}" + (" dither" if v["dither"] else "")


# The op name a pipeline file writes -> the class that runs it.
OPS: dict[str, type[Op]] = {cls.name: cls for cls in (Blur, Sinc, Resize, Noise, IsoNoise, Jpeg, Webp, Sharpen,
                                                      Quantize)}

