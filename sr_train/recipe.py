"""Recipes: the YAML file that says what `sr-train fit` trains, as typed dataclasses (the schema),
their value checks, and loading (`srdata.typed_yaml` does the typed parsing).

Every key has a type and a default here, so a typo or a wrong type is caught before any work
starts, with the key, the file and the fix in one line. `--set key.path=value` overrides any key
(the value is parsed as YAML). A PaddleGAN config is recognised and translated first
(`sr_train.paddlegan_config`).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from sr_train.models import ARCHS, arch_args, complete_arch
from sr_train.paddlegan_config import is_paddlegan_config, translate_paddlegan
from srdata.degradations.pipeline import Pipeline, load_pipeline
from srdata.errors import UserError
from srdata.typed_yaml import from_dict, parse_override, read_yaml_mapping, set_path


@dataclass
class Folders:
    """A paired split given as two folders; images are matched by file name."""

    gt: str = ""  # high-resolution (ground truth) images
    lq: str = ""  # low-resolution (low quality) images, scale × smaller


@dataclass
class DataConfig:
    root: str | None = None  # a dataset made by `srdata build` (uses train/ + train_X{s}/, val/ + val_X{s}/)
    train: Folders | None = None  # or explicit folders
    val: Folders | None = None
    scale: int | None = None  # dataset.json's scale for `root`; inferred from image sizes for folders
    workers: int = 0  # DataLoader worker processes (0 = load in the training process)
    cache_dir: str = ""  # where training images are decoded once and memory-mapped ("": srkit's cache folder)
    flip: bool = True  # random horizontal/vertical flips of training crops
    transpose: bool = True  # random transposes (rotations by 90° combined with flips)
    degrade: str | None = None  # make each training LR on the fly from its HR patch with this pipeline (preset or YAML file)


@dataclass
class ModelConfig:
    arch: str = "compact"  # rrdbnet | compact
    nf: int | None = None  # features (None: the architecture's default)
    nb: int | None = None  # rrdbnet: RRDB blocks
    gc: int | None = None  # rrdbnet: dense-block growth channels
    nc: int | None = None  # compact: body convs
    skip: str | None = None  # compact: bicubic | nearest
    act: str | None = None  # compact: prelu | leakyrelu | relu
    scale: int | None = None  # None: the dataset's scale
    init_from: str | None = None  # start from these weights (srkit, PaddleGAN or Real-ESRGAN file)


@dataclass
class SchedulerConfig:
    name: str = "cosine_restart"  # cosine_restart | multistep | constant
    periods: list[int] | None = None  # cosine_restart: period lengths (None: one period of train.iters)
    restart_weights: list[float] | None = None  # cosine_restart: lr multiplier at each restart
    eta_min: float = 1e-7  # cosine_restart: lowest lr
    milestones: list[int] = field(default_factory=list)  # multistep: iterations where lr *= gamma
    gamma: float = 0.5  # multistep


@dataclass
class TrainConfig:
    iters: int = 1000
    batch_size: int = 16
    patch_size: int = 128  # HR pixels; the LR crop is patch_size / scale
    lr: float = 2e-4
    loss: str = "l1"  # l1 (ESRGAN/PaddleGAN's PSNR stage) | mse (learns faster on flat cartoon images, see fit.pixel_loss)
    clip_output: bool = False  # compare the output clipped to [0, 1] (as saved images are) with the HR patch
    beta1: float = 0.9
    beta2: float = 0.99
    weight_decay: float = 0.0
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    ema: float = 0.0  # EMA decay of the generator's weights (e.g. 0.999); 0 = off
    grad_clip: float = 0.0  # clip the global gradient norm to this; 0 = off
    amp: bool = False  # mixed precision; used on GPU only (ignored with a notice on CPU)
    amp_dtype: str = "float16"  # float16 (with loss scaling) | bfloat16 (GPUs that have it; no loss scaling)
    to_static: bool = False  # run the generator's training forward as a static graph (paddle.jit.to_static)
    processes: int = 0  # CPU data-parallel processes; 0 = one per core (sr_train.launch); GPU: one, see README
    threads: int = 0  # Paddle CPU threads per process; 0 = srkit's measured default (1)


@dataclass
class ValConfig:
    interval: int = 500  # validate every N iterations (and at the end)
    crop_border: int | None = None  # None: the scale
    y_channel: bool = True  # PSNR/SSIM on the Y channel (BT.601), as ESRGAN reports
    tile: int = 0  # LR tile size for large val images (0: whole image)


@dataclass
class CheckpointConfig:
    interval: int = 500  # write RUN/ckpt/iter_N.{safetensors,state} every N iterations (and at the end)
    keep_states: int = 3  # keep the last K resumable states (weights files are all kept)


@dataclass
class LogConfig:
    interval: int = 10  # average the loss over N iterations into RUN/metrics.jsonl
    visualdl: bool = False  # also write a VisualDL log (RUN/visualdl: scalars, validation images)


@dataclass
class DiscriminatorConfig:
    """The GAN stage's discriminator; its presence in a recipe selects the GAN stage."""

    arch: str = "vgg128"  # vgg128 (ESRGAN/PaddleGAN, 128 px patches) | unet (Real-ESRGAN, spectral norm)
    nf: int = 64
    skip_connection: bool = True  # unet only


@dataclass
class PixelLossConfig:
    weight: float = 1.0  # the criterion is train.loss (l1 | mse)


@dataclass
class PerceptualLossConfig:
    weight: float = 1.0
    layer: str = "conv5_4"  # VGG19 layer (conv5_4 before ReLU = feature index 34, as ESRGAN)
    before_relu: bool = True
    criterion: str = "l1"  # l1 | l2
    weights: str | None = None  # imagenet (downloaded once) | PATH to a local VGG19 file


@dataclass
class GanLossConfig:
    weight: float = 5e-3  # relativistic average GAN, BCE with logits


@dataclass
class LossConfig:
    pixel: PixelLossConfig = field(default_factory=PixelLossConfig)
    perceptual: PerceptualLossConfig | None = None  # VGG feature distance, off unless given
    gan: GanLossConfig | None = None  # needs a discriminator section


@dataclass
class Recipe:
    seed: int = 0
    run_dir: str = "runs/run"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    val: ValConfig = field(default_factory=ValConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    log: LogConfig = field(default_factory=LogConfig)
    discriminator: DiscriminatorConfig | None = None  # set for the GAN stage (ESRGAN), with loss.gan
    loss: LossConfig = field(default_factory=LossConfig)
    source: str = field(default="", metadata={"internal": True})  # the file it came from
    notes: list[str] = field(default_factory=list, metadata={"internal": True})  # translation notes

    def to_dict(self) -> dict:
        """The recipe as plain data (what checkpoints store), without the internal fields."""
        internal = {f.name for f in dataclasses.fields(self) if f.metadata.get("internal")}
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in internal}

    def arch_settings(self) -> dict:
        """model.arch's constructor settings with defaults (`sr_train.models.arch_args`, which
        knows the architectures); an unknown name is a UserError naming this file and the key."""
        try:
            return arch_args(self.model.arch)
        except UserError:
            raise UserError(f"{self.source}: model.arch: unknown architecture {self.model.arch!r}: "
                            f"use {' or '.join(ARCHS)}") from None

    def degrade_pipeline(self) -> Pipeline | None:
        """data.degrade's pipeline (None: training LRs are read from the dataset); a bad pipeline is a
        UserError naming this file and the key as well as the pipeline's file, step and key."""
        if self.data.degrade is None:
            return None
        try:
            return load_pipeline(self.data.degrade)
        except UserError as exc:
            raise UserError(f"{self.source}: data.degrade: {exc}") from None

    def model_arch(self, scale: int) -> dict:
        """The architecture dict for `sr_train.models.build_model` (unset settings: defaults)."""
        allowed = self.arch_settings()
        arch = {"arch": self.model.arch, "scale": self.model.scale or scale}
        for f in dataclasses.fields(ModelConfig):
            value = getattr(self.model, f.name)
            if f.name in ("arch", "scale", "init_from") or value is None:
                continue
            if f.name not in allowed:
                raise UserError(f"{self.source}: model.{f.name} is not a setting of {self.model.arch!r} "
                                f"(its settings: {', '.join(allowed)}): remove it")
            arch[f.name] = value
        return complete_arch(arch)


# --------------------------------------------------------------------------- loading

def load_recipe(path: str | Path, overrides: list[str] = ()) -> Recipe:
    """Read a recipe (or a PaddleGAN config) and apply `--set key.path=value` overrides."""
    path = Path(path)
    raw = read_yaml_mapping(path, "recipe", "recipes/quickstart.yaml", "seed, run_dir, data, model, train, ...")
    notes: list[str] = []
    if is_paddlegan_config(raw):
        raw, notes = translate_paddlegan(raw, path)
    recipe = recipe_from_dict(raw, str(path), overrides)
    recipe.notes = notes
    return recipe


def recipe_from_dict(raw: dict, source: str = "<recipe>", overrides: list[str] = ()) -> Recipe:
    """A recipe from already-parsed data (tests, checkpoints), with the same checks as a file."""
    raw = copy.deepcopy(raw)  # overrides must not change the caller's dict
    for item in overrides:
        key, value = parse_override(item)
        set_path(raw, key, value, source="--set", schema=Recipe)
    recipe = from_dict(Recipe, raw, source)
    recipe.source = source
    check_recipe(recipe)
    return recipe


# --------------------------------------------------------------------------- checks

# Sanity bounds: far above any real model or machine, low enough that building or starting it cannot hang.
MODEL_SIZES = {"nf": 4096, "gc": 4096, "nb": 1024, "nc": 1024}
MAX_PROCESSES = 256

def check_recipe(recipe: Recipe) -> None:
    """Value checks that types cannot express (positive sizes, known names, data given once)."""
    src = recipe.source
    positives = {"train.iters": recipe.train.iters, "train.batch_size": recipe.train.batch_size,
                 "train.patch_size": recipe.train.patch_size, "val.interval": recipe.val.interval,
                 "checkpoint.interval": recipe.checkpoint.interval, "log.interval": recipe.log.interval,
                 "checkpoint.keep_states": recipe.checkpoint.keep_states}
    for key, value in positives.items():
        if value <= 0:
            raise UserError(f"{src}: {key} must be > 0, got {value}")
    for key, value in {"train.lr": recipe.train.lr, "train.ema": recipe.train.ema,
                       "train.grad_clip": recipe.train.grad_clip, "data.workers": recipe.data.workers,
                       "train.threads": recipe.train.threads, "train.processes": recipe.train.processes,
                       "val.tile": recipe.val.tile}.items():
        if value < 0:
            raise UserError(f"{src}: {key} must be >= 0, got {value}")
    if recipe.train.ema >= 1:
        raise UserError(f"{src}: train.ema is a decay in [0, 1) (e.g. 0.999), got {recipe.train.ema}")
    if not 0 <= recipe.seed < 2**63:
        raise UserError(f"{src}: seed must be an integer from 0 to 2**63 - 1, got {recipe.seed}")
    if recipe.val.crop_border is not None and recipe.val.crop_border < 0:
        raise UserError(f"{src}: val.crop_border must be >= 0, got {recipe.val.crop_border}")
    for key, value in {"train.threads": recipe.train.threads, "train.processes": recipe.train.processes,
                       "data.workers": recipe.data.workers}.items():
        if value > MAX_PROCESSES:
            raise UserError(f"{src}: {key} {value} is more than {MAX_PROCESSES}: use at most the machine's cores")
    for name, most in MODEL_SIZES.items():
        value = getattr(recipe.model, name)
        if value is not None and not 1 <= value <= most:
            raise UserError(f"{src}: model.{name} must be from 1 to {most}, got {value}")
    recipe.arch_settings()
    if recipe.train.amp_dtype not in ("float16", "bfloat16"):
        raise UserError(f"{src}: train.amp_dtype: unknown type {recipe.train.amp_dtype!r}: use float16 or bfloat16")
    if recipe.train.loss not in ("l1", "mse"):
        raise UserError(f"{src}: train.loss: unknown loss {recipe.train.loss!r}: use l1 or mse")
    if (recipe.discriminator is None) != (recipe.loss.gan is None):
        raise UserError(f"{src}: the GAN stage needs both a discriminator section and loss.gan "
                        "(e.g. discriminator: {arch: vgg128}, loss: {gan: {weight: 5.0e-3}}); give both or neither")
    schedulers = ("cosine_restart", "multistep", "constant")
    sched = recipe.train.scheduler
    if sched.name not in schedulers:
        raise UserError(f"{src}: train.scheduler.name: unknown scheduler {sched.name!r}: use one of {', '.join(schedulers)}")
    if sched.periods is not None and sched.restart_weights is not None and len(sched.periods) != len(sched.restart_weights):
        raise UserError(f"{src}: train.scheduler.periods and restart_weights must have the same length "
                        f"({len(sched.periods)} vs {len(sched.restart_weights)})")
    data = recipe.data
    folders_given = data.train is not None or data.val is not None
    if data.root and folders_given:
        raise UserError(f"{src}: give either data.root (a dataset from srdata build) or data.train/data.val "
                        "folders, not both")
    if not data.root and not folders_given:
        raise UserError(f"{src}: no data: set data.root to a dataset made by `srdata build` "
                        "(or data.train.gt/lq and data.val.gt/lq folders)")
    if folders_given:
        for split in ("train", "val"):
            pair = getattr(data, split)
            hr_only = split == "train" and data.degrade is not None and pair is not None and pair.gt and not pair.lq
            if pair is None or not pair.gt or not (pair.lq or hr_only):
                raise UserError(f"{src}: data.{split}.gt and data.{split}.lq are both needed when data.root is "
                                "not set (data.train.lq may be left out with data.degrade)")
    recipe.degrade_pipeline()
