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
import signal
import time

import paddle
from rich.console import Console

from sr_train.fit import FitResult, FitStopped, fit, on_gpu
from sr_train.recipe import Recipe
from srdata.cliutil import default_workers
from srdata.errors import UserError, WriteError
from srdata.stopping import StopRequest, Stopped, deferred_stop


def launched_by_paddle() -> bool:
    """True inside a process started by paddle.distributed.launch or spawn."""
    return int(os.environ.get("PADDLE_TRAINERS_NUM", "1")) > 1


def fit_processes(recipe: Recipe) -> int:
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
    cores = default_workers()
    return max(n for n in range(1, min(cores, batch) + 1) if batch % n == 0)


def run_fit(recipe: Recipe, resume: str | None, progress: bool, console: Console) -> FitResult:
    """`fit` in this process, or in `fit_processes` data-parallel processes (rank 0's result).

    With several processes, what stopped them is raised here as if one process had run: the first
    failure's UserError (or WriteError, with its errno), or FitStopped when a SIGINT/SIGTERM (to this
    process, passed on to them, or to them directly) made them save a state and stop."""
    processes = fit_processes(recipe)
    if processes == 1:
        return fit(recipe, resume=resume, progress=progress, console=console)
    context = paddle.distributed.spawn(_fit_in_process, args=(recipe, resume, progress), nprocs=processes,
                                       backend="gloo", join=False)
    with deferred_stop() as request:
        outcomes = supervise(context, request)
    for _, (kind, value) in outcomes:
        if isinstance(value, FitStopped):  # they saved a state: say so (with the signal this process got)
            raise FitStopped(request.signum or value.signum, value.iteration, value.state)
    if request.signum is not None and any(kind != "ok" for _, (kind, _) in outcomes):
        raise Stopped(request.signum)  # stopped before training began: nothing to save
    for _, (kind, value) in outcomes:  # in the order they ended: the first failure is the cause
        if kind == "raise":
            raise value
        if kind == "error":
            raise UserError(value)
    return dict(outcomes)[0][1]


def supervise(context, request: StopRequest | None = None) -> list[tuple[int, tuple[str, object]]]:
    """Wait for the spawned processes; the moment one fails (an error returned, a crash, a kill), kill
    the others, which would otherwise wait for it forever, and report it. A stop asked of this process
    (`request`, srdata.stopping.deferred_stop) is passed on to them as SIGTERM, once: they finish their
    step, save a state and end (a process stopped by a signal is not a failure). Returns (rank, outcome)
    of every process, in the order they ended."""
    processes = context.processes
    outcomes: dict[int, tuple[str, object]] = {}
    passed_on = False
    try:
        while len(outcomes) < len(processes):
            if request is not None and request.signum is not None and not passed_on:
                for process in processes:
                    if process.is_alive():
                        os.kill(process.pid, signal.SIGTERM)  # SIGTERM: a second SIGINT would mean "at once"
                passed_on = True
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
                kind, value = outcomes[rank]
                if kind == "error" or (kind == "raise" and not isinstance(value, Stopped)):
                    _stop(processes)
            time.sleep(0.05)
    finally:
        _stop(processes)
    return list(outcomes.items())


def _stop(processes) -> None:
    """Kill the processes still running. SIGKILL, not SIGTERM: a training process asks SIGTERM to finish
    its step first (srdata.stopping), which a process waiting on a dead peer never does; nothing is
    lost (every file is written atomically, and the run resumes from its last state)."""
    for process in processes:
        if process.is_alive():
            process.kill()
    for process in processes:
        process.join()


def _fit_in_process(recipe: Recipe, resume: str | None, progress: bool) -> tuple[str, object]:
    """One spawned process: ("ok", FitResult), ("error", the one-line UserError message), or ("raise", a
    WriteError or Stopped/FitStopped to raise in the parent), so a bad dataset or recipe found by every
    process, a full disk or a stop is reported once, without a traceback. Before the training loop the
    signals keep their default actions, so the parent can always end a process that waits for a peer
    inside Paddle's C++ code."""
    try:
        return "ok", fit(recipe, resume=resume, progress=progress, console=Console(stderr=True))
    except UserError as exc:
        return "error", str(exc)
    except (WriteError, Stopped) as exc:
        return "raise", exc
    except OSError as exc:  # the storage failed outside srkit's writer (reported by run_app in the parent)
        failure = WriteError.from_storage_failure(exc)
        if failure is None:
            raise
        return "raise", failure
