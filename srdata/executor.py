"""Where the per-image work of `srdata build` and `srdata inspect` runs.

An executor runs `fn(item, *args)` for every item and returns the results in item order,
whatever finished first: determinism comes from the work itself (per-image seeds come from
content) and from this ordering, never from scheduling. The command chooses the executor:

- `LocalExecutor`: joblib processes on this machine (`--workers`), in-process for one worker;
- `srdata.cluster.DaskExecutor`: the workers of an existing Dask cluster (`--cluster`, optional
  extra `srkit[cluster]`), in its own module because `distributed` may not be installed.

Everything here works without `distributed`, including what cluster workers run between their
tasks' pixels and the scheduler: the one-OpenCV-thread policy and the shared-filesystem check.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from importlib import metadata
from typing import Callable, Sequence

import cv2
import imagehash
import numpy as np
import PIL
from joblib import Parallel, delayed

import srdata


def byte_dependencies() -> dict[str, str]:
    """Versions of srkit and of the libraries that decide a dataset's bytes (decoders, encoders,
    filters, degradation ops, pHash and its DCT): every cluster worker must run the same ones as
    the client."""
    return {
        "srkit": srdata.__version__, "numpy": np.__version__, "opencv": cv2.__version__,
        "pillow": PIL.__version__, "imagehash": imagehash.__version__, "scipy": metadata.version("scipy"),
        "albumentations": metadata.version("albumentations"),
    }


@dataclass(frozen=True)
class SharedFile:
    """A file every worker must see as the client does: same path, same size.

    `what` names it for the user (e.g. "--src /data/raw"); a worker that sees no such file, or
    another file by that name, cannot be given work that reads or writes there.
    """

    what: str
    path: str
    size: int

    def problem(self) -> str | None:
        """Why this process does not see the file as the client does, or None."""
        try:
            size = os.stat(self.path).st_size
        except OSError as exc:
            return f"cannot see {self.what}: {self.path} ({exc.strerror or exc})"
        if size != self.size:
            return (f"sees another file at {self.path} ({size} bytes, the client sees {self.size}), "
                    f"so not the same {self.what}")
        return None


class NotShared(Exception):
    """Raised on a worker that cannot see a SharedFile; the message names the worker and the path."""


def in_worker(fn: Callable, item, args: tuple):
    """Run one item in a worker process: one OpenCV thread, since every core already runs a
    worker of its own and OpenCV's extra threads would only contend with them."""
    cv2.setNumThreads(1)
    return fn(item, *args)


def _indexed(fn: Callable, index: int, item, args: tuple) -> tuple[int, object]:
    return index, in_worker(fn, item, args)


class Executor:
    """Runs a function over items; `done_by` counts the items each named worker ran."""

    def __init__(self) -> None:
        self.done_by: Counter[str] = Counter()

    def map(self, fn: Callable, items: Sequence, args: tuple = (), shared: Sequence[SharedFile] = (),
            output_dir: str | os.PathLike | None = None, on_done: Callable[[int], None] | None = None,
            name_of: Callable[[object], str] = str) -> list:
        """[fn(item, *args) for item in items], run wherever this executor runs work.

        `fn` must be a module-level function and items/args/results small picklable records
        (paths, hashes, sizes): pixels are read and written by the workers themselves.
        `shared` are files the workers must see as this process does and `output_dir` the
        folder they write into (both checked on every cluster worker before it gets work);
        `on_done(n)` is called as items finish; `name_of(item)` names an item in errors.
        """
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class LocalExecutor(Executor):
    """`workers` processes of this machine (joblib's reusable loky pool); one runs in-process."""

    def __init__(self, workers: int):
        super().__init__()
        self.workers = workers

    def map(self, fn, items, args=(), shared=(), output_dir=None, on_done=None, name_of=str) -> list:
        n_jobs = min(self.workers, len(items))
        if n_jobs <= 1:  # no pool to start; OpenCV keeps its threads
            results = []
            for item in items:
                results.append(fn(item, *args))
                if on_done is not None:
                    on_done(1)
            return results
        results = [None] * len(items)
        jobs = (delayed(_indexed)(fn, i, item, args) for i, item in enumerate(items))
        for index, result in Parallel(n_jobs=n_jobs, return_as="generator_unordered")(jobs):
            results[index] = result
            if on_done is not None:
                on_done(1)
        return results
