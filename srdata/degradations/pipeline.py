"""A degradation pipeline: parsed from YAML (a file or a preset), drawn per image, recorded, applied.

File format (every key is documented in README.md, "Degradation pipelines"):

    name: my-pipeline          # optional (default: the file name)
    description: ...           # optional
    source: ...                # optional: where the values come from
    steps:
      - op: blur               # an op (srdata.degradations.ops), with its probability p (default 1)
        p: 0.8
        sigma: [0.2, 3]
      - repeat:                # the steps again, each time with fresh draws
          times: [1, 2]
          steps: [...]
      - second_order:          # a second pass with its own ranges, with probability p
          p: 0.5
          steps: [...]
      - one_of:                # exactly one of these, chosen by relative weight
          - {weight: 1, steps: [...]}
          - {weight: 1, steps: [...]}

Every path through the steps must end at exactly the LR size (HR / scale), i.e. with a
`resize` to `lr` that always runs; this is checked when the file is read.

Per image, `Pipeline.draw(image_seed, scale)` draws every value from
numpy default_rng([image_seed, 0]) and returns a `Record`: the steps that fired, in the order
they ran, with plain numbers, and the image seed when a noise field needs it (field k is
default_rng([image_seed, k])). `Record.apply(hr)` makes the LR from the HR and the record alone,
so the record is what a manifest line stores and what `srdata inspect` re-applies.

Channel order: images are BGR uint8 (OpenCV's order, what srdata build holds); a caller with RGB
images (the trainer) flips the channels before and after.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import yaml

from srdata.degradations.ops import OPS, ApplyContext, DrawContext, as_uint8
from srdata.degradations.spec import REQUIRED, IntRange, Keys, Weights, Where, fires
from srdata.errors import UserError
from srdata.typed_yaml import read_file_bytes, yaml_mapping

PRESETS = ("seed", "realesrgan", "anime-video")
BLOCKS = ("repeat", "second_order", "one_of")
_PARAMETER_STREAM = 0  # default_rng([image_seed, 0]) draws the values; noise fields use 1, 2, ...


# ---------------------------------------------------------------------------------------------
# Blocks of steps


def draw_steps(steps, ctx: DrawContext, out: list[dict]) -> None:
    for step in steps:
        step.draw_into(ctx, out)


def steps_end_at_lr(steps, at_lr: bool) -> bool:
    for step in steps:
        at_lr = step.ends_at_lr(at_lr)
    return at_lr


@dataclass(frozen=True)
class Block:
    """`repeat` (the steps `times` times) or `second_order` (once more with their own ranges), run
    with probability p; each run draws fresh values."""

    name: str  # repeat | second_order
    p: float
    times: IntRange
    steps: tuple

    def draw_into(self, ctx: DrawContext, out: list[dict], force: bool = False) -> None:
        if force or fires(self.p, ctx.rng):
            for _ in range(max(self.times.draw(ctx.rng), 1 if force else 0)):
                draw_steps(self.steps, ctx, out)

    def ends_at_lr(self, at_lr: bool) -> bool:
        possible = {at_lr} if self.p < 1 or self.times.lo == 0 else set()
        state = at_lr
        for count in range(1, min(self.times.hi, 3) + 1):
            state = steps_end_at_lr(self.steps, state)
            if count >= self.times.lo:
                possible.add(state)
        return all(possible)


@dataclass(frozen=True)
class OneOf:
    """Exactly one of several step lists, chosen by relative weight."""

    name = "one_of"
    weights: Weights  # names "1", "2", ...: the choices' 1-based numbers
    choices: tuple

    def draw_into(self, ctx: DrawContext, out: list[dict], force: bool = False) -> None:
        draw_steps(self.choices[int(self.weights.draw(ctx.rng)) - 1], ctx, out)

    def ends_at_lr(self, at_lr: bool) -> bool:
        return all(steps_end_at_lr(self.choices[int(n) - 1], at_lr) for n in self.weights.names)


def parse_steps(items, where: Where) -> tuple:
    if not isinstance(items, list) or not items:
        raise where.error("steps", "must be a non-empty list of steps (`- op: NAME ...`)")
    return tuple(parse_step(item, where.child(i)) for i, item in enumerate(items, start=1))


def parse_step(item, where: Where):
    if isinstance(item, dict) and "op" in item:
        name = item["op"]
        if name not in OPS:
            close = [n for n in OPS if isinstance(name, str) and (n.startswith(name[:3]) or name in n)]
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise Where(where.file, where.step, str(name)).error(
                "op", f"{name!r} is not an op{hint}; choose one of {', '.join(OPS)}")
        keys = Keys({k: v for k, v in item.items() if k != "op"}, Where(where.file, where.step, name))
        op = OPS[name].parse(keys, keys.prob("p", 1.0))
        keys.done()
        return op
    if isinstance(item, dict) and len(item) == 1 and next(iter(item)) in BLOCKS:
        kind, body = next(iter(item.items()))
        here = Where(where.file, where.step, kind)
        if kind == "one_of":
            return _parse_one_of(body, here)
        keys = Keys(body, here, what=f"a {kind} block")
        p = keys.prob("p", 1.0)
        times = keys.int_range("times", REQUIRED, 0, 10) if kind == "repeat" else IntRange(1, 1)
        steps = parse_steps(keys.anything("steps", REQUIRED), here)
        keys.done()
        return Block(kind, p, times, steps)
    raise where.error(None, f"a step is `op: NAME` with its keys, or one of the blocks {', '.join(BLOCKS)}; "
                            f"got {item!r}")


def _parse_one_of(body, where: Where) -> OneOf:
    if not isinstance(body, list) or len(body) < 2:
        raise where.error(None, "one_of takes a list of at least two choices, each `{weight: W, steps: [...]}`")
    weights, choices = {}, []
    for i, choice in enumerate(body, start=1):
        here = where.child(i, "one_of choice")
        keys = Keys(choice, here, what="a one_of choice")
        weight = keys.range("weight", (1.0, 1.0), 0)
        if weight.lo != weight.hi:
            raise here.error("weight", "is one number >= 0 (relative to the other choices)")
        weights[str(i)] = weight.lo
        choices.append(parse_steps(keys.anything("steps", REQUIRED), here))
        keys.done()
    parsed = Keys({"weights": weights}, where).weights("weights", REQUIRED, tuple(weights))
    return OneOf(parsed, tuple(choices))


# ---------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class Record:
    """One image's degradation: the steps that fired with their values, in the order they ran.

    `seed` is the image seed the noise fields derive from (None when no step draws a field).
    `pipeline`/`pipeline_sha256` say where it came from; the pixels depend only on
    `pixels_key()`, so editing a pipeline file without changing what is drawn remakes nothing.
    """

    scale: int
    steps: tuple[dict, ...]
    seed: int | None = None
    pipeline: str = ""
    pipeline_sha256: str = ""

    def to_json(self) -> dict:
        return {"pipeline": self.pipeline, "pipeline_sha256": self.pipeline_sha256, **self.pixels_key()}

    def pixels_key(self) -> dict:
        return {"scale": self.scale, "seed": self.seed, "steps": [dict(step) for step in self.steps]}

    @classmethod
    def from_json(cls, data) -> Record:
        """A record as a manifest line stores it; ValueError if it is not one this srkit can apply.

        Manifests written before pipelines existed recorded the fixed recipe as {scale, blur_sigma,
        blur_ksize, filter, noise_sigma, jpeg_quality, seed}; those are read as the same steps."""
        if isinstance(data, dict) and "steps" not in data and "blur_sigma" in data:
            return cls._from_fixed_recipe(data)
        try:
            scale, steps, seed = int(data["scale"]), data["steps"], data.get("seed")
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a degradation record ({exc})") from None
        if not isinstance(steps, list) or not all(isinstance(s, dict) and s.get("op") in OPS for s in steps):
            raise ValueError("not a degradation record (steps must be ops this srkit knows)")
        return cls(scale, tuple(steps), None if seed is None else int(seed),
                   str(data.get("pipeline", "")), str(data.get("pipeline_sha256", "")))

    @classmethod
    def _from_fixed_recipe(cls, data: dict) -> Record:
        try:
            steps = []
            if float(data["blur_sigma"]) > 0:
                steps.append({"op": "blur", "kernel": "iso", "sigma": float(data["blur_sigma"]),
                              "ksize": int(data["blur_ksize"])})
            steps.append({"op": "resize", "to": "lr", "filter": str(data["filter"])})
            if float(data["noise_sigma"]) > 0:
                steps.append({"op": "noise", "kind": "gaussian", "sigma": float(data["noise_sigma"]), "grey": False,
                              "stream": 1})
            if data["jpeg_quality"] is not None:
                steps.append({"op": "jpeg", "quality": int(data["jpeg_quality"]), "chroma": "420"})
            seed = data["seed"] if float(data["noise_sigma"]) > 0 else None
            return cls(int(data["scale"]), tuple(steps), None if seed is None else int(seed), "shorthand")
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a degradation record ({exc})") from None

    def run(self, img: np.ndarray, lr_size: tuple[int, int]) -> np.ndarray:
        """The steps applied in order (any size; float or uint8, as the last step left it)."""
        ctx = ApplyContext(lr_size, self.seed)
        for values in self.steps:
            img = OPS[values["op"]].apply(img, values, ctx)
        return img

    def apply(self, hr: np.ndarray) -> np.ndarray:
        """BGR uint8 HR (height and width multiples of scale) -> BGR uint8 LR of (W/scale, H/scale)."""
        if hr.dtype != np.uint8 or hr.ndim != 3 or hr.shape[2] != 3:
            raise ValueError(f"Record.apply takes a BGR uint8 H x W x 3 image, got {hr.dtype} {hr.shape}")
        height, width = hr.shape[:2]
        if height % self.scale or width % self.scale:
            raise ValueError(f"HR {width}x{height} is not a multiple of the scale {self.scale}")
        lr_size = (width // self.scale, height // self.scale)
        lr = self.run(hr, lr_size)
        if (lr.shape[1], lr.shape[0]) != lr_size:
            raise ValueError(f"the steps ended at {lr.shape[1]}x{lr.shape[0]}, not the LR size {lr_size}")
        return as_uint8(lr)


def label(values: dict) -> str:
    """A short text for one recorded step (`srdata preview`)."""
    return OPS[values["op"]].label(values)


# ---------------------------------------------------------------------------------------------
# Pipelines


@dataclass(frozen=True)
class Pipeline:
    name: str
    description: str
    source: str  # where its values come from (citation), may be empty
    origin: str  # what the user gave: a preset name, a file path, or the shorthand options
    sha256: str  # of the file's bytes (the shorthand: of the YAML it stands for)
    steps: tuple

    def draw(self, image_seed: int, scale: int) -> Record:
        """The record of one image: every value drawn from default_rng([image_seed, 0])."""
        ctx = DrawContext(np.random.default_rng([image_seed, _PARAMETER_STREAM]))
        out: list[dict] = []
        draw_steps(self.steps, ctx, out)
        return Record(scale, tuple(out), image_seed if ctx.streams else None, self.name, self.sha256)

    def draw_alone(self, index: int, image_seed: int, scale: int) -> Record:
        """A record of top-level step `index` alone, forced to fire (what `srdata preview` shows)."""
        ctx = DrawContext(np.random.default_rng([image_seed, _PARAMETER_STREAM]))
        out: list[dict] = []
        self.steps[index].draw_into(ctx, out, force=True)
        return Record(scale, tuple(out), image_seed if ctx.streams else None, self.name, self.sha256)


def parse_pipeline(raw, file: str, origin: str, sha256: str) -> Pipeline:
    """A pipeline from its YAML mapping; any problem is a one-line UserError naming `file`, step and key."""
    keys = Keys(raw, Where(file), what="a pipeline file")
    name = keys.anything("name", Path(file).stem)
    description = keys.anything("description", "")
    source = keys.anything("source", "")
    for key, value in (("name", name), ("description", description), ("source", source)):
        if not isinstance(value, str):
            raise Where(file).error(key, f"must be text, got {value!r}")
    steps = parse_steps(keys.anything("steps", REQUIRED), Where(file))
    keys.done()
    if not steps_end_at_lr(steps, False):
        raise UserError(f"{file}: the steps do not always end at the LR size (HR / scale); add `- op: resize` "
                        "with `to: lr` (and p 1) after the last step that changes the size")
    return Pipeline(name, " ".join(description.split()), " ".join(source.split()), origin, sha256, steps)


def preset_path(name: str) -> Path:
    return Path(str(resources.files("srdata.degradations") / "presets" / f"{name}.yaml"))


def load_pipeline(spec: str) -> Pipeline:
    """A preset name (PRESETS) or a pipeline YAML file; anything else is a UserError."""
    path = preset_path(spec) if spec in PRESETS else Path(spec)
    if spec not in PRESETS and not (path.suffix.lower() in (".yaml", ".yml") or os.sep in spec or path.exists()):
        raise UserError(f"{spec!r} is not a preset ({', '.join(PRESETS)}) nor a .yaml pipeline file")
    data = read_file_bytes(path, "pipeline", str(preset_path("realesrgan")))  # parsed and hashed: the same bytes
    raw = yaml_mapping(data, path, "pipeline", "name, description, source, steps")
    return parse_pipeline(raw, str(path), f"preset {spec}" if spec in PRESETS else str(path),
                          hashlib.sha256(data).hexdigest())


def shorthand_pipeline(blur: float, down: str, noise: tuple[float, float] | None,
                       jpeg: tuple[int, int] | None) -> Pipeline:
    """The fixed pipeline `srdata build --blur/--down/--noise/--jpeg` stands for: Gaussian blur
    (kernel 2*ceil(3 sigma)+1), resize to the LR size with `down`, Gaussian noise (sigma or range,
    0-255 scale), JPEG (quality or range, 4:2:0). Its LRs are byte-identical to those srkit made
    before pipelines existed (tests/test_shorthand_identity.py). Its sha256 is that of the
    pipeline file it stands for (`yaml.safe_dump` of the steps)."""
    steps: list[dict] = []
    if blur > 0:
        steps.append({"op": "blur", "sigma": float(blur)})
    steps.append({"op": "resize", "to": "lr", "filters": [down]})
    if noise is not None and noise[1] > 0:
        steps.append({"op": "noise", "sigma": [float(noise[0]), float(noise[1])]})
    if jpeg is not None:
        steps.append({"op": "jpeg", "quality": [int(jpeg[0]), int(jpeg[1])]})
    raw = {"name": "shorthand", "steps": steps}
    sha256 = hashlib.sha256(yaml.safe_dump(raw, sort_keys=False).encode()).hexdigest()
    return parse_pipeline(raw, "the --blur/--down/--noise/--jpeg options", "shorthand options", sha256)


def source_seed(seed: int, sha256: str) -> int:
    """The image seed of a dataset source: from --seed and its content only (srdata build)."""
    digest = hashlib.sha256(f"srkit-degrade:{seed}:{sha256}".encode()).digest()
    return int.from_bytes(digest[:8], "big")
