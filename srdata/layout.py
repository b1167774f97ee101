"""The dataset format in one place: file names, split folders, how a dataset folder is resolved,
how HR and LR files pair up, and how the manifest is read.

A dataset made by `srdata build` (PaddleGAN's layout):

    DS/train/NAME.png   DS/train_X4/NAME.png     HR and LR of the training split
    DS/val/...          DS/val_X4/...            (and test/, test_X4/)
    DS/manifest.jsonl   one line per source (MANIFEST)
    DS/dataset.json     settings, version, counts (DATASET)
    DS/duplicates.json  near-duplicate groups (DUPLICATES)
    DS/rejected.jsonl   skipped sources and why (REJECTED)

Readers (inspect, the trainer, eval) also take any PaddleGAN/BasicSR paired folder (`train/` +
`train_X4/`, ...) or two folders given directly. HR and LR files pair by relative path without
extension (DIV2K's `0001x4.png` LR naming is accepted too).

A frames folder made by `srdata frames` (a build's RAW, or a folder inside it):

    RAW/VIDEO__t000123.456.png   a kept frame (VIDEO: the video's name, then its time)
    RAW/frames.jsonl             one line per kept frame: file, video, scene, time, ... (FRAMES_LIST)
    RAW/frames.json              settings and the finished videos (FRAMES_STATE)

`srdata build` reads frames.jsonl to keep every frame of a video (or of a scene) in one split.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from srdata import __version__ as srkit_version
from srdata.errors import UserError
from srdata.imageio import find_images
from srdata.jsonio import read_jsonl

MANIFEST = "manifest.jsonl"
DATASET = "dataset.json"
DUPLICATES = "duplicates.json"
REJECTED = "rejected.jsonl"
METADATA_FILES = (MANIFEST, DATASET, DUPLICATES, REJECTED)
STAGING = ".staging"  # srdata build's work folder inside DS (removed when a build completes)
SPLITS = ("train", "val", "test")  # in this order everywhere (tables, JSON, folder listings)
LR_DIR = re.compile(r"^(?P<base>.+)_X(?P<scale>\d+)$")  # an LR folder: BASE_X{scale}
FRAMES_LIST = "frames.jsonl"
FRAMES_STATE = "frames.json"
DATASET_FORMAT = "srkit-dataset"  # dataset.json's "format"
# dataset.json's "format_version": bump when a reader of the old format would misread the new one
# (a file missing it is version 1). A newer version is refused by every reader, with what to do.
DATASET_FORMAT_VERSION = 1


def flat_name(rel: str) -> str:
    """'a/b/c.jpg' -> 'a__b__c': a relative path as one file stem (a source's outputs in a
    dataset, a video's frames in a frames folder)."""
    return rel.rsplit(".", 1)[0].replace("/", "__")


def lr_dir(split: str, scale: int) -> str:
    """The LR folder of a split: `train` at scale 4 -> `train_X4`."""
    return f"{split}_X{scale}"


def output_paths(split: str, name: str, scale: int) -> tuple[str, str]:
    """(HR, LR) paths relative to DS of the image `name` (a file stem) in `split`."""
    return f"{split}/{name}.png", f"{lr_dir(split, scale)}/{name}.png"


def is_split_folder(name: str) -> bool:
    """A folder srdata build writes: a split (`train`) or a split's LR folder (`train_X4`)."""
    match = LR_DIR.match(name)
    return name in SPLITS or bool(match and match["base"] in SPLITS)


def ordered_splits(names: Iterable[str]) -> list[str]:
    """train, val, test first (in that order), then any other names sorted."""
    rank = {name: i for i, name in enumerate(SPLITS)}
    return sorted(names, key=lambda n: (rank.get(n, len(rank)), n))


# ----------------------------------------------------------------------------- resolving a dataset


@dataclass(frozen=True)
class SplitDirs:
    name: str
    hr: Path
    lr: Path | None  # None: an HR-only split (training with LRs made on the fly, sr-train's data.degrade)


@dataclass(frozen=True)
class Layout:
    kind: str  # "srdata" (built by srdata build), "paired-folders" or "hr-lr"
    root: Path | None
    scale: int
    scale_source: str
    splits: list[SplitDirs]
    settings: dict  # dataset.json's "settings" (empty when there is none)


def resolve_layout(
    ds: Path | None, hr_dir: Path | None = None, lr_dir: Path | None = None, scale: int | None = None
) -> Layout:
    """Find the HR/LR folders and the scale, or raise UserError saying what to pass instead.

    Scale comes from DS/dataset.json when present, else from `*_X{N}` folder names, else from
    `scale` (the --scale option). A --scale that contradicts the first two is an error.
    """
    if scale is not None and not 2 <= scale <= 16:
        raise UserError(f"--scale {scale} is out of range: use an integer from 2 to 16")
    if (hr_dir is None) != (lr_dir is None):
        raise UserError("--hr and --lr go together: pass both folders, or neither and a dataset folder DS")
    if hr_dir is not None:
        if ds is not None:
            raise UserError("give either a dataset folder DS or --hr DIR --lr DIR, not both")
        return _hr_lr_layout(Path(hr_dir), Path(lr_dir), scale)
    if ds is None:
        raise UserError("no dataset given: pass a dataset folder DS, or --hr DIR --lr DIR")
    return _folder_layout(Path(ds), scale)


def _hr_lr_layout(hr: Path, lr: Path, scale: int | None) -> Layout:
    for option, path in (("--hr", hr), ("--lr", lr)):
        if not path.is_dir():
            raise UserError(f"{option} {path}: not a folder; pass the folder holding the {option[2:].upper()} images")
    match = LR_DIR.match(lr.name)
    named = int(match["scale"]) if match else None
    if named is not None and scale is not None and named != scale:
        raise UserError(f"--lr {lr} is named for scale {named} but --scale is {scale}; drop --scale or fix it")
    if named is None and scale is None:
        raise UserError(f"cannot tell the scale of --lr {lr} (no _X<N> in its name): pass --scale N")
    chosen, source = (named, "folder name") if named is not None else (scale, "--scale")
    return Layout("hr-lr", None, chosen, source, [SplitDirs(hr.name or "pairs", hr, lr)], {})


def _folder_layout(ds: Path, scale: int | None) -> Layout:
    if not ds.is_dir():
        raise UserError(f"{ds}: not a folder; pass a dataset folder (e.g. made by `srdata build`) or --hr/--lr")
    meta = read_dataset_json(ds)
    scales_by_base: dict[str, set[int]] = defaultdict(set)
    for child in ds.iterdir():
        match = LR_DIR.match(child.name)
        if child.is_dir() and match and (ds / match["base"]).is_dir():
            scales_by_base[match["base"]].add(int(match["scale"]))
    folder_scales = sorted({s for ss in scales_by_base.values() for s in ss})

    if meta is not None:
        chosen, source = _scale_from_meta(ds, meta), DATASET
    elif len(folder_scales) == 1:
        chosen, source = folder_scales[0], "folder names"
    elif len(folder_scales) > 1 and scale in folder_scales:
        chosen, source = scale, "--scale"
    elif len(folder_scales) > 1:
        listed = ", ".join(f"_X{s}" for s in folder_scales)
        raise UserError(f"{ds} has LR folders for several scales ({listed}): pass --scale N to pick one")
    elif scale is not None:
        chosen, source = scale, "--scale"
    else:
        raise UserError(
            f"{ds}: no HR/LR folder pair found (expected e.g. train/ and train_X4/); "
            "pass --hr DIR --lr DIR --scale N for another layout"
        )
    if scale is not None and scale != chosen:
        raise UserError(f"{ds}: {source} says scale {chosen} but --scale is {scale}; drop --scale or fix it")

    bases = {b for b, ss in scales_by_base.items() if chosen in ss}
    bases |= {name for name in SPLITS if (ds / name).is_dir()}
    if not bases:
        raise UserError(f"{ds}: no HR/LR folder pair for scale {chosen} (expected e.g. train/ and train_X{chosen}/)")
    splits = [SplitDirs(b, ds / b, ds / lr_dir(b, chosen)) for b in ordered_splits(bases)]
    settings = meta.get("settings", {}) if meta is not None else {}
    kind = "srdata" if meta is not None else "paired-folders"
    return Layout(kind, ds, chosen, source, splits, settings if isinstance(settings, dict) else {})


def read_dataset_json(ds: Path) -> dict | None:
    path = ds / DATASET
    if not path.exists():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: not readable JSON ({exc}); rebuild the dataset or delete the file") from None
    if not isinstance(meta, dict):
        raise UserError(f"{path}: expected a JSON object; rebuild the dataset or delete the file")
    check_dataset_format(meta, path)
    return meta


def check_dataset_format(meta: dict, path: Path) -> None:
    """UserError if dataset.json `meta` (read from `path`) says a newer srkit wrote it in a format
    this one does not know."""
    version = meta.get("format_version", 1)
    if meta.get("format", DATASET_FORMAT) != DATASET_FORMAT:
        raise UserError(f"{path}: not a srkit dataset description (format {meta.get('format')!r}); "
                        "delete the file or point to the dataset folder itself")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise UserError(f"{path}: format_version {version!r} is not a version number; "
                        "rebuild the dataset or delete the file")
    if version > DATASET_FORMAT_VERSION:
        raise UserError(f"{path}: written by a newer srkit ({meta.get('version', '?')}, dataset format "
                        f"{version}; this srkit {srkit_version} reads format {DATASET_FORMAT_VERSION}): "
                        "upgrade srkit (pip install -U srkit)")


def _scale_from_meta(ds: Path, meta: dict) -> int:
    scale = meta.get("scale")
    if not isinstance(scale, int) or isinstance(scale, bool) or scale < 1:
        raise UserError(f"{ds / DATASET}: key 'scale' must be a positive integer, got {scale!r}")
    return scale


# ----------------------------------------------------------------------------- files and pairs


@dataclass(frozen=True)
class FilePair:
    """An HR file and its LR partner in a split; either may be missing (None)."""

    split: str
    key: str  # relative path without extension, the name both files share
    hr: Path | None
    lr: Path | None


def list_images(folder: Path | None) -> dict[str, Path]:
    """Image files under `folder` keyed by relative path without extension (`find_images`'s rules:
    hidden and temp files skipped); when two share a name (a.png, a.jpg) the first sorted wins.
    No folder (None) has no images."""
    if folder is None or not folder.is_dir():
        return {}
    found = {}
    for path in find_images(folder):
        found.setdefault(path.relative_to(folder).with_suffix("").as_posix(), path)
    return found


def list_pairs(split: SplitDirs, scale: int) -> list[FilePair]:
    """Pair HR and LR files by name; unpaired files come back with one side None."""
    hr_files, lr_files = list_images(split.hr), list_images(split.lr)
    pairs, used_lr = [], set()
    for key, hr_path in hr_files.items():
        lr_key = key if key in lr_files else f"{key}x{scale}"  # DIV2K: 0001.png <-> 0001x4.png
        lr_path = lr_files.get(lr_key)
        if lr_path is not None:
            used_lr.add(lr_key)
        pairs.append(FilePair(split.name, key, hr_path, lr_path))
    pairs += [FilePair(split.name, key, None, path) for key, path in lr_files.items() if key not in used_lr]
    return pairs


# ----------------------------------------------------------------------------- the manifest


def read_manifest(root: Path) -> list[dict] | None:
    """DS/manifest.jsonl's records, or None when the folder has none (not built by srdata build).
    A damaged line is a UserError naming the file and the line."""
    path = root / MANIFEST
    if not path.exists():
        return None
    return read_jsonl(path)


# ----------------------------------------------------------------------------- frames folders


@dataclass(frozen=True)
class FrameOrigin:
    """Where a frame made by `srdata frames` comes from."""

    video: str  # the video's name, prefixed with the frames folder's path inside RAW (if any)
    scene: int


def read_frame_origins(raw: Path, folders) -> dict[str, FrameOrigin]:
    """The origin of every frame listed in the FRAMES_LIST of `folders` (under `raw`: the folders the
    images were found in, so the tree is not walked again), keyed by the frame's path relative to
    `raw`. A damaged list is a UserError naming the file and the line."""
    origins = {}
    for image_folder in sorted(folders):
        path = image_folder / FRAMES_LIST
        if not path.is_file():
            continue
        folder = path.parent.relative_to(raw)
        for number, row in enumerate(read_jsonl(path), start=1):
            file, video, scene = row.get("file"), row.get("video"), row.get("scene")
            if not (isinstance(file, str) and isinstance(video, str) and isinstance(scene, int)):
                raise UserError(
                    f"{path}: line {number} lacks a text 'file' and 'video' or a whole-number 'scene'; "
                    "re-run srdata frames into a new folder"
                )
            origins[(folder / file).as_posix()] = FrameOrigin((folder / video).as_posix(), scene)
    return origins
