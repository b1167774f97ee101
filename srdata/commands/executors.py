"""Where a command's per-image work runs: `--workers N` local processes or `--cluster ADDRESS`."""

from __future__ import annotations

from typing import Optional

import typer
from rich.markup import escape

from srdata.cliutil import default_workers
from srdata.errors import UserError
from srdata.executor import Executor, LocalExecutor

CLUSTER_ENV = "SRKIT_DASK_SCHEDULER"
CLUSTER_EXTRA = "pip install 'srkit[cluster]'"


def cluster_option() -> Optional[str]:
    return typer.Option(
        None, "--cluster", envvar=CLUSTER_ENV, show_envvar=True,
        help="Run the per-image work on the Dask cluster whose scheduler is at this address "
             f"(e.g. tcp://HOST:8786); needs {escape(CLUSTER_EXTRA)}.",  # help text is rich markup
    )


def open_executor(cluster: str | None, workers: int | None) -> Executor:
    """LocalExecutor(workers or all cores), or the cluster's DaskExecutor when an address is given
    (an empty SRKIT_DASK_SCHEDULER counts as none)."""
    if workers is not None and workers < 1:
        raise UserError(f"--workers {workers}: must be 1 or more")
    if not cluster:
        return LocalExecutor(workers or default_workers())
    if workers is not None:
        raise UserError(f"--workers {workers} and a cluster ({cluster}, from --cluster or {CLUSTER_ENV}) both given: "
                        "on a cluster the workers are the cluster's; drop --workers, or unset the cluster")
    try:
        # srdata.cluster imports Dask's `distributed`: an optional extra, and ~0.5 s to import,
        # so it is imported only when a cluster is asked for.
        from srdata.cluster import DaskExecutor
    except ModuleNotFoundError as exc:
        if exc.name not in ("distributed", "dask"):
            raise
        raise UserError(f"--cluster needs Dask's distributed package, which is not installed: {CLUSTER_EXTRA}") from None
    return DaskExecutor(cluster)
