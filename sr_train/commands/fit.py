"""`sr-train fit RECIPE [--set key=value]... [--resume auto|PATH] [--dry-run]`."""

from __future__ import annotations

import shlex
from typing import List, Optional

import typer
from rich.console import Console

from sr_train.run_files import CURVES, METRICS, RECIPE_COPY, VISUALDL_DIR
from srdata.errors import WriteError


def fit_command(
    recipe: str = typer.Argument(..., help="Recipe YAML (see recipes/) or a PaddleGAN SR config."),
    set_: Optional[List[str]] = typer.Option(None, "--set", help="Override a recipe key: --set train.iters=1000 (repeatable; value is YAML)."),
    resume: Optional[str] = typer.Option(None, "--resume", help="'auto': continue the newest readable state in run_dir; or a .state file to continue into this run_dir."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the progress bar."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check the recipe, the data and --resume, print the "
                                                          "plan (model, parameters, data, iterations, files), "
                                                          "train nothing, write nothing."),
) -> int:
    """Train a super-resolution model (PSNR stage: L1 or MSE pixel loss) as the recipe says."""
    from sr_train.fit import FitStopped  # Paddle is imported when a command runs, not for --help
    from sr_train.launch import run_fit
    from sr_train.plan import plan_run
    from sr_train.recipe import load_recipe

    loaded = load_recipe(recipe, set_ or [])
    console = Console(stderr=True)
    for note in loaded.notes:
        console.print(f"recipe: {note}")
    if dry_run:
        plan = plan_run(loaded, resume, console, lambda message: console.print(message, markup=False,
                                                                               highlight=False, soft_wrap=True))
        print(f"sr-train fit --dry-run {loaded.source}")
        for what, text in plan_rows(loaded, plan):
            print(f"  {what + ':':<12}{text}")
        print("dry run: nothing was trained or written")
        return 0
    again = shlex.join(["sr-train", "fit", recipe, *[arg for item in set_ or [] for arg in ("--set", item)],
                        "--resume", "auto"])
    try:
        result = run_fit(loaded, resume=resume, progress=progress, console=console)
    except FitStopped as stop:
        console.print(f"sr-train fit: stopped by {stop.signal_name} after iteration {stop.iteration}; its state is "
                      f"{stop.state}; continue with: {again}", markup=False, highlight=False, soft_wrap=True)
        return stop.exit_code
    except WriteError as exc:
        raise exc.with_hint(f"continue with: {again}") from None
    best = f"{result.best_psnr:.3f} dB" if result.best_psnr is not None else "n/a"
    bicubic = f"{result.bicubic_psnr:.3f} dB" if result.bicubic_psnr is not None else "n/a"
    print(f"done: {result.iteration} iterations in {result.run_dir}; best val PSNR {best} (bicubic {bicubic}); "
          f"weights {result.run_dir / 'best.safetensors'}")
    return 0


def plan_rows(recipe, plan) -> list[tuple[str, str]]:
    """`--dry-run`'s plan as (what, plan) rows: what would be trained on what, for how long, and which files
    it would write (one line each, whole paths: a terminal may wrap them, nothing cuts them)."""
    train, run = recipe.train, plan.run_dir
    iters, start = train.iters, plan.start
    settings = ", ".join(f"{k} {v}" for k, v in plan.arch.items() if k != "arch")
    model = f"{plan.arch['arch']} ({settings}): {plan.parameters:,} parameters"
    if recipe.model.init_from:
        model += f", initialised from {recipe.model.init_from}"
    rows = [("model", model)]
    if recipe.discriminator is not None:
        gan = (f"discriminator {recipe.discriminator.arch} (nf {recipe.discriminator.nf}), "
               f"loss.gan weight {recipe.loss.gan.weight}")
        if recipe.loss.perceptual is not None:
            gan += f", perceptual {recipe.loss.perceptual.layer} from {recipe.loss.perceptual.weights}"
        rows.append(("GAN stage", gan))
    data = recipe.data.root or f"{recipe.data.train.gt} + {recipe.data.train.lq}"
    hr_mp = sum(w * h for w, h in (p.hr_size for p in plan.train_pairs)) / 1e6
    rows.append(("data", f"{data}: x{plan.scale}, {len(plan.train_pairs)} train pairs ({hr_mp:.1f} HR megapixels), "
                         f"{len(plan.val_pairs)} val pairs"))
    training = (f"iterations {start + 1}..{iters} ({max(iters - start, 0)} to run) of batch {train.batch_size} x "
                f"{plan.patch} px HR patches; lr {train.lr:g} ({train.scheduler.name}), loss {train.loss}")
    rows.append(("training", training + (f", EMA {train.ema}" if train.ema else "")))
    rows.append(("resume", f"continues {plan.state.info['path']} (iteration {start})" if plan.state is not None
                 else "a new run"))
    rows.append(("validation", f"every {recipe.val.interval} iterations and at the end "
                               f"({_count_at(recipe.val.interval, start, iters)}), crop {plan.crop}, "
                               f"{'Y channel' if recipe.val.y_channel else 'RGB'}"))
    writes = (f"{run}/best.safetensors, {run}/last.safetensors, "
              f"{_count_at(recipe.checkpoint.interval, start, iters)} x {run}/ckpt/iter_N.safetensors and .state "
              f"(every {recipe.checkpoint.interval} iterations and at the end; the last "
              f"{recipe.checkpoint.keep_states} states kept), {run}/{METRICS}, {run}/{CURVES}, "
              f"{run}/{RECIPE_COPY}")
    if recipe.log.visualdl:
        writes += f", {run}/{VISUALDL_DIR}/"
    rows.append(("writes", writes))
    return rows


def _count_at(interval: int, start: int, iters: int) -> int:
    """How many of the iterations start+1..iters are a multiple of `interval` or the last one."""
    if iters <= start:
        return 0
    return iters // interval - start // interval + (1 if iters % interval else 0)
