"""`sr-train fit RECIPE [--set key=value]... [--resume auto|PATH]`."""

from __future__ import annotations

import shlex
from typing import List, Optional

import typer
from rich.console import Console

from srdata.errors import WriteError


def fit_command(
    recipe: str = typer.Argument(..., help="Recipe YAML (see recipes/) or a PaddleGAN SR config."),
    set_: Optional[List[str]] = typer.Option(None, "--set", help="Override a recipe key: --set train.iters=1000 (repeatable; value is YAML)."),
    resume: Optional[str] = typer.Option(None, "--resume", help="'auto': continue the newest readable state in run_dir; or a .state file to continue into this run_dir."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the progress bar."),
) -> int:
    """Train a super-resolution model (PSNR stage: L1 or MSE pixel loss) as the recipe says."""
    from sr_train.fit import FitStopped  # Paddle is imported when a command runs, not for --help
    from sr_train.launch import run_fit
    from sr_train.recipe import load_recipe

    loaded = load_recipe(recipe, set_ or [])
    console = Console(stderr=True)
    for note in loaded.notes:
        console.print(f"recipe: {note}")
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
