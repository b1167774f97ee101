"""Comparing training runs (`sr-train runs`): what each run folder's metrics.jsonl and recipe.yaml say,
side by side: the recipe keys that differ, iterations, best validation PSNR/SSIM, gain over bicubic
and time spent training.
"""

from __future__ import annotations

from pathlib import Path

from sr_train.run_files import METRICS, RECIPE_COPY, read_metrics
from srdata.errors import UserError
from srdata.jsonio import is_finite_number
from srdata.typed_yaml import read_yaml_mapping

IGNORED_KEYS = ("run_dir",)  # differs between any two runs; says nothing about them


def flatten(tree: dict, prefix: str = "") -> dict:
    """{"train": {"lr": 1e-3}} -> {"train.lr": 1e-3}; lists and scalars are leaves."""
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def read_recipe_copy(run_dir: Path) -> dict:
    """RUN/recipe.yaml as flat keys ({} when the run has none)."""
    path = run_dir / RECIPE_COPY
    if not path.is_file():
        return {}
    return flatten(read_yaml_mapping(path, "recipe copy", "RUN/recipe.yaml as sr-train fit writes it", "seed, data, model, ..."))


def train_seconds(history: list[dict]) -> float:
    """Time spent in training iterations: each logged row averages `it_per_s` over the iterations since
    the previous training row (validation and checkpoints are not counted)."""
    total, previous = 0.0, 0
    for row in history:
        if is_finite_number(row.get("it_per_s")) and row["it_per_s"] > 0 and "loss" in row:
            total += max(row["iter"] - previous, 0) / row["it_per_s"]
            previous = row["iter"]
    return total


def summarise(run_dir: Path, history: list[dict]) -> dict:
    """One run's numbers: iterations, best val PSNR (its iteration, SSIM and bicubic there), best SSIM,
    gain over bicubic, training seconds."""
    vals = [r for r in history if is_finite_number(r.get("val_psnr"))]
    best = max(vals, key=lambda r: r["val_psnr"], default=None)
    ssims = [r["val_ssim"] for r in history if is_finite_number(r.get("val_ssim"))]
    bicubic = best.get("bicubic_psnr") if best else None
    return {
        "run": str(run_dir),
        "iterations": max((r["iter"] for r in history if "iter" in r), default=0),
        "best_psnr": best["val_psnr"] if best else None,
        "best_psnr_iter": best["iter"] if best else None,
        "ssim_at_best_psnr": best.get("val_ssim") if best else None,
        "best_ssim": max(ssims, default=None),
        "bicubic_psnr": bicubic,
        "bicubic_ssim": best.get("bicubic_ssim") if best else None,
        "gain_db": best["val_psnr"] - bicubic if best and is_finite_number(bicubic) else None,
        "train_seconds": train_seconds(history),
    }


def compare_runs(run_dirs: list[Path]) -> tuple[dict, list[tuple[str, list[dict]]]]:
    """(report, [(run name, metrics rows)]) for runs made by `sr-train fit`. The report holds one
    summary per run with the recipe keys whose values differ between the runs."""
    if not run_dirs:
        raise UserError("no runs given: pass one or more run folders (RUN/metrics.jsonl)")
    histories, recipes = [], []
    for run_dir in run_dirs:
        run_dir = Path(run_dir)
        if not (run_dir / METRICS).is_file():
            raise UserError(f"{run_dir}: no {METRICS}: not a run folder of `sr-train fit` (its run_dir)")
        histories.append((run_dir, read_metrics(run_dir)))
        recipes.append(read_recipe_copy(run_dir))
    keys = sorted({key for recipe in recipes for key in recipe} - set(IGNORED_KEYS))
    missing = object()
    differing = [key for key in keys if len({repr(r.get(key, missing)) for r in recipes}) > 1]
    runs = []
    for (run_dir, history), recipe in zip(histories, recipes):
        runs.append({**summarise(run_dir, history), "recipe": {key: recipe.get(key) for key in differing}})
    return {"runs": runs, "differing_keys": differing}, [(str(run_dir), history) for run_dir, history in histories]
