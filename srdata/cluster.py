"""Run srdata's per-image work on an existing Dask cluster (`--cluster`, extra `srkit[cluster]`).

A Dask cluster is one `dask scheduler` and a `dask worker` per machine; every machine sees the
same shared filesystem at the same paths. The client (the machine running `srdata`) plans; the
workers read sources and write outputs on the shared filesystem themselves, so only small
records (paths, hashes, sizes) travel through the scheduler, never pixels.

Scheduler load: a Dask task costs the scheduler and the client milliseconds of CPU each
(bench/cluster.py), as much as a small image. Items go out in chunks of up to MAX_CHUNK, at least CHUNKS_PER_THREAD chunks
per worker thread so the last ones still spread over every worker, and only
IN_FLIGHT_PER_THREAD chunks per thread are submitted at a time: a million images are ~16k
tasks, never a million-task graph, and the scheduler holds a few thousand at most.

Faults: a worker that dies has its chunk re-run elsewhere by Dask. That is safe because every
item is idempotent (the build writes each output under its output key by temp-name-then-rename,
so two attempts of a chunk racing leave one whole file). Before a worker gets work it must see
the client's files (`SharedFile`) and run the same library versions (`byte_dependencies`);
otherwise the command fails with one line naming the worker and the path or package.
"""

from __future__ import annotations

import math
import secrets
import socket
import time
from pathlib import Path
from typing import Callable, Sequence

import distributed
from distributed.comm import parse_address, parse_host_port

from srdata.atomic import write_bytes
from srdata.errors import UserError
from srdata.executor import Executor, NotShared, SharedFile, byte_dependencies, in_worker

CONNECT_SECONDS = 10
MAX_CHUNK = 64
CHUNKS_PER_THREAD = 32
IN_FLIGHT_PER_THREAD = 3
NO_WORKERS_SECONDS = 60  # give up when the cluster has had no worker at all for this long
_POLL_SECONDS = 5
_SHARED_HELP = "every worker must see the shared filesystem at the same paths as this machine"


def chunk_size(items: int, threads: int, max_chunk: int = MAX_CHUNK) -> int:
    """Items per task: at most max_chunk, at least CHUNKS_PER_THREAD tasks per worker thread."""
    return max(1, min(max_chunk, math.ceil(items / (CHUNKS_PER_THREAD * max(1, threads)))))


def worker_report(shared: Sequence[SharedFile]) -> tuple[list[str], dict[str, str]]:
    """Run on every worker before it gets work: (what it cannot see, its library versions)."""
    problems = [p for p in (f.problem() for f in shared) if p is not None]
    return problems, byte_dependencies()


def run_chunk(fn: Callable, items: Sequence, args: tuple, shared: Sequence[SharedFile]) -> tuple[str, list]:
    """One Dask task: fn on each item, each time after checking the shared files (a worker may
    join after the first check or lose its mount; and a chunk left running by a killed client
    stops at its next item once the re-run has cleaned the output folder). (worker, results)."""
    worker = distributed.get_worker().address
    results = []
    for item in items:
        for f in shared:
            problem = f.problem()
            if problem is not None:
                raise NotShared(f"worker {worker} {problem}; {_SHARED_HELP}")
        results.append(in_worker(fn, item, args))
    return worker, results


def version_problems(worker: str, theirs: dict[str, str], ours: dict[str, str]) -> list[str]:
    """What differs between a worker's byte_dependencies() and ours, as a sentence per worker."""
    differ = [f"{name} {theirs.get(name)} (here {version})" for name, version in ours.items()
              if theirs.get(name) != version]
    if not differ:
        return []
    return [f"worker {worker} runs {', '.join(differ)}: the output would not be byte-identical; "
            "install the same versions on every machine"]


class DaskExecutor(Executor):
    """The workers of the Dask cluster whose scheduler listens at `address`."""

    def __init__(self, address: str, max_chunk: int = MAX_CHUNK):
        super().__init__()
        self.address, self.max_chunk = address, max_chunk
        _check_reachable(address)
        try:
            self.client = distributed.Client(address, timeout=CONNECT_SECONDS, set_as_default=False)
        except (OSError, ValueError) as exc:
            raise UserError(f"--cluster {address}: cannot connect to a Dask scheduler ({exc})") from None

    def close(self) -> None:
        self.client.close()

    def map(self, fn, items, args=(), shared=(), output_dir=None, on_done=None, name_of=str) -> list:
        if not items:
            return []
        shared = list(shared)
        check_file = None
        if output_dir is not None:  # a file only this run writes: workers prove they see the folder
            check_file = Path(output_dir) / f".cluster-check-{secrets.token_hex(8)}"
            write_bytes(check_file, secrets.token_hex(16).encode())
            shared.append(SharedFile(f"the output folder {output_dir}", str(check_file), 32))
        try:
            self._check_workers(shared)
            return self._run(fn, items, args, tuple(shared), on_done, name_of)
        except distributed.CancelledError as exc:
            raise UserError(f"--cluster {self.address}: lost the Dask scheduler ({type(exc).__name__}); "
                            "re-run the command to resume (finished images are kept)") from None
        finally:
            if check_file is not None:
                check_file.unlink(missing_ok=True)

    def _check_workers(self, shared: list[SharedFile]) -> None:
        """Every worker sees the shared files and runs our library versions, or a UserError."""
        deadline = time.monotonic() + NO_WORKERS_SECONDS
        while not self.client.nthreads():
            if time.monotonic() > deadline:
                raise UserError(f"--cluster {self.address}: the scheduler has no workers; "
                                f"start some with `dask worker {self.address} --nthreads 1`")
            time.sleep(0.5)
        reports = self.client.run(worker_report, shared, on_error="return")
        ours, problems = byte_dependencies(), []
        for worker, report in sorted(reports.items()):
            if isinstance(report, BaseException):
                problems.append(f"worker {worker} cannot run srkit ({type(report).__name__}: {report}); "
                                "install the same srkit on every machine")
                continue
            missing, theirs = report
            problems += [f"worker {worker} {p}" for p in missing]
            problems += version_problems(worker, theirs, ours)
        if problems:
            more = f" ({len(problems) - 1} more problems: {'; '.join(problems[1:])})" if len(problems) > 1 else ""
            hint = f"; {_SHARED_HELP}" if any("see" in p for p in problems) else ""
            raise UserError(f"{problems[0]}{hint}{more}")

    def _run(self, fn, items, args, shared, on_done, name_of) -> list:
        threads = sum(self.client.nthreads().values())
        size = chunk_size(len(items), threads, self.max_chunk)
        starts = iter(range(0, len(items), size))
        run = secrets.token_hex(4)
        results: list = [None] * len(items)
        pending: dict[distributed.Future, int] = {}
        no_workers_since, counted = None, time.monotonic()

        def submit_more() -> None:
            while len(pending) < IN_FLIGHT_PER_THREAD * max(1, threads):
                start = next(starts, None)
                if start is None:
                    return
                future = self.client.submit(run_chunk, fn, items[start:start + size], args, shared,
                                            key=f"srdata-{fn.__name__}-{run}-{start}", pure=False)
                pending[future] = start

        submit_more()
        try:
            while pending:
                try:
                    with self.client.as_current():  # wait() looks the client up
                        done, _ = distributed.wait(list(pending), timeout=_POLL_SECONDS, return_when="FIRST_COMPLETED")
                except distributed.TimeoutError:
                    threads = sum(self.client.nthreads().values())
                    no_workers_since = None if threads else (no_workers_since or time.monotonic())
                    if no_workers_since and time.monotonic() - no_workers_since > NO_WORKERS_SECONDS:
                        raise UserError(
                            f"--cluster {self.address}: no workers for {NO_WORKERS_SECONDS} s; start workers "
                            "and re-run the command to resume (finished images are kept)") from None
                    continue
                for future in done:
                    start = pending.pop(future)
                    worker, out = self._result(future, items[start:start + size], name_of)
                    results[start:start + len(out)] = out
                    self.done_by[worker] += len(out)
                    if on_done is not None:
                        on_done(len(out))
                if time.monotonic() - counted > _POLL_SECONDS:  # workers may have joined or left
                    threads, counted = sum(self.client.nthreads().values()), time.monotonic()
                submit_more()
        finally:
            if pending:
                self.client.cancel(list(pending))
        return results

    def _result(self, future, chunk: Sequence, name_of) -> tuple[str, list]:
        try:
            return future.result()
        except NotShared as exc:
            raise UserError(str(exc)) from None
        except distributed.KilledWorker as exc:
            rest = f" and the {len(chunk) - 1} after it" if len(chunk) > 1 else ""
            raise UserError(
                f"{name_of(chunk[0])}{rest}: the workers running them died {exc.allowed_failures + 1} time(s) "
                "(out of memory? each worker needs more memory than the largest image takes, see README "
                "'Many machines')") from None


def _check_reachable(address: str) -> None:
    """Fail fast with one line when nothing listens at a TCP address (Client would wait and warn)."""
    try:
        scheme, location = parse_address(address)
        host, port = parse_host_port(location, default_port=8786)
    except ValueError:
        raise UserError(f"--cluster {address!r}: not a scheduler address; give one like tcp://HOST:8786") from None
    if scheme not in ("tcp", "tls"):
        return
    try:
        socket.create_connection((host, port), timeout=CONNECT_SECONDS).close()
    except OSError as exc:
        raise UserError(f"--cluster {address}: no Dask scheduler answers there ({exc.strerror or exc}); "
                        "start one with `dask scheduler` or check the address") from None
