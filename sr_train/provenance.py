"""Where a model comes from: the training record `sr-train fit` stores in every weights file's
metadata (under the key `training`), which model cards read back (`sr_train.model_card`).

The record names the data exactly: for a dataset made by `srdata build`, the SHA-256 of its
`dataset.json` (build settings, srkit version, counts) with the settings that made its LR images;
for plain folders, the folders. The recipe is stored whole, so an online degradation pipeline it
declares (`data.degrade`, when the recipe has that key) travels with the weights too.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from srdata import __version__
from srdata.layout import DATASET, read_dataset_json

TRAINING_KEY = "training"  # the weights metadata key holding `training_record`
DEGRADE_KEY = "degrade"  # the recipe's online degradation pipeline (data.degrade), read when present


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def training_record(recipe: dict, recipe_file: str, iteration: int, stage: str, data: dict) -> dict:
    """The record of a weights file written at `iteration` by the run of `recipe` (its `to_dict()`);
    `data` is `data_record` of its data section, made once per run (it reads dataset.json)."""
    return {"iterations": iteration, "stage": stage, "recipe_file": recipe_file, "recipe": recipe,
            "data": data, "srkit_version": __version__}


def data_record(data: dict) -> dict:
    """What the recipe's `data` section trained on, as a model card shows it."""
    record: dict = {"degrade": data.get(DEGRADE_KEY)}
    if data.get("root"):
        root = Path(data["root"])
        meta = read_dataset_json(root) if (root / DATASET).is_file() else None
        record.update(root=str(root), dataset_json_sha256=file_sha256(root / DATASET) if meta is not None else None,
                      build_settings=(meta or {}).get("settings"), counts=(meta or {}).get("counts"))
    else:
        record.update(folders={split: data.get(split) for split in ("train", "val")})
    return record
