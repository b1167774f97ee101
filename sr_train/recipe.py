"""Recipes: the YAML file that says what `sr-train fit` trains, loaded into typed dataclasses.

Every key has a type and a default here, so a typo or a wrong type is caught before any work
starts, with the key, the file and the fix in one line. `--set key.path=value` overrides any key
(the value is parsed as YAML). A PaddleGAN config (`configs/esrgan_psnr_x4_div2k.yaml` style) is
recognised by its top-level keys and translated into a recipe; what has no equivalent is refused.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

from srdata.errors import UserError


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
    cache_mb: int = 2048  # decoded images are kept in memory when they fit in this budget
    flip: bool = True  # random horizontal/vertical flips of training crops
    transpose: bool = True  # random transposes (rotations by 90° combined with flips)


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
    threads: int = 0  # Paddle CPU threads; 0 = srkit's measured default


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
    visualdl: bool = True  # also log to VisualDL (RUN/visualdl) when it is installed


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
        from sr_train.models import ARCHS, arch_args

        try:
            return arch_args(self.model.arch)
        except UserError:
            raise UserError(f"{self.source}: model.arch: unknown architecture {self.model.arch!r}: "
                            f"use {' or '.join(ARCHS)}") from None

    def model_arch(self, scale: int) -> dict:
        """The architecture dict for `sr_train.models.build_model` (unset settings: defaults)."""
        from sr_train.models import complete_arch

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
    raw = _read_yaml(path)
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
        set_path(raw, key, value, source="--set")
    recipe = from_dict(Recipe, raw, source)
    recipe.source = source
    check_recipe(recipe)
    return recipe


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise UserError(f"{path}: no such recipe file: give a YAML recipe, e.g. recipes/quickstart.yaml")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise UserError(f"{path}:{where} is not valid YAML ({getattr(exc, 'problem', exc)}): fix the syntax") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a text file: give a YAML recipe") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise UserError(f"{path}: a recipe is a YAML mapping of keys (seed, run_dir, data, model, train, ...), "
                        f"not a {type(raw).__name__}")
    return raw


def parse_override(item: str) -> tuple[str, Any]:
    """`key.path=value` -> (key path, YAML-parsed value)."""
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise UserError(f"--set {item!r}: write it as KEY.PATH=VALUE, e.g. --set train.iters=1000")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        value = text
    return key.strip(), value


def set_path(raw: dict, key: str, value, source: str) -> None:
    """Set `raw[a][b][c] = value` for key "a.b.c", checking each part against the Recipe schema."""
    schema: type = Recipe
    parts = key.split(".")
    node = raw
    for depth, part in enumerate(parts):
        names = _field_types(schema)
        if part not in names:
            prefix = ".".join(parts[:depth])
            raise UserError(f"{source} {key}: unknown key {'.'.join(parts[:depth + 1])!r}"
                            f"{_did_you_mean(part, names, prefix)}")
        if depth == len(parts) - 1:
            node[part] = value
            return
        inner = _dataclass_of(names[part])
        if inner is None:
            raise UserError(f"{source} {key}: {'.'.join(parts[:depth + 1])!r} is a value, not a section")
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node, schema = node[part], inner


def _field_types(cls) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if not f.metadata.get("internal")}


def _did_you_mean(name: str, choices, prefix: str) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    full = (prefix + "." if prefix else "")
    if close:
        return f" (did you mean {full + close[0]!r}?)"
    return f"; valid keys{' under ' + prefix if prefix else ''}: {', '.join(choices)}"


def _dataclass_of(hint) -> type | None:
    """The dataclass inside a hint like `Folders | None`, or None for plain values."""
    for candidate in _union_members(hint):
        if dataclasses.is_dataclass(candidate):
            return candidate
    return None


def _union_members(hint) -> tuple:
    if typing.get_origin(hint) in (Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def from_dict(cls, raw, source: str, prefix: str = ""):
    """Build dataclass `cls` from a mapping, naming the file and key of any unknown key or bad type."""
    where = prefix.rstrip(".") or "the top level"
    if not isinstance(raw, dict):
        raise UserError(f"{source}: {where} must be a mapping of keys, got {raw!r}")
    names = _field_types(cls)
    kwargs = {}
    for key, value in raw.items():
        if key not in names:
            raise UserError(f"{source}: unknown key {prefix + str(key)!r}{_did_you_mean(str(key), names, prefix.rstrip('.'))}")
        kwargs[key] = _convert(names[key], value, source, prefix + key)
    return cls(**kwargs)


def _convert(hint, value, source: str, key: str):
    members = _union_members(hint)
    if value is None:
        if type(None) in members:
            return None
        raise UserError(f"{source}: {key} needs a value ({_type_name(hint)}), got nothing")
    inner = _dataclass_of(hint)
    if inner is not None:
        return from_dict(inner, value, source, key + ".")
    for member in members:
        if member is type(None):
            continue
        ok, converted = _try_scalar(member, value, source, key)
        if ok:
            return converted
    raise UserError(f"{source}: {key} must be {_type_name(hint)}, got {value!r}: fix the value")


def _try_scalar(member, value, source, key) -> tuple[bool, Any]:
    if typing.get_origin(member) is list:
        (item_type,) = typing.get_args(member)
        if not isinstance(value, list):
            return False, None
        return True, [_convert(item_type, v, source, f"{key}[{i}]") for i, v in enumerate(value)]
    if member is bool:
        return (True, value) if isinstance(value, bool) else (False, None)
    if member is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return True, value
        if isinstance(value, float) and value.is_integer():
            return True, int(value)
        return False, None
    if member is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return True, float(value)
        if isinstance(value, str):  # YAML 1.1 reads `1e-7` (no dot) as a string
            try:
                return True, float(value)
            except ValueError:
                return False, None
        return False, None
    if member is str:
        return (True, value) if isinstance(value, str) else (False, None)
    return False, None


def _type_name(hint) -> str:
    names = []
    for member in _union_members(hint):
        if member is type(None):
            continue
        if typing.get_origin(member) is list:
            names.append(f"a list of {_type_name(typing.get_args(member)[0])}s")
        else:
            names.append({int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
                member, getattr(member, "__name__", str(member))))
    return " or ".join(names)


# --------------------------------------------------------------------------- checks

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
                       "train.threads": recipe.train.threads, "val.tile": recipe.val.tile}.items():
        if value < 0:
            raise UserError(f"{src}: {key} must be >= 0, got {value}")
    if recipe.train.ema >= 1:
        raise UserError(f"{src}: train.ema is a decay in [0, 1) (e.g. 0.999), got {recipe.train.ema}")
    recipe.arch_settings()
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
            if pair is None or not pair.gt or not pair.lq:
                raise UserError(f"{src}: data.{split}.gt and data.{split}.lq are both needed when data.root is "
                                "not set")


# --------------------------------------------------------------------------- PaddleGAN configs

PADDLEGAN_KEYS = {"total_iters", "output_dir", "min_max", "model", "export_model", "dataset", "lr_scheduler",
                  "optimizer", "validate", "log_config", "snapshot_config", "find_unused_parameters",
                  "enable_visualdl", "is_train"}
PADDLEGAN_IGNORED = {"min_max": "srkit's tensors are always in [0, 1]",
                     "export_model": "use `sr-train export`",
                     "find_unused_parameters": "not needed by srkit's data-parallel training",
                     "enable_visualdl": "srkit logs to VisualDL whenever it is installed",
                     "is_train": "implied by `sr-train fit`"}
PADDLEGAN_TRANSFORMS = {"LoadImageFromFile", "Transforms", "SRPairedRandomCrop", "PairedRandomHorizontalFlip",
                        "PairedRandomVerticalFlip", "PairedRandomTransposeHW", "Transpose", "Normalize"}


def is_paddlegan_config(raw: dict) -> bool:
    """PaddleGAN configs have `total_iters` or `model: {name: ...}` at the top; recipes never do."""
    return "total_iters" in raw or (isinstance(raw.get("model"), dict) and "name" in raw["model"])


def translate_paddlegan(raw: dict, path: Path) -> tuple[dict, list[str]]:
    """A srkit recipe dict from a PaddleGAN SR config; UserError for anything without an equivalent."""
    tr = _Translator(path)
    out: dict = {"seed": 0, "data": {}, "model": {}, "train": {}, "val": {}, "checkpoint": {}, "log": {}}
    for key in raw:
        if key not in PADDLEGAN_KEYS:
            tr.refuse(key, "has no srkit equivalent; remove it")
        if key in PADDLEGAN_IGNORED:
            tr.notes.append(f"{key} ignored: {PADDLEGAN_IGNORED[key]}")
    if "total_iters" in raw:
        out["train"]["iters"] = raw["total_iters"]
    out["run_dir"] = str(Path(raw.get("output_dir", "output_dir")) / path.stem)
    tr.model(raw.get("model") or {}, out)
    tr.datasets(raw.get("dataset") or {}, out)
    tr.scheduler(raw.get("lr_scheduler"), out)
    tr.optimizer(raw.get("optimizer"), out)
    tr.validate(raw.get("validate"), out)
    if isinstance(raw.get("log_config"), dict):
        tr.only(raw["log_config"], "log_config", {"interval", "visiual_interval", "visual_interval"})
        if "interval" in raw["log_config"]:
            out["log"]["interval"] = raw["log_config"]["interval"]
    if isinstance(raw.get("snapshot_config"), dict):
        tr.only(raw["snapshot_config"], "snapshot_config", {"interval"})
        if "interval" in raw["snapshot_config"]:
            out["checkpoint"]["interval"] = raw["snapshot_config"]["interval"]
    return out, tr.notes


class _Translator:
    """The parts of a PaddleGAN config, one method per top-level section."""

    def __init__(self, path: Path):
        self.path = path
        self.notes: list[str] = []

    def refuse(self, key: str, why: str):
        raise UserError(f"{self.path}: PaddleGAN key {key!r} {why} (srkit translates SR configs like "
                        "esrgan_psnr_x4_div2k.yaml; write the rest as a srkit recipe, see recipes/)")

    def only(self, section: dict, name: str, allowed: set) -> None:
        for key in section:
            if key not in allowed:
                self.refuse(f"{name}.{key}", "cannot be translated; remove it")

    def model(self, model: dict, out: dict) -> None:
        if model.get("name") != "BaseSRModel":
            self.refuse("model.name", f"is {model.get('name')!r}: only the PSNR stage (BaseSRModel) translates; "
                        "the GAN stage uses srkit's own recipe")
        self.only(model, "model", {"name", "generator", "pixel_criterion", "to_static"})
        gen = model.get("generator") or {}
        if gen.get("name") != "RRDBNet":
            self.refuse("model.generator.name", f"is {gen.get('name')!r}: srkit has RRDBNet (rrdbnet) and compact")
        self.only(gen, "model.generator", {"name", "in_nc", "out_nc", "nf", "nb", "gc", "scale"})
        out["model"]["arch"] = "rrdbnet"
        for key in ("nf", "nb", "gc", "scale"):
            if key in gen:
                out["model"][key] = gen[key]
        for key in ("in_nc", "out_nc"):
            if gen.get(key, 3) != 3:
                self.refuse(f"model.generator.{key}", "is not 3: srkit trains on RGB images")
        crit = model.get("pixel_criterion") or {"name": "L1Loss"}
        if crit.get("name") != "L1Loss" or crit.get("loss_weight", 1.0) != 1.0:
            self.refuse("model.pixel_criterion", f"is {crit}: srkit's PSNR stage uses L1 with weight 1")
        if model.get("to_static"):
            self.notes.append("model.to_static ignored: srkit trains in dynamic mode")

    def datasets(self, dataset: dict, out: dict) -> None:
        self.only(dataset, "dataset", {"train", "test"})
        train, test = dataset.get("train"), dataset.get("test")
        if not isinstance(train, dict) or not isinstance(test, dict):
            self.refuse("dataset", "needs both train and test sections with gt_folder and lq_folder")
        for name, section in (("train", train), ("test", test)):
            if section.get("name") not in ("SRDataset", "PairedDataset", None):
                self.refuse(f"dataset.{name}.name", f"is {section.get('name')!r}: only paired folders translate")
            self.only(section, f"dataset.{name}", {"name", "gt_folder", "lq_folder", "num_workers", "batch_size",
                                                   "scale", "preprocess", "use_shared_memory"})
            if "gt_folder" not in section or "lq_folder" not in section:
                self.refuse(f"dataset.{name}", "needs gt_folder and lq_folder")
            self.transforms(section.get("preprocess") or [], f"dataset.{name}.preprocess", out)
        out["data"]["train"] = {"gt": train["gt_folder"], "lq": train["lq_folder"]}
        out["data"]["val"] = {"gt": test["gt_folder"], "lq": test["lq_folder"]}
        if "scale" in train:
            out["data"]["scale"] = train["scale"]
        if "num_workers" in train:
            out["data"]["workers"] = train["num_workers"]
        if "batch_size" in train:
            out["train"]["batch_size"] = train["batch_size"]

    def transforms(self, steps: list, where: str, out: dict) -> None:
        flat = []
        for step in steps:
            flat.append(step)
            if isinstance(step, dict):
                flat.extend(step.get("pipeline") or [])
        for step in flat:
            name = step.get("name") if isinstance(step, dict) else None
            if name not in PADDLEGAN_TRANSFORMS:
                self.refuse(f"{where}: {name}", "is a transform srkit does not have; remove it")
            if name == "SRPairedRandomCrop" and "gt_patch_size" in step:
                out["train"]["patch_size"] = step["gt_patch_size"]
            if name == "Normalize" and (step.get("mean") not in ([0, 0, 0], None)
                                        or step.get("std") not in ([255, 255, 255], None)):
                self.refuse(f"{where}: Normalize", "is not mean 0 / std 255: srkit's models take [0, 1] input")

    def scheduler(self, sched: dict | None, out: dict) -> None:
        if sched is None:
            return
        name = sched.get("name")
        if "learning_rate" in sched:
            out["train"]["lr"] = sched["learning_rate"]
        if name == "CosineAnnealingRestartLR":
            self.only(sched, "lr_scheduler", {"name", "learning_rate", "periods", "restart_weights", "eta_min"})
            out["train"]["scheduler"] = {"name": "cosine_restart", **{k: sched[k] for k in
                                         ("periods", "restart_weights", "eta_min") if k in sched}}
        elif name == "MultiStepDecay":
            self.only(sched, "lr_scheduler", {"name", "learning_rate", "milestones", "gamma"})
            out["train"]["scheduler"] = {"name": "multistep", **{k: sched[k] for k in ("milestones", "gamma")
                                                                 if k in sched}}
        else:
            self.refuse("lr_scheduler.name", f"is {name!r}: srkit has CosineAnnealingRestartLR and MultiStepDecay")

    def optimizer(self, opt: dict | None, out: dict) -> None:
        if opt is None:
            return
        if "optimG" in opt or "optimD" in opt:
            if "optimD" in opt:
                self.refuse("optimizer.optimD", "belongs to the GAN stage, which srkit does not translate")
            opt = opt["optimG"]
        if opt.get("name") != "Adam":
            self.refuse("optimizer.name", f"is {opt.get('name')!r}: srkit trains with Adam")
        self.only(opt, "optimizer", {"name", "net_names", "beta1", "beta2", "weight_decay", "epsilon"})
        if opt.get("net_names", ["generator"]) != ["generator"]:
            self.refuse("optimizer.net_names", "must be [generator]")
        for key in ("beta1", "beta2", "weight_decay"):
            if key in opt:
                out["train"][key] = opt[key]

    def validate(self, val: dict | None, out: dict) -> None:
        if val is None:
            return
        self.only(val, "validate", {"interval", "save_img", "metrics"})
        if "interval" in val:
            out["val"]["interval"] = val["interval"]
        if val.get("save_img"):
            self.notes.append("validate.save_img ignored: use `sr-train eval --save-images`")
        settings = set()
        for label, metric in (val.get("metrics") or {}).items():
            if not isinstance(metric, dict) or metric.get("name") not in ("PSNR", "SSIM"):
                self.refuse(f"validate.metrics.{label}", "is not PSNR or SSIM: srkit validates with those two")
            settings.add((metric.get("crop_border", 0), bool(metric.get("test_y_channel", False))))
        if len(settings) > 1:
            self.refuse("validate.metrics", "use different crop_border/test_y_channel for PSNR and SSIM; "
                        "srkit uses one setting for both")
        if settings:
            crop, y = settings.pop()
            out["val"]["crop_border"], out["val"]["y_channel"] = crop, y
