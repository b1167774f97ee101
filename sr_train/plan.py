"""What a training run will do, decided and checked before anything is built, read in full or
written: the state to continue, the data, the model's shape against the data, the weights to start
from. `sr_train.fit` trains from it; `sr-train fit --dry-run` prints it and stops."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from sr_train.checkpoint import TrainState, pick_state
from sr_train.data import check_val_sizes, find_pairs, resolve_splits
from sr_train.gan import check_patch_size, check_weights_setting
from sr_train.models import complete_arch, count_parameters
from sr_train.recipe import Recipe
from sr_train.weights.load import check_arch_agrees, read_weights
from srdata.degradations.pipeline import Pipeline
from srdata.errors import UserError


@dataclass
class RunPlan:
    """What a run will do, decided and checked before anything is built, read in full or written
    (`sr-train fit --dry-run` prints it and stops)."""

    run_dir: Path
    state: TrainState | None  # the state to continue, or None (a new run)
    skipped: list[str]  # damaged states passed over by --resume auto
    scale: int
    arch: dict  # the generator's complete architecture
    parameters: int  # the generator's
    patch: int  # HR patch size
    crop: int  # validation crop border
    train_pairs: list  # HR only when `pipeline` makes the LRs
    val_pairs: list
    pipeline: Pipeline | None  # data.degrade: the training LRs are made from HR patches on the fly
    init_state: dict | None  # model.init_from's weights, already read and checked against `arch`

    @property
    def start(self) -> int:
        return self.state.iteration if self.state is not None else 0


def plan_run(recipe: Recipe, resume: str | None, console: Console, say=None) -> RunPlan:
    """Check everything a run needs before it starts: the state to continue (--resume), the data
    (pairs and their sizes, from the files' headers), the model's shape against the data, the
    weights to start from, and what the GAN stage needs. Reads files, writes nothing; UserError
    (one line) on the first problem. `say` gets notes (damaged states passed over)."""
    say = say or (lambda message: None)
    run_dir = Path(recipe.run_dir)
    state, skipped = pick_state(resume, run_dir)
    for note in skipped:
        say(f"resume: skipped {note}")
    if state is None and skipped:
        raise UserError(f"{run_dir}: no readable training state ({len(skipped)} damaged, listed above): "
                        "resume from a copy with --resume PATH, or train into another run_dir")
    splits = resolve_splits(recipe)
    scale = splits.scale
    arch = recipe.model_arch(scale)
    if arch["scale"] != scale:
        raise UserError(f"{recipe.source}: model.scale {arch['scale']} differs from the data's scale {scale}: "
                        "remove model.scale or use a dataset of that scale")
    patch = recipe.train.patch_size
    if patch % scale:
        raise UserError(f"{recipe.source}: train.patch_size {patch} is not a multiple of the scale {scale}: "
                        f"use e.g. {patch - patch % scale or scale}")
    pipeline = recipe.degrade_pipeline()  # data.degrade: training LRs made on the fly from HR patches
    train_pairs = find_pairs(splits.train, scale, min_hr=patch, console=console, hr_only=pipeline is not None)
    val_pairs = find_pairs(splits.val, scale, console=console)
    crop = recipe.val.crop_border if recipe.val.crop_border is not None else scale
    check_val_sizes(val_pairs, crop, recipe.source)
    init_state = None
    if recipe.model.init_from:
        file_arch, init_state = read_weights(recipe.model.init_from)
        check_arch_agrees(complete_arch(file_arch), arch, recipe.model.init_from)
    if recipe.discriminator is not None:
        check_patch_size(recipe.discriminator.arch, patch)
    if recipe.loss.perceptual is not None:
        check_weights_setting(recipe.loss.perceptual.weights)
    if state is not None:
        check_arch_agrees(complete_arch(state.info["arch"]), arch, f"{state.info.get('path', 'state')}")
        if recipe.discriminator is not None and state.disc is None:
            raise UserError(f"{state.info['path']} is a PSNR-stage state without a discriminator: start the GAN "
                            "stage from its weights with model.init_from instead of --resume")
    return RunPlan(run_dir, state, skipped, scale, arch, count_parameters(arch), patch, crop, train_pairs, val_pairs,
                   pipeline, init_state)
