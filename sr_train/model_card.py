"""Model cards: what someone needs to share or reuse an exported model, beside every export as
`model_card.json` (machine-readable) and `README.md` (the same, for people).

A card says what the network is (architecture, scale, parameters, how to build it in BasicSR or
Real-ESRGAN), which files the folder holds (format, what loads them, SHA-256), how it was trained
(iterations, stage, dataset and its `dataset.json` hash, the settings that made its LR images, the
recipe's online degradation when it declares one; from the training record `sr-train fit` stores in
its weights, `sr_train.provenance`), how well it does (validation PSNR/SSIM against bicubic from the
weights' metadata, and a fresh evaluation on a named split when the export was asked for one), its
licence (as the user states it; "unspecified" otherwise) and the srkit version that wrote it.
"""

from __future__ import annotations

import os
from pathlib import Path

from sr_train.export import FORMAT_FILES, ONNX_NAME, ONNX_OPSET, PTH_NAME, SAFETENSORS_NAME, read_info
from sr_train.weights.basicsr import container_key
from sr_train.provenance import TRAINING_KEY, file_sha256
from sr_train.weights.foreign import ForeignWeights, read_foreign_detailed
from srdata import __version__
from srdata.atomic import write_bytes, write_json

CARD_JSON = "model_card.json"
CARD_README = "README.md"
CARD_VERSION = 1
DEFAULT_LICENSE = "unspecified"
RUN_WEIGHTS = ("best", "last")  # RUN/best.safetensors is named after its run on the card

PADDLE_PROGRAM, PADDLE_PARAMS = FORMAT_FILES["paddle"]
# What each exported file is, and what loads it.
FILE_KINDS = {
    PTH_NAME: ("PyTorch state dict (torch.save zip), BasicSR names",
               "chaiNNer (spandrel), Real-ESRGAN and BasicSR scripts, `torch.load(weights_only=True)`"),
    SAFETENSORS_NAME: ("safetensors, BasicSR names", "chaiNNer (spandrel), `safetensors.torch.load_file`"),
    ONNX_NAME: (f"ONNX (opset {ONNX_OPSET}), input `x` float32 NCHW RGB in [0, 1]", "onnxruntime, chaiNNer (ONNX)"),
    PADDLE_PROGRAM: ("Paddle inference program (paddle.jit.save)", "`paddle.jit.load`, `sr-train predict`"),
    PADDLE_PARAMS: ("Paddle inference parameters", "`paddle.jit.load`, `sr-train predict`"),
}


def card_name(weights: str | os.PathLike) -> str:
    """RUN/best.safetensors -> "RUN (best)"; any other file -> its stem."""
    path = Path(weights)
    if path.stem in RUN_WEIGHTS and path.parent.name:
        return f"{path.parent.name} ({path.stem})"
    return path.stem


def architecture(arch: dict) -> dict:
    """The architecture as the card shows it: srkit's settings, a title, and BasicSR's constructor."""
    if arch["arch"] == "rrdbnet":
        return {"name": "RRDBNet (ESRGAN)", "srkit": arch,
                "basicsr": {"class": "RRDBNet", "num_in_ch": arch["in_nc"], "num_out_ch": arch["out_nc"],
                            "scale": arch["scale"], "num_feat": arch["nf"], "num_block": arch["nb"],
                            "num_grow_ch": arch["gc"]}}
    name = ("SRVGGNetCompact (Real-ESRGAN Compact)" if arch["skip"] == "nearest"
            else "Compact (srkit; bicubic skip, no BasicSR equivalent)")
    return {"name": name, "srkit": arch,
            "basicsr": {"class": "SRVGGNetCompact", "num_in_ch": arch["in_nc"], "num_out_ch": arch["out_nc"],
                        "num_feat": arch["nf"], "num_conv": arch["nc"], "upscale": arch["scale"],
                        "act_type": arch["act"]}}


def file_entries(folder: Path, names: list[str]) -> list[dict]:
    """Name, kind, loaders, size and SHA-256 of each exported file present in `folder`."""
    entries = []
    for name in names:
        path = folder / name
        if path.is_file():
            kind, loads_in = FILE_KINDS.get(name, ("", ""))
            entries.append({"name": name, "format": kind, "loads_in": loads_in, "bytes": path.stat().st_size,
                            "sha256": file_sha256(path)})
    return entries


def _score(mean: dict) -> dict:
    psnr, bicubic = mean.get("psnr"), mean.get("bicubic_psnr")
    gain = psnr - bicubic if isinstance(psnr, (int, float)) and isinstance(bicubic, (int, float)) else None
    return {"psnr": psnr, "ssim": mean.get("ssim"), "bicubic_psnr": bicubic, "bicubic_ssim": mean.get("bicubic_ssim"),
            "gain_db": gain}


def training_validation(meta: dict, scale: int) -> dict | None:
    """The validation score a srkit weights file records (the iteration it was saved at)."""
    val = meta.get("val")
    if not isinstance(val, dict) or "val_psnr" not in val:
        return None
    recipe = (meta.get(TRAINING_KEY) or {}).get("recipe") or {}
    settings = recipe.get("val") or {}
    data = (meta.get(TRAINING_KEY) or {}).get("data") or {}
    crop = settings.get("crop_border")
    return {"split": "val", "source": "validation during training", "iteration": val.get("iter"),
            "data": data.get("root") or (data.get("folders") or {}).get("val"),
            "images": (data.get("counts") or {}).get("val"),
            "y_channel": settings.get("y_channel", True), "crop_border": scale if crop is None else crop,
            **_score({"psnr": val.get("val_psnr"), "ssim": val.get("val_ssim"),
                      "bicubic_psnr": val.get("bicubic_psnr"), "bicubic_ssim": val.get("bicubic_ssim")})}


def fresh_evaluation(report: dict, data: str) -> dict:
    """A card entry from `sr_train.evaluate.evaluate`'s report."""
    return {"split": report["split"], "source": "sr-train export --eval", "iteration": None, "data": data,
            "images": len(report["images"]), "y_channel": report["y_channel"], "crop_border": report["crop_border"],
            **_score(report["mean"])}


def build_card(weights: str | os.PathLike, found: ForeignWeights, files: list[dict], license: str,
               evaluation: dict | None = None, name: str | None = None) -> dict:
    """The card of an export of `weights` (read as `found`) whose folder holds `files`."""
    arch = found.arch
    training = found.meta.get(TRAINING_KEY)
    if training is None and "iteration" in found.meta:  # written by a srkit without training records
        training = {"iterations": found.meta["iteration"], "stage": found.meta.get("stage"),
                    "recipe_file": found.meta.get("recipe")}
    evaluations = [e for e in (training_validation(found.meta, arch["scale"]), evaluation) if e is not None]
    return {
        "card_version": CARD_VERSION,
        "name": name or card_name(weights),
        "architecture": architecture(arch),
        "scale": arch["scale"],
        "parameters": int(sum(value.size for value in found.state.values())),
        "weights": {"source": Path(weights).name, "sha256": file_sha256(weights), "format": found.format,
                    "ema": found.is_ema, "converted_from": found.meta.get("converted_from")},
        "files": files,
        "training": training,
        "evaluation": evaluations,
        "license": license,
        "srkit_version": __version__,
    }


def card_for_export(weights: str | os.PathLike, folder: str | os.PathLike, license: str | None = None,
                    evaluation: dict | None = None, name: str | None = None) -> dict:
    """The card of the export folder `folder` made from `weights`: its files are those of the formats
    `srkit.json` lists for these weights; no licence given is DEFAULT_LICENSE."""
    folder = Path(folder)
    names = [name for fmt in read_info(folder).formats for name in FORMAT_FILES[fmt]]
    return build_card(weights, read_foreign_detailed(weights), file_entries(folder, names), license or DEFAULT_LICENSE,
                      evaluation, name)


def write_card(folder: str | os.PathLike, card: dict) -> list[Path]:
    """`model_card.json` and `README.md` into `folder`, atomically; returns their paths."""
    folder = Path(folder)
    write_json(folder / CARD_JSON, card)
    write_bytes(folder / CARD_README, render_markdown(card).encode())
    return [folder / CARD_JSON, folder / CARD_README]


# ----------------------------------------------------------------------------------------- README.md

def _number(value, digits: int) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "n/a"


def _settings_text(settings: dict | None) -> str:
    if not settings:
        return "not recorded"
    return ", ".join(f"{key} {value}" for key, value in settings.items() if key != "src" and value is not None)


def _usage(card: dict) -> list[str]:
    """How to run the exported files, for the files the folder holds."""
    files = {f["name"] for f in card["files"]}
    basicsr = card["architecture"]["basicsr"]
    args = ", ".join(f"{k}={v!r}" for k, v in basicsr.items() if k != "class")
    lines = []
    if PTH_NAME in files:
        lines += [f"- chaiNNer / spandrel: open `{PTH_NAME}` or `{SAFETENSORS_NAME}` (the architecture is detected).",
                  f"- BasicSR / Real-ESRGAN: `{basicsr['class']}({args})`, weights under "
                  f"`{container_key(card['weights']['ema'])}` in `{PTH_NAME}`.",
                  f"- srkit: `sr-train predict --weights FOLDER/{SAFETENSORS_NAME} IMAGES --out OUT`."]
    exports = [fmt for fmt in ("onnx", "paddle") if FORMAT_FILES[fmt][0] in files]
    if exports:
        lines.append(f"- srkit: `sr-train predict --weights FOLDER IMAGES --out OUT` runs the {' or '.join(exports)} "
                     "export (`--engine`).")
    if ONNX_NAME in files:
        lines.append("- onnxruntime: input `x`, float32 NCHW RGB in [0, 1], dynamic batch, height and width.")
    return lines or ["- no model files listed."]


def render_markdown(card: dict) -> str:
    """The card as a README.md."""
    arch = card["architecture"]
    settings = ", ".join(f"{k} {v}" for k, v in arch["srkit"].items() if k != "arch")
    weights = card["weights"]
    lines = [f"# {card['name']}: x{card['scale']} super-resolution, {arch['name']}", "",
             "| | |", "|---|---|",
             f"| architecture | {arch['name']} ({settings}) |",
             f"| scale | x{card['scale']} |",
             f"| parameters | {card['parameters']:,} |",
             f"| weights | {'EMA of the generator' if weights['ema'] else 'the generator'}, from `{weights['source']}` "
             f"(SHA-256 `{weights['sha256'][:16]}…`) |",
             f"| licence | {card['license']} |",
             f"| made with | srkit {card['srkit_version']} |", ""]
    if card["files"]:
        lines += ["## Files", "", "| file | format | loads in | bytes | SHA-256 |", "|---|---|---|---:|---|"]
        lines += [f"| `{f['name']}` | {f['format']} | {f['loads_in']} | {f['bytes']:,} | `{f['sha256']}` |"
                  for f in card["files"]]
        lines.append("")
    lines += ["## Use", "", *_usage(card), ""]
    lines += ["## Training", ""]
    training = card["training"]
    if not training:
        lines += ["Not recorded (weights from outside srkit, or converted).", ""]
    else:
        lines.append(f"- iterations: {training.get('iterations')} ({training.get('stage') or 'unknown'} stage)")
        data = training.get("data") or {}
        if data.get("root"):
            counts = data.get("counts") or {}
            lines.append(f"- data: `{data['root']}` (dataset.json SHA-256 `{data.get('dataset_json_sha256')}`; "
                         f"{counts.get('train', '?')} train / {counts.get('val', '?')} val images)")
            lines.append(f"- LR images made by `srdata build` with: {_settings_text(data.get('build_settings'))}")
        elif data.get("folders"):
            lines.append(f"- data: folders {data['folders']}")
        if data.get("degrade"):
            lines.append(f"- online degradation (recipe `data.degrade`): `{data['degrade']}`")
        if training.get("recipe_file"):
            lines.append(f"- recipe: `{training['recipe_file']}`")
        lines.append("")
    lines += ["## Evaluation", ""]
    if not card["evaluation"]:
        lines += ["No scores recorded: export with `--eval DATASET` to add some.", ""]
    else:
        lines += ["PSNR/SSIM against the bicubic upscale of the same LR images (PSNR of identical images is "
                  "infinite, shown as n/a).", "",
                  "| split | scored by | data | images | channel, crop | PSNR | SSIM | bicubic PSNR | bicubic SSIM | "
                  "gain dB |", "|---|---|---|---:|---|---:|---:|---:|---:|---:|"]
        for e in card["evaluation"]:
            when = f" (iteration {e['iteration']})" if e.get("iteration") is not None else ""
            lines.append(f"| {e['split']} | {e['source']}{when} | {e.get('data') or 'n/a'} | {e.get('images') or 'n/a'} "
                         f"| {'Y' if e['y_channel'] else 'RGB'}, {e['crop_border']} | {_number(e['psnr'], 3)} | "
                         f"{_number(e['ssim'], 4)} | {_number(e['bicubic_psnr'], 3)} | {_number(e['bicubic_ssim'], 4)} "
                         f"| {_number(e['gain_db'], 3)} |")
        lines.append("")
    return "\n".join(lines)
