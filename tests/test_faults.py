"""Faults a user's machine throws at srkit, tried for real (issue 16): file modes under a umask, two runs
on one folder, full disks and file-size limits, SIGTERM and Ctrl-C, hostile source trees and names,
damaged run folders, random recipes and options. The rule everywhere: never a traceback, never a lost
or unreadable file; a one-line error naming the file, or a record in rejected.jsonl.

Most tests start the tools in fresh processes (tests/helpers.py: run_tool, start_tool), as a user
would; a few drive the CLI in-process (`main([...])`) where no process boundary is involved.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from helpers import COMPACT_ARCH, holding_lock, make_model, make_raw, one_error_line, run_tool, tiny_recipe, tree
from sr_train.cli import main as sr_train_main
from sr_train.weights.load import model_state
from sr_train.weights.srkit import save_weights
from srdata.atomic import is_temp_name
from srdata.cli import main as srdata_main
from srdata.errors import UserError
from srdata.folderlock import LOCK_NAME, hold_folder

BUILD = ("--scale", "4", "--val", "0.25", "--test", "0", "--workers", "1")


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    """12 distinct 160x136 sources: at scale 4 every one is kept (LR 40x34)."""
    return make_raw(tmp_path_factory.mktemp("raw"), 12, size=(160, 136))


@pytest.fixture(scope="module")
def reference_ds(raw, tmp_path_factory) -> dict[str, bytes]:
    """The files of an undisturbed `srdata build` of `raw` with BUILD's options (every test builds into
    a folder named "ds", so dataset.json's settings match)."""
    out = tmp_path_factory.mktemp("ref") / "ds"
    assert srdata_main(["build", "--src", str(raw), "--out", str(out), *BUILD]) == 0
    return tree(out)


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory) -> Path:
    """A tiny x4 Compact generator as srkit weights."""
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_weights(path, model_state(make_model(COMPACT_ARCH)), COMPACT_ARCH)
    return path


def _recipe_file(path: Path, pairs_dir: Path, run_dir: Path, **overrides) -> Path:
    path.write_text(yaml.safe_dump(tiny_recipe(pairs_dir, run_dir, **overrides)))
    return path


def _complete_pngs(folder: Path) -> list[Path]:
    """Every file under `folder` with a final (non-temp) name; each PNG among them must decode whole."""
    files = [p for p in folder.rglob("*") if p.is_file() and not is_temp_name(p.name) and p.name != LOCK_NAME]
    for path in files:
        if path.suffix == ".png":
            assert cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED) is not None, path
    return files


def _started_training(run_dir: Path) -> bool:
    try:
        return len((run_dir / "metrics.jsonl").read_text().splitlines()) >= 3
    except FileNotFoundError:
        return False


def _assert_same_run(run: Path, straight: Path, iters: int = 2000) -> None:
    """Every file a run writes is byte-identical to the undisturbed run's, except its logs (timings)."""
    logs = ("metrics.jsonl", "curves.png")
    files = {p.relative_to(straight).as_posix() for p in straight.rglob("*") if p.is_file() and p.name not in logs
             and "visualdl" not in p.parts}
    assert f"ckpt/iter_{iters}.state" in files and "last.safetensors" in files
    for name in sorted(files):
        assert (run / name).read_bytes() == (straight / name).read_bytes(), name


# ============================================================================ one run per folder

def test_a_second_run_on_a_busy_folder_exits_2_naming_the_holder_and_readers_never_wait(
        tmp_path, raw, pairs_dir, weights_file, capsys):
    ds = tmp_path / "ds"
    assert srdata_main(["build", "--src", str(raw), "--out", str(ds), *BUILD]) == 0
    before = tree(ds)
    recipe = _recipe_file(tmp_path / "r.yaml", pairs_dir, ds, train__iters=2)  # run_dir = the held folder
    capsys.readouterr()
    with holding_lock(ds, "srdata build") as holder:
        runs = {
            "srdata": ["build", "--src", str(raw), "--out", str(ds), *BUILD, "--blur", "1"],
            "sr-train": ["predict", "--weights", str(weights_file), str(raw / "img000.png"), "--out", str(ds),
                         "--engine", "paddle", "--no-progress"],
        }
        for prog, argv in runs.items():
            main = srdata_main if prog == "srdata" else sr_train_main
            assert main(argv) == 2
            line = one_error_line(capsys.readouterr().err, prog)
            assert f"--out {ds} is in use by srdata build (pid {holder.pid}," in line
        assert sr_train_main(["fit", str(recipe), "--no-progress"]) == 2
        assert f"run_dir {ds} is in use by srdata build (pid {holder.pid}," in one_error_line(capsys.readouterr().err,
                                                                                              "sr-train")
        # readers take no lock
        assert srdata_main(["inspect", str(ds), "--workers", "1"]) == 0
        assert sr_train_main(["eval", str(ds), "--weights", str(weights_file), "--split", "val",
                              "--no-progress"]) == 0
        assert tree(ds) == {**before, LOCK_NAME: (ds / LOCK_NAME).read_bytes()}  # refused runs wrote nothing
    assert tree(ds) == before  # the holder removed its lock file
    assert srdata_main(["build", "--src", str(raw), "--out", str(ds), *BUILD]) == 0


def test_kill_9_never_leaves_a_stale_lock(tmp_path, raw):
    out = tmp_path / "ds"
    with holding_lock(out) as holder:
        assert run_tool("srdata", "build", "--src", raw, "--out", out, *BUILD).returncode == 2
        holder.kill()  # SIGKILL: the lock file stays, the kernel drops the lock
        holder.wait()
        assert (out / LOCK_NAME).exists()
        done = run_tool("srdata", "build", "--src", raw, "--out", out, *BUILD)
        assert done.returncode == 0, done.stderr
    assert not (out / LOCK_NAME).exists()


def test_lock_of_a_new_folder_is_removed_with_the_folder_when_the_run_is_refused(tmp_path, capsys):
    out = tmp_path / "new" / "deeper"
    assert srdata_main(["build", "--src", str(tmp_path / "nothing"), "--out", str(out)]) == 2
    assert "not a folder" in one_error_line(capsys.readouterr().err, "srdata")
    assert not (tmp_path / "new").exists()
    empty = tmp_path / "empty_src"
    empty.mkdir()
    assert srdata_main(["build", "--src", str(empty), "--out", str(out)]) == 2  # refused after locking
    assert "no images found" in one_error_line(capsys.readouterr().err, "srdata")
    assert not (tmp_path / "new").exists()


def test_a_lock_file_removed_by_its_holder_is_made_anew_and_locks_again(tmp_path):
    folder = tmp_path / "f"
    with hold_folder(folder, "f", "first"):
        assert (folder / LOCK_NAME).exists()
    assert not folder.exists()  # it created the folder, and removed it empty
    with hold_folder(folder, "f", "second"):
        with pytest.raises(UserError) as refused:
            with hold_folder(folder, "f", "third"):
                pass
        assert f"f is in use by second (pid {os.getpid()}," in str(refused.value)


@pytest.mark.slow
def test_two_process_fit_on_a_busy_run_dir_is_refused_without_hanging(pairs_dir, tmp_path):
    """`paddle.distributed.launch` with 2 processes: only rank 0 takes the lock; when it is held, rank 0
    exits 2 and the launcher ends rank 1 (no process waits forever)."""
    import subprocess

    run_dir = tmp_path / "run"
    recipe = _recipe_file(tmp_path / "r.yaml", pairs_dir, run_dir, train__iters=2)
    with holding_lock(run_dir, "sr-train fit") as holder:
        cmd = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir",
               str(tmp_path / "log"), str(Path(sys.executable).parent / "sr-train"), "fit", str(recipe),
               "--no-progress"]
        done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert done.returncode != 0
        logs = "".join(p.read_text(errors="replace") for p in (tmp_path / "log").glob("workerlog.*"))
        assert f"is in use by sr-train fit (pid {holder.pid}," in logs + done.stdout + done.stderr
        assert "Traceback" not in (tmp_path / "log" / "workerlog.0").read_text(errors="replace")


def test_multi_process_fit_on_a_busy_run_dir_is_refused_once_without_hanging(pairs_dir, tmp_path):
    """`sr-train fit` with 2 data-parallel processes (train.processes): only rank 0 takes the lock; when
    it is held, rank 0's refusal stops the other process and is reported once, exit 2."""
    run_dir = tmp_path / "run"
    recipe = _recipe_file(tmp_path / "r.yaml", pairs_dir, run_dir, train__iters=2, train__processes=2)
    with holding_lock(run_dir, "sr-train fit") as holder:
        done = run_tool("sr-train", "fit", recipe, "--no-progress", timeout=180)
    assert done.returncode == 2, done.stderr
    assert f"run_dir {run_dir} is in use by sr-train fit (pid {holder.pid}," in one_error_line(done.stderr,
                                                                                               "sr-train")


