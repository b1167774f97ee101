"""Speed of `srdata build --cluster` on this machine, beside local builds measured in the same run.

    .venv/bin/python bench/cluster.py [--src /work/shared/data/cartoon-dev] [--repeat 2] [--noop-items 50000]

Starts Dask on localhost as the README tells users to (`dask scheduler`, `dask worker --nthreads 1`,
WORKER_CONFIG in the workers' Dask config): one cluster with one worker process, one with two, and
one with two workers on Dask's default config, all idle between runs. Printed:

- build images/s on 1 and 2 cluster worker processes and the speed-up, beside the same for local
  builds (--workers 1 / 2) in the same run: the cluster's speed-up should approach the local one
  (a warm-up build first imports srdata in every worker, as bench/build.py starts its pool);
- the CPU time per image of each build, summed over every process taking part (this one, the
  local pool or the scheduler and workers), which other users' load disturbs much less than wall
  time: the cluster's extra CPU per image is its overhead, with the README's worker config and
  with Dask's defaults;
- the scheduler's cost per image: DaskExecutor.map of a no-op image function over --noop-items
  items on the two-worker cluster (chunks, shared-file checks and all; no pixels): wall time, the
  scheduler process's CPU time and this client's CPU time per item, then the same with one item per
  task, which is what chunking saves. Goal: under 1 ms per image, so a million images cost the
  scheduler minutes of one core, not hours.

Best of --repeat interleaved runs, since the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import add_build_args, timed_build  # noqa: E402
from srdata.build import scan_sources  # noqa: E402
from srdata.build_options import BuildOptions  # noqa: E402
from srdata.cluster import DaskExecutor  # noqa: E402
from srdata.executor import LocalExecutor, SharedFile  # noqa: E402

DASK = Path(sys.executable).parent / "dask"
# The worker config README's "Many machines" section gives (~/.config/dask/srkit.yaml).
WORKER_CONFIG = """\
distributed:
  nanny:
    pre-spawn-environ:
      MALLOC_TRIM_THRESHOLD_: null
  worker:
    profile:
      enabled: false
"""


def noop(item: int) -> None:
    """The image function with the image work taken out."""
    return None


def tree_cpu(procs: list[psutil.Process]) -> float:
    """User + system CPU seconds of these processes and all their descendants."""
    total = 0.0
    for proc in procs:
        try:
            members = [proc, *proc.children(recursive=True)]
        except psutil.Error:
            continue
        for member in members:
            try:
                total += sum(member.cpu_times()[:2])
            except psutil.Error:
                pass
    return total


class LocalCluster:
    """`dask scheduler` + `workers` × `dask worker --nthreads 1`, stopped by their process ids."""

    def __init__(self, folder: Path, workers: int, config: str | None = WORKER_CONFIG):
        folder.mkdir(parents=True)
        info = folder / "scheduler.json"
        self.env = dict(os.environ)
        if config is not None:
            (folder / "config").mkdir()
            (folder / "config" / "srkit.yaml").write_text(config)
            self.env["DASK_CONFIG"] = str(folder / "config")
        self.procs = [self._start([str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                   "--scheduler-file", str(info)], folder)]
        while not info.exists() or not info.read_text().strip():
            time.sleep(0.1)
        self.address = json.loads(info.read_text())["address"]
        for _ in range(workers):
            self.procs.append(self._start([str(DASK), "worker", self.address, "--nthreads", "1", "--no-dashboard",
                                           "--host", "127.0.0.1"], folder))
        self.executor = DaskExecutor(self.address)
        self.executor.client.wait_for_workers(workers, timeout=120)
        self.processes = [psutil.Process(p.pid) for p in self.procs]
        self.scheduler = self.processes[0]

    def _start(self, command: list[str], folder: Path) -> subprocess.Popen:
        return subprocess.Popen(command, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True, env=self.env)

    def stop(self) -> None:
        self.executor.close()
        for proc in reversed(self.procs):
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()


def timed_cluster_build(opts: BuildOptions, executor, clusters: list[LocalCluster]) -> tuple[float, float]:
    """(wall, CPU) seconds of a build from scratch; CPU of this process and of the processes doing
    the work: the local pool (this process's other descendants) or the executor's cluster."""
    me = psutil.Process()
    others = [p for c in clusters for p in c.processes]
    mine = [c for c in clusters if c.executor is executor]

    def cpu() -> float:
        if mine:
            return sum(me.cpu_times()[:2]) + tree_cpu(mine[0].processes)
        return tree_cpu([me]) - tree_cpu(others)

    return timed_build(opts, executor, cpu)


def scheduler_cost(cluster: LocalCluster, items: int, max_chunk: int, tmp: Path, witness: SharedFile) -> tuple[float, float, float]:
    """(wall, scheduler CPU, client CPU) ms per item of a no-op map on the cluster."""
    executor = cluster.executor if max_chunk == cluster.executor.max_chunk else DaskExecutor(cluster.address, max_chunk)
    out = tmp / "noop"
    out.mkdir(exist_ok=True)
    sched_cpu = sum(cluster.scheduler.cpu_times()[:2])
    wall, cpu = time.perf_counter(), time.process_time()
    executor.map(noop, list(range(items)), (), [witness], output_dir=out)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    sched_cpu = sum(cluster.scheduler.cpu_times()[:2]) - sched_cpu
    if executor is not cluster.executor:
        executor.close()
    return wall * 1000 / items, sched_cpu * 1000 / items, cpu * 1000 / items


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_build_args(parser)
    parser.add_argument("--noop-items", type=int, default=50_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="srdata-bench-cluster-") as tmp_name:
        tmp = Path(tmp_name)
        one, two = LocalCluster(tmp / "dask1", 1), LocalCluster(tmp / "dask2", 2)
        plain = LocalCluster(tmp / "dask2-defaults", 2, config=None)
        clusters = [one, two, plain]
        try:
            def opts(out: str) -> BuildOptions:
                return BuildOptions(src=args.src, out=tmp / out, scale=args.scale)

            runs = {"local 1": LocalExecutor(1), "local 2": LocalExecutor(2),
                    "cluster 1": one.executor, "cluster 2": two.executor, "cluster 2, Dask defaults": plain.executor}
            for name in list(runs)[1:]:  # start pools, import srdata in workers
                timed_cluster_build(opts("warmup"), runs[name], clusters)
            found, _ = scan_sources(args.src, tmp / "none")
            sources = len(found)
            times: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
            for _ in range(args.repeat):  # interleaved, so load from other users hits all alike
                for name, executor in runs.items():
                    times[name].append(timed_cluster_build(opts("ds"), executor, clusters))
            best = {name: min(wall for wall, _ in t) for name, t in times.items()}
            cpu = {name: min(c for _, c in t) for name, t in times.items()}

            witness = SharedFile(f"--src {args.src}", str(args.src.absolute() / found[0][0]), found[0][1])
            chunked = min((scheduler_cost(two, args.noop_items, two.executor.max_chunk, tmp, witness)
                           for _ in range(args.repeat)), key=lambda r: r[0])
            single_items = max(1, args.noop_items // 25)
            single = scheduler_cost(two, single_items, 1, tmp, witness)
        finally:
            for cluster in clusters:
                cluster.stop()

    print(f"sources: {sources} under {args.src}; scale {args.scale}, cores {os.cpu_count()}, "
          f"best of {args.repeat}")
    for name in runs:
        print(f"srdata build, {name:24s}: {sources / best[name]:7.1f} images/s, "
              f"{cpu[name] * 1000 / sources:6.1f} ms CPU per image (all processes)")
    local_ratio = best["local 1"] / best["local 2"]
    cluster_ratio = best["cluster 1"] / best["cluster 2"]
    print(f"2-worker speed-up, local  : {local_ratio:.2f}")
    print(f"2-worker speed-up, cluster: {cluster_ratio:.2f}   ({cluster_ratio / local_ratio:.0%} of the local one; "
          "both need 2 idle cores)")
    print(f"cluster 2 workers vs local 2 workers: {best['local 2'] / best['cluster 2']:.2f} wall, "
          f"{cpu['local 2'] / cpu['cluster 2']:.2f} CPU time (the cluster's overhead: "
          f"{(cpu['cluster 2'] - cpu['local 2']) * 1000 / sources:+.1f} ms CPU per image; on Dask's defaults "
          f"{(cpu['cluster 2, Dask defaults'] - cpu['local 2']) * 1000 / sources:+.1f})")
    print(f"scheduler cost, no-op image function, {args.noop_items} items in chunks (2 workers):")
    print(f"  wall {chunked[0]:.3f} ms/item, scheduler CPU {chunked[1]:.3f} ms/item, client CPU {chunked[2]:.3f} ms/item"
          "   (goal: < 1 ms per image)")
    print(f"  one item per task ({single_items} items): wall {single[0]:.3f} ms/item, scheduler CPU "
          f"{single[1]:.3f} ms/item, client CPU {single[2]:.3f} ms/item")
    print(f"  a million images: ~{chunked[1] * 1e6 / 60000:.1f} min of scheduler CPU in chunks, "
          f"~{single[1] * 1e6 / 60000:.0f} min one per task")
    return 0


if __name__ == "__main__":
    sys.exit(main())
