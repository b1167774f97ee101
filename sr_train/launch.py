"""How many processes `sr-train fit` trains with, and starting them.

On CPU, Paddle's intra-op threads make a step slower here (one quickstart step: 420 ms on 1 thread,
838 ms on 2), while data-parallel processes of one thread each split every batch between the
cores: `bench/train.py` measures both. So by default a CPU run starts one single-thread process
per core the process may use (the affinity mask), capped to a divisor of `train.batch_size` so
every process takes an equal share of each batch. `train.processes` overrides the count. Each
process is started by `paddle.distributed.spawn` (gloo on CPU), trains its share, and rank 0 writes
the run folder, exactly as under `python -m paddle.distributed.launch`. A run already started by
that launcher, or on a GPU, is not split again: GPU users launch one process per GPU themselves.
"""

from __future__ import annotations

import os
import time

import paddle
from rich.console import Console

from sr_train.fit import FitResult, fit, on_gpu
from sr_train.recipe import Recipe
from srdata.cliutil import default_workers
from srdata.errors import UserError


def launched_by_paddle() -> bool:
    """True inside a process started by paddle.distributed.launch or spawn."""
    return int(os.environ.get("PADDLE_TRAINERS_NUM", "1")) > 1


def fit_processes(recipe: Recipe, cores: int | None = None) -> int:
    """Processes to train `recipe` with from here: 1 when already launched or on a GPU, else
    `train.processes` (which must divide the batch) or, when 0, the largest divisor of the batch
    size that is at most the number of usable cores."""
    if launched_by_paddle() or on_gpu():
        return 1
    batch = recipe.train.batch_size
    wanted = recipe.train.processes
    if wanted:
        if batch % wanted:
            raise UserError(f"{recipe.source}: train.batch_size {batch} is not divisible by train.processes "
                            f"{wanted}: change one of them")
        return wanted
    cores = cores or default_workers()
    return max(n for n in range(1, min(cores, batch) + 1) if batch % n == 0)


def run_fit(recipe: Recipe, resume: str | None, progress: bool, console: Console) -> FitResult:
    """`fit` in this process, or in `fit_processes` data-parallel processes (rank 0's result)."""
    processes = fit_processes(recipe)
    if processes == 1:
        return fit(recipe, resume=resume, progress=progress, console=console)
    context = paddle.distributed.spawn(_fit_in_process, args=(recipe, resume, progress), nprocs=processes,
                                       backend="gloo", join=False)
    outcomes = supervise(context)
    errors = [value for kind, value in outcomes if kind == "error"]
    if errors:
        raise UserError(errors[0])
    return outcomes[0][1]


def supervise(context) -> list[tuple[str, object]]:
    """Wait for the spawned processes; the moment one fails (an error returned, a crash, a kill), stop
    the others, which would otherwise wait for it forever, and report it. Returns every outcome."""
    processes = context.processes
    outcomes: dict[int, tuple[str, object]] = {}
    try:
        while len(outcomes) < len(processes):
            for rank, process in enumerate(processes):
                if rank in outcomes or process.is_alive():
                    continue
                process.join()
                if not context.return_queues[rank].empty():
                    outcomes[rank] = context.return_queues[rank].get()
                elif not context.error_queues[rank].empty():
                    outcomes[rank] = ("error", f"training process {rank} failed: "
                                               f"{context.error_queues[rank].get().strip().splitlines()[-1]}")
                else:
                    outcomes[rank] = ("error", f"training process {rank} ended with exit code {process.exitcode}")
                if outcomes[rank][0] == "error":
                    _stop(processes)
            time.sleep(0.05)
    finally:
        _stop(processes)
    return [outcomes[rank] for rank in range(len(processes))]


def _stop(processes) -> None:
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join()


def _fit_in_process(recipe: Recipe, resume: str | None, progress: bool) -> tuple[str, object]:
    """One spawned process: ("ok", FitResult) or ("error", the one-line UserError message), so a bad
    dataset or recipe found by every process is reported once, without a traceback."""
    try:
        return "ok", fit(recipe, resume=resume, progress=progress, console=Console(stderr=True))
    except UserError as exc:
        return "error", str(exc)
