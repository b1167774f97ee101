"""`srdata build/inspect --cluster`: a real Dask cluster on localhost (a `dask scheduler` and two
`dask worker` processes, as the README starts them) against local builds of the same sources.

The reference is always a local build: the cluster's dataset must be the same bytes, hidden
files included (so leftover staging or temp files fail the comparison).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import srdata.cluster
from srdata.build import build_dataset
from srdata.cli import main
from srdata.cluster import DaskExecutor, chunk_size, run_chunk, version_problems
from srdata.commands.executors import CLUSTER_ENV
from srdata.errors import UserError
from srdata.executor import NotShared, SharedFile
from srdata.imageio import read_output_key
from helpers import (RacingExecutor, blob_image, make_raw, noise_image, options, start_scheduler, tree,
                     write_image)

CLI = [sys.executable, "-m", "srdata.cli"]
PNG_END = b"IEND\xaeB`\x82"


def raw_folder(root: Path) -> Path:
    """Sources with every kind of outcome: kept, exact duplicate, rejected, in a subfolder."""
    src = make_raw(root, 14)
    write_image(src / "sub" / "nested.jpg", blob_image(40))
    write_image(src / "copy.png", blob_image(3))  # same pixels as img003: dropped as a duplicate
    (src / "broken.png").write_bytes(b"not an image")
    write_image(src / "tiny.png", blob_image(41, 40, 40))  # too small for scale 2
    return src


# Random noise and JPEG quality are drawn per image from its content: any scheduling dependence
# would show in the bytes.
BUILD_ARGS = ["--scale", "2", "--blur", "1", "--noise", "1:4", "--jpeg", "60:90", "--val", "2", "--test", "2"]
BUILD_OPTIONS = dict(blur=1.0, noise=(1.0, 4.0), jpeg=(60, 90), val=2, test=2)


def noisy_folder(root: Path, n: int) -> Path:
    """Sources slow enough (~50 ms each) that a build can be interrupted in the middle."""
    for i in range(n):
        write_image(root / f"n{i:03d}.png", noise_image(i, 480, 360))
    return root


def worker_runs(stdout: str) -> dict[str, int]:
    """The summary's 'images run by WORKER | N' rows."""
    return {w: int(n) for w, n in re.findall(r"images run by (tcp://[\d.:]+)\D+(\d+)", stdout)}


def test_cluster_build_and_inspect_equal_local_ones(tmp_path, dask_cluster, capsys, monkeypatch):
    raw_folder(tmp_path / "raw")
    monkeypatch.chdir(tmp_path)  # relative paths (dataset.json records --src as given), while the
    local, out = Path("local"), Path("cluster")  # workers run in another folder
    build_dataset(options(Path("raw"), local, workers=2, **BUILD_OPTIONS), progress=False)
    monkeypatch.setenv(CLUSTER_ENV, dask_cluster.address)  # the environment variable form

    assert main(["build", "--src", "raw", "--out", "cluster", *BUILD_ARGS]) == 0
    runs = worker_runs(capsys.readouterr().out)
    assert tree(out) == tree(local)
    with dask_cluster.client() as client:
        assert set(runs) == set(client.nthreads())  # both workers named, with their counts
    assert sum(runs.values()) == 18  # every source read once

    assert main(["build", "--src", "raw", "--out", "cluster", *BUILD_ARGS]) == 0  # incremental
    printed = capsys.readouterr().out
    assert re.search(r"sources decoded\D+0 ", printed) and not worker_runs(printed)
    assert tree(out) == tree(local)

    assert main(["inspect", "cluster", "--json", str(tmp_path / "cluster.json")]) == 0
    assert "pairs run by tcp://" in capsys.readouterr().out
    monkeypatch.delenv(CLUSTER_ENV)
    assert main(["inspect", "cluster", "--json", str(tmp_path / "local.json"), "--workers", "2"]) == 0
    reports = [json.loads((tmp_path / f"{name}.json").read_text()) for name in ("cluster", "local")]
    for report in reports:
        report.pop("seconds")
    assert reports[0] == reports[1] and reports[0]["splits"][0]["pairs"] == 11


def test_worker_killed_mid_build_has_its_images_redone(tmp_path, dask_cluster):
    """kill -9 of a worker process while it runs a chunk: Dask runs the chunk elsewhere (its nanny
    starts a new worker too); the dataset is the local build's bytes, without partial or extra files."""
    src = noisy_folder(tmp_path / "raw", 24)
    local = tmp_path / "local"
    build_dataset(options(src, local, workers=2), progress=False)
    out = tmp_path / "ds"
    build = subprocess.Popen([*CLI, "build", "--src", str(src), "--out", str(out), "--scale", "2",
                              "--val", "0.2", "--test", "0.2", "--cluster", dask_cluster.address],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    with dask_cluster.client() as client:
        pids = client.run(os.getpid)
        victim = None
        while victim is None and build.poll() is None:
            busy = [w for w, keys in client.processing().items() if any(str(k).startswith("srdata-") for k in keys)]
            if busy and list((out / ".staging").glob("*.png")):  # work is under way
                victim = busy[0]
                os.kill(pids[victim], signal.SIGKILL)
            time.sleep(0.01)
        stdout, _ = build.communicate(timeout=300)
        client.wait_for_workers(2, timeout=120)  # the nanny restarts it, for the next tests
    assert victim is not None, "the build ended before a worker could be killed"
    assert build.returncode == 0
    assert tree(out) == tree(local)
    assert sum(worker_runs(stdout).values()) >= 24


def test_client_killed_mid_build_is_resumed_by_running_the_command_again(tmp_path, dask_cluster):
    src = noisy_folder(tmp_path / "raw", 24)
    local = tmp_path / "local"
    build_dataset(options(src, local, workers=2), progress=False)
    out = tmp_path / "ds"
    command = [*CLI, "build", "--src", str(src), "--out", str(out), "--scale", "2", "--val", "0.2",
               "--test", "0.2", "--cluster", dask_cluster.address]
    build = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    while build.poll() is None and len(list((out / ".staging").glob("*.png"))) < 4:
        time.sleep(0.01)
    os.killpg(build.pid, signal.SIGKILL)
    assert build.wait() == -signal.SIGKILL, "the build ended before it could be killed"
    again = subprocess.run(command, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert tree(out) == tree(local)


def test_results_come_back_in_item_order_with_progress_and_per_worker_counts(dask_cluster):
    """Chunks finish in any order on two workers; map returns item order, on_done counts every
    item once, done_by splits them between the workers."""
    items = list(range(-300, 0))
    progress = []
    with DaskExecutor(dask_cluster.address, max_chunk=3) as executor:
        assert executor.map(abs, items, on_done=progress.append) == [abs(i) for i in items]
        assert progress == [3] * 100  # one call per chunk
        assert sum(executor.done_by.values()) == 300 and len(executor.done_by) == 2


def test_a_chunk_stops_at_its_next_item_once_a_shared_file_is_gone(tmp_path, dask_cluster):
    """What ends a chunk a killed client left running, once the re-run has removed staging (and a
    worker that lost its mount): the first item deletes the shared file, the second is refused."""
    check, other = tmp_path / "check", tmp_path / "other"
    check.write_bytes(b"12345")
    other.write_bytes(b"")
    with dask_cluster.client() as client:
        future = client.submit(run_chunk, os.remove, [str(check), str(other)], (),
                               [SharedFile("the output folder", str(check), 5)], pure=False)
        with pytest.raises(NotShared, match=r"worker tcp://[\d.:]+ cannot see the output folder: .*check"):
            future.result(timeout=60)
    assert other.exists()


@pytest.mark.timeout(300)
def test_a_worker_that_cannot_see_the_source_is_named_with_the_path(tmp_path, capsys, monkeypatch):
    """Workers whose view of the --src path differs from the client's, as on a machine where the
    share is not mounted:

    - one started in another folder, with --src given as /proc/self/cwd/raw: that path names
      each process's own working folder, so this worker has no `raw` there (works everywhere);
    - where unprivileged user+mount namespaces are allowed, one started by `unshare -rm` with an
      empty tmpfs mounted over `raw`, exactly an unmounted share's empty mount point.

    The client and a third worker run in the folder holding `raw` and see it. The command must
    fail in seconds, with one line naming each blind worker and the path, and write nothing.
    """
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    elsewhere.mkdir()
    make_raw(home / "raw", 4)
    cluster = start_scheduler(tmp_path)
    try:
        cluster.add_worker(home)
        cluster.add_worker(elsewhere)
        workers = 2
        hide = ("unshare", "-rm", "sh", "-c", 'mount -t tmpfs tmpfs raw && exec "$@"', "hide")
        if subprocess.run([*hide, "true"], cwd=home, capture_output=True).returncode == 0:
            cluster.add_worker(home, hide)
            workers = 3
        cluster.wait_for_workers(workers)
        with cluster.client() as client:
            sees = client.run(os.path.isfile, "/proc/self/cwd/raw/img000.png")
        blind = [w for w, seen in sees.items() if not seen]
        assert len(blind) == workers - 1

        monkeypatch.chdir(home)
        started = time.monotonic()
        code = main(["build", "--src", "/proc/self/cwd/raw", "--out", str(tmp_path / "ds"), "--scale", "2",
                     "--cluster", cluster.address])
        seconds = time.monotonic() - started
    finally:
        cluster.stop()
    err = capsys.readouterr().err
    assert code == 2 and seconds < 60
    err = err.splitlines()[-1]  # after the progress bar
    assert err.startswith("srdata: error: worker tcp://")
    for worker in blind:
        assert f"worker {worker} cannot see --src /proc/self/cwd/raw: /proc/self/cwd/raw/img000.png" in err
    assert "same paths" in err
    assert not (tmp_path / "ds").exists()


def test_no_workers_and_a_chunk_that_kills_its_workers_are_one_line_errors(tmp_path, capsys, monkeypatch):
    src = make_raw(tmp_path / "raw", 2)
    cluster = start_scheduler(tmp_path, allowed_failures="0")  # the first death of a task's worker fails it
    try:
        monkeypatch.setattr(srdata.cluster, "NO_WORKERS_SECONDS", 1)
        assert main(["build", "--src", str(src), "--out", str(tmp_path / "ds"), "--scale", "2",
                     "--cluster", cluster.address]) == 2
        assert capsys.readouterr().err.splitlines()[-1] == (
            f"srdata: error: --cluster {cluster.address}: the scheduler has no workers; "
            f"start some with `dask worker {cluster.address} --nthreads 1`")
        assert not (tmp_path / "ds").exists()

        cluster.add_worker(tmp_path)
        cluster.wait_for_workers(1)
        with DaskExecutor(cluster.address) as executor:
            with pytest.raises(UserError, match=r"^item-3: the workers running them died 1 time\(s\) \(out of memory"):
                executor.map(os._exit, [3], name_of=lambda item: f"item-{item}")  # the worker process exits
    finally:
        cluster.stop()


def test_cluster_without_distributed_installed_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    """As without the extra: Python refuses `import distributed` (None in sys.modules), and
    srdata.cluster is imported afresh."""
    src = make_raw(tmp_path / "raw", 2)
    build_dataset(options(src, tmp_path / "local"), progress=False)
    monkeypatch.setitem(sys.modules, "distributed", None)
    monkeypatch.delitem(sys.modules, "srdata.cluster")
    for args in (["build", "--src", str(src), "--out", str(tmp_path / "ds")], ["inspect", str(tmp_path / "local")]):
        assert main(args + ["--cluster", "tcp://127.0.0.1:8786"]) == 2
        assert capsys.readouterr().err == ("srdata: error: --cluster needs Dask's distributed package, which is not "
                                           "installed: pip install 'srkit[cluster]'\n")
    assert not (tmp_path / "ds").exists()


def test_bad_cluster_addresses_and_workers_with_a_cluster_are_one_line_errors(tmp_path, capsys, monkeypatch):
    src = make_raw(tmp_path / "raw", 2)
    base = ["build", "--src", str(src), "--out", str(tmp_path / "ds")]
    port = closed_port()
    for extra, needle in (
        (["--cluster", f"tcp://127.0.0.1:{port}"], "no Dask scheduler answers there"),
        (["--cluster", "tcp://127.0.0.1:notaport"], "not a scheduler address"),
        (["--cluster", f"tcp://127.0.0.1:{port}", "--workers", "2"], "both given"),
    ):
        assert main(base + extra) == 2
        err = capsys.readouterr().err
        assert err.startswith("srdata: error: ") and err.count("\n") == 1 and needle in err
    monkeypatch.setenv(CLUSTER_ENV, "")  # empty: no cluster
    assert main(base + ["--workers", "1", "--scale", "2"]) == 0
    assert not (tmp_path / "ds" / ".staging").exists()


def closed_port() -> int:
    """A localhost port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_attempts_of_every_task_racing_leave_each_file_whole_and_once(tmp_path):
    """The staging design under the worst case a cluster can produce: every task run twice at
    once. A reader polling the staging folder never sees a partial file, and the dataset is the
    normal build's bytes with no temp file left (each file is written under a unique temp name and
    renamed onto its output key's name)."""
    src = noisy_folder(tmp_path / "raw", 6)
    local = tmp_path / "local"
    build_dataset(options(src, local), progress=False)
    out = tmp_path / "ds"
    stop, checked, partial = threading.Event(), set(), []

    def watch() -> None:
        while not stop.is_set():
            for path in list((out / ".staging").glob("*.png")):
                try:
                    data = path.read_bytes()
                except FileNotFoundError:
                    continue  # placed meanwhile
                if not data.endswith(PNG_END) or read_output_key(path) not in (path.stem, None):
                    partial.append(path.name)
                checked.add(path.name)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with RacingExecutor() as racing:
            build_dataset(options(src, out), progress=False, executor=racing)
    finally:
        stop.set()
        watcher.join()
    assert not partial
    assert len(checked) >= 4  # the reader really saw staged files
    assert tree(out) == tree(local)


def test_chunks_are_bounded_and_spread_over_every_thread():
    assert chunk_size(1, 2) == 1
    assert chunk_size(164, 2) == 3  # 55 chunks: the last ones still spread over both workers
    assert chunk_size(1_000_000, 400) == 64  # 15 625 tasks for a million images, not a million
    assert chunk_size(100, 0) == 4  # no worker yet counts as one thread


def test_shared_file_and_version_checks_name_what_differs(tmp_path):
    path = tmp_path / "f.png"
    path.write_bytes(b"1234")
    assert SharedFile("--src x", str(path), 4).problem() is None
    assert "cannot see --src x" in SharedFile("--src x", str(tmp_path / "nope"), 4).problem()
    assert "another file" in SharedFile("--src x", str(path), 5).problem()
    ours = {"srkit": "0.1.0", "opencv": "4.10.0"}
    assert version_problems("tcp://w:1", dict(ours), ours) == []
    [message] = version_problems("tcp://w:1", {"srkit": "0.1.0", "opencv": "4.9.0"}, ours)
    assert message.startswith("worker tcp://w:1 runs opencv 4.9.0 (here 4.10.0)") and "byte-identical" in message


def test_help_names_the_extra_and_the_environment_variable(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    for command in ("build", "inspect"):
        assert main([command, "--help"]) == 0
        text = capsys.readouterr().out
        assert "pip install 'srkit[cluster]'" in text and CLUSTER_ENV in text
