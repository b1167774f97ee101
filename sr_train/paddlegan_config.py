"""PaddleGAN SR configs (`configs/esrgan_psnr_x4_div2k.yaml` style) translated into srkit recipes.

A PaddleGAN config is recognised by its top-level keys (`total_iters`, `model: {name: ...}`); its
PSNR-stage settings become the equivalent recipe keys, and anything without an equivalent is a
one-line UserError naming the key, so nothing is silently ignored that would change training.
"""

from __future__ import annotations

from pathlib import Path

from srdata.errors import UserError


PADDLEGAN_KEYS = {"total_iters", "output_dir", "min_max", "model", "export_model", "dataset", "lr_scheduler",
                  "optimizer", "validate", "log_config", "snapshot_config", "find_unused_parameters",
                  "enable_visualdl", "is_train"}
PADDLEGAN_IGNORED = {"min_max": "srkit's tensors are always in [0, 1]",
                     "export_model": "use `sr-train export`",
                     "find_unused_parameters": "not needed by srkit's data-parallel training",
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
    if "enable_visualdl" in raw:
        out["log"]["visualdl"] = raw["enable_visualdl"]
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
            out["train"]["to_static"] = True

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
