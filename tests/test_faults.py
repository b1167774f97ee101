"""Faults a user's machine throws at srkit, tried for real (issue 16): file modes under a umask, two runs
on one folder, full disks and file-size limits, SIGTERM and Ctrl-C, hostile source trees and names,
damaged run folders, random recipes and options. The rule everywhere: never a traceback, never a lost
or unreadable file; a one-line error naming the file, or a record in rejected.jsonl.

Most tests start the tools in fresh processes (tests/helpers.py: run_tool, start_tool), as a user
would; a few drive the CLI in-process (`main([...])`) where no process boundary is involved.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import io
import json
import os
import shutil
import signal
import stat
import sys
import typing
from pathlib import Path

import cv2
import numpy as np
import pytest
import typer
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from helpers import (COMPACT_ARCH, alive, blob_image, children_of, file_size_limit, holding_lock, make_model,
                     make_raw, one_error_line, options, permissions_enforced, run_python, run_tool, start_tool, tiny_recipe,
                     tree, wait_for, write_image)
from sr_train.checkpoint import list_states
from sr_train.cli import app as sr_train_app
from sr_train.cli import main as sr_train_main
from sr_train.recipe import Recipe
from sr_train.weights.load import model_state
from sr_train.weights.srkit import save_weights
from srdata import atomic
from srdata.atomic import AppendFile, is_temp_name, write_bytes
from srdata.build import build_dataset
from srdata.cli import app as srdata_app
from srdata.cli import main as srdata_main
from srdata.errors import UserError, WriteError
from srdata.folderlock import LOCK_NAME, hold_folder
from srdata.imageio import read_output_key
from srdata.stopping import Stopped, deferred_stop

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


# ============================================================================ file modes

def test_every_file_the_tools_write_gets_the_umask_mode(tmp_path, raw, pairs_dir, weights_file):
    """One process with umask 027 runs build, inspect, fit, eval, predict, export and convert: every file
    they write is 0640 and every folder 0750 (mkstemp's 0600 would make a dataset built by one user
    unreadable by another user's training job)."""
    work = tmp_path / "work"
    work.mkdir()
    recipe = _recipe_file(tmp_path / "r.yaml", pairs_dir, work / "run", train__iters=2, val__interval=2,
                          checkpoint__interval=2)
    script = f"""
import os, sys
os.umask(0o027)
from srdata.cli import main as srdata
from sr_train.cli import main as sr_train
w = {str(work)!r}
codes = [
    srdata(["build", "--src", {str(raw)!r}, "--out", w + "/ds", *{list(BUILD)!r}]),
    srdata(["inspect", w + "/ds", "--json", w + "/inspect.json", "--sheet", w + "/sheet.png", "--workers", "1"]),
    sr_train(["fit", {str(recipe)!r}, "--no-progress"]),
    sr_train(["eval", w + "/ds", "--weights", {str(weights_file)!r}, "--split", "val", "--json", w + "/eval.json",
              "--save-images", w + "/sr", "--no-progress"]),
    sr_train(["predict", "--weights", {str(weights_file)!r}, w + "/ds/val_X4", "--out", w + "/up", "--engine",
              "paddle", "--no-progress"]),
    sr_train(["export", "--weights", {str(weights_file)!r}, "--format", "paddle", "--out", w + "/export"]),
    sr_train(["convert", {str(weights_file)!r}, w + "/converted.safetensors"]),
]
sys.exit(max(codes))
"""
    done = run_python(script, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    files = [p for p in work.rglob("*") if p.is_file()]
    folders = [p for p in work.rglob("*") if p.is_dir()]
    assert len(files) > 30 and any(p.suffix == ".state" for p in files)
    wrong = {str(p.relative_to(work)): oct(stat.S_IMODE(p.stat().st_mode)) for p in files
             if stat.S_IMODE(p.stat().st_mode) != 0o640}
    assert not wrong
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o750 for p in folders)


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


def test_srdata_frames_on_a_busy_out_exits_2_naming_the_holder(tmp_path, capsys):
    video = Path(__file__).resolve().parents[1] / "data" / "demo" / "episode.mp4"
    out = tmp_path / "frames"
    with holding_lock(out, "srdata frames") as holder:
        assert srdata_main(["frames", str(video), "--out", str(out)]) == 2
    assert f"--out {out} is in use by srdata frames (pid {holder.pid}," in one_error_line(capsys.readouterr().err,
                                                                                         "srdata")
    assert not out.exists()  # the holder made it and removed it empty; the refused run wrote nothing


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


# ============================================================================ full disks, file-size limits

def test_build_past_a_file_size_limit_fails_in_one_line_and_a_rerun_completes_identically(
        tmp_path, raw, reference_ds):
    out = tmp_path / "ds"
    limit = 9000  # below most HR PNGs, above the LRs and the metadata files
    done = run_tool("srdata", "build", "--src", raw, "--out", out, *BUILD, preexec_fn=file_size_limit(limit))
    assert done.returncode == 1, done.stderr
    line = one_error_line(done.stderr, "srdata")
    assert "File too large (EFBIG)" in line and ".png" in line and "run the same command again" in line
    for path in _complete_pngs(out):
        assert path.stat().st_size <= limit
        if path.suffix == ".png":
            assert read_output_key(path) is not None  # a whole file the build made, checkable by its key
    done = run_tool("srdata", "build", "--src", raw, "--out", out, *BUILD)
    assert done.returncode == 0, done.stderr
    assert tree(out) == reference_ds


def test_fit_checkpoint_past_a_file_size_limit_fails_in_one_line_and_a_rerun_matches_an_undisturbed_run(
        pairs_dir, tmp_path):
    """A file-size limit below a training state's size: the state write fails (EFBIG) in one line naming
    it and saying how to continue, no state is left under its name, and the run continued once the limit
    is gone writes the bytes of an undisturbed run (weights files carry the recipe, so both runs use the
    same run_dir: the undisturbed one is moved aside)."""
    run, straight = tmp_path / "run", tmp_path / "straight"
    recipe = _recipe_file(tmp_path / "r.yaml", pairs_dir, run, train__iters=40, model__nf=32, model__nc=2,
                          train__scheduler={"name": "constant"}, val__interval=20, checkpoint__interval=20)
    assert sr_train_main(["fit", str(recipe), "--no-progress"]) == 0
    run.rename(straight)
    state_size = (straight / "ckpt" / "iter_40.state").stat().st_size
    others = max(p.stat().st_size for p in straight.rglob("*") if p.is_file() and p.suffix != ".state")
    assert others < state_size - 1000
    done = run_tool("sr-train", "fit", recipe, "--no-progress", preexec_fn=file_size_limit(state_size - 1000))
    assert done.returncode == 1, done.stderr
    line = one_error_line(done.stderr, "sr-train")
    assert f"cannot write {run / 'ckpt' / 'iter_20.state'}: File too large (EFBIG)" in line
    assert line.endswith(f"continue with: sr-train fit {recipe} --resume auto")
    assert list_states(run) == [] and not [p for p in run.rglob("*") if is_temp_name(p.name)]
    assert sr_train_main(["fit", str(recipe), "--resume", "auto", "--no-progress"]) == 0
    _assert_same_run(run, straight, 40)


def test_predict_past_a_file_size_limit_fails_in_one_line_and_a_rerun_completes_identically(tmp_path,
                                                                                             weights_file):
    rng = np.random.default_rng(3)
    inputs = tmp_path / "in"
    write_image(inputs / "a_small.png", rng.integers(0, 256, (12, 12, 3), dtype=np.uint8))
    write_image(inputs / "b_large.png", rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    args = ("predict", "--weights", weights_file, inputs, "--engine", "paddle", "--no-progress")
    assert run_tool("sr-train", *args, "--out", tmp_path / "reference").returncode == 0
    reference = tree(tmp_path / "reference")
    small = (tmp_path / "reference" / "a_small.png").stat().st_size
    large = (tmp_path / "reference" / "b_large.png").stat().st_size
    assert small < large // 2
    out = tmp_path / "up"
    done = run_tool("sr-train", *args, "--out", out, preexec_fn=file_size_limit((small + large) // 2))
    assert done.returncode == 1
    assert f"cannot write {out / 'b_large.png'}: File too large (EFBIG)" in one_error_line(done.stderr, "sr-train")
    assert tree(out) == {"a_small.png": reference["a_small.png"]}  # no partial b_large.png, no temp file
    assert run_tool("sr-train", *args, "--out", out).returncode == 0
    assert tree(out) == reference


@pytest.mark.parametrize("fmt, limit", [("paddle", 17000), pytest.param("onnx", 25000, marks=pytest.mark.slow)])
def test_export_past_a_file_size_limit_fails_in_one_line_instead_of_shipping_a_truncated_model(
        tmp_path, weights_file, fmt, limit):
    """Paddle's jit.save (and paddle2onnx's writer) report no write errors: a truncated model.json or
    model.pdiparams used to be put in place with exit 0. Now what was written is loaded back first."""
    args = ("export", "--weights", weights_file, "--format", fmt)
    assert run_tool("sr-train", *args, "--out", tmp_path / "reference").returncode == 0
    out = tmp_path / "export"
    done = run_tool("sr-train", *args, "--out", out, preexec_fn=file_size_limit(limit))
    assert done.returncode == 1, done.stderr
    line = one_error_line(done.stderr, "sr-train")
    assert line.startswith(f"sr-train: error: cannot write {out}/model.")
    assert "(EFBIG)" in line or "wrote an incomplete model" in line
    assert tree(out) == {}
    assert run_tool("sr-train", *args, "--out", out).returncode == 0
    assert tree(out) == tree(tmp_path / "reference")


def _fail_writes(monkeypatch, code: int, after: int = 0) -> list[str]:
    """Make the shared writer fail with `code` (ENOSPC, EIO) on every write after the first `after`."""
    real_fdopen, calls = os.fdopen, []

    class Failing:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, data):
            raise OSError(code, os.strerror(code))

    def fdopen(fd, mode="r", *args, **kwargs):
        calls.append(mode)
        handle = real_fdopen(fd, mode, *args, **kwargs)
        return handle if len(calls) <= after else Failing(handle)

    monkeypatch.setattr(atomic.os, "fdopen", fdopen)
    return calls


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO])
def test_a_failing_disk_in_the_shared_writer_keeps_the_old_file_and_names_file_and_errno(tmp_path, monkeypatch,
                                                                                         code):
    path = tmp_path / "f.json"
    write_bytes(path, b"old")
    _fail_writes(monkeypatch, code)
    with pytest.raises(WriteError) as failed:
        write_bytes(path, b"new")
    assert str(failed.value).startswith(f"cannot write {path}: {os.strerror(code)} ({errno.errorcode[code]});")
    assert failed.value.storage
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["f.json"]


def test_a_full_disk_in_the_append_log_is_a_write_error(tmp_path, monkeypatch):
    log = AppendFile(tmp_path / "metrics.jsonl")
    log.write('{"iter": 1}\n')

    def full(fd, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic.os, "write", full)
    with pytest.raises(WriteError, match=r"metrics.jsonl: No space left on device \(ENOSPC\)"):
        log.write('{"iter": 2}\n')
    log.close()


def test_build_on_a_full_disk_exits_1_in_one_line_and_a_rerun_completes_identically(tmp_path, raw, reference_ds,
                                                                                    monkeypatch, capsys):
    out = tmp_path / "ds"
    _fail_writes(monkeypatch, errno.ENOSPC, after=5)
    assert srdata_main(["build", "--src", str(raw), "--out", str(out), *BUILD]) == 1
    assert "No space left on device (ENOSPC); free some space, then run the same command again" in one_error_line(
        capsys.readouterr().err, "srdata")
    _complete_pngs(out)
    monkeypatch.undo()
    assert srdata_main(["build", "--src", str(raw), "--out", str(out), *BUILD]) == 0
    assert tree(out) == reference_ds


def test_storage_errors_outside_the_writer_are_one_line_exit_1(tmp_path, raw, monkeypatch, capsys):
    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "ds" / "train"))

    monkeypatch.setattr("srdata.build.os.sync", no_space)
    assert srdata_main(["build", "--src", str(raw), "--out", str(tmp_path / "ds"), *BUILD]) == 1
    assert "(ENOSPC)" in one_error_line(capsys.readouterr().err, "srdata")


# ============================================================================ signals

@pytest.fixture(scope="module")
def long_fit(pairs_dir, tmp_path_factory):
    """A recipe long enough to signal mid-run (2000 tiny iterations, loader worker processes on), and its
    uninterrupted run, moved from the recipe's run_dir to `straight` (weights files record the recipe,
    run_dir included, so a run compared with it must use the same run_dir)."""
    root = tmp_path_factory.mktemp("long_fit")
    recipe = _recipe_file(root / "r.yaml", pairs_dir, root / "run", train__iters=2000, log__interval=10,
                          val__interval=1000, checkpoint__interval=1000, checkpoint__keep_states=3, data__workers=1)
    assert sr_train_main(["fit", str(recipe), "--no-progress"]) == 0
    (root / "run").rename(root / "straight")
    return recipe, root / "run", root / "straight"


@pytest.mark.parametrize("signum, code, group", [(signal.SIGTERM, 143, False), (signal.SIGINT, 130, True)])
def test_a_signal_during_fit_finishes_the_step_saves_a_state_and_the_resumed_run_is_bit_identical(
        long_fit, signum, code, group):
    """SIGTERM to the trainer (kill), and Ctrl-C (SIGINT to its whole process group, loader workers
    included): exit 143/130 with the command that resumes; resuming gives the uninterrupted run's bytes."""
    recipe, run, straight = long_fit
    shutil.rmtree(run, ignore_errors=True)
    args = ["fit", recipe, "--no-progress"]
    proc = start_tool("sr-train", *args, new_session=group)
    wait_for(lambda: _started_training(run), what="the first training steps")
    (os.killpg if group else os.kill)(proc.pid, signum)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    states = list_states(run)
    assert len(states) == 1 and 0 < states[0][0] < 2000
    last = err.strip().splitlines()[-1]
    assert last == (f"sr-train fit: stopped by {signal.Signals(signum).name} after iteration {states[0][0]}; its "
                    f"state is {run / 'ckpt' / f'iter_{states[0][0]}.state'}; continue with: sr-train fit {recipe} "
                    "--resume auto")
    assert not [p for p in run.rglob("*") if is_temp_name(p.name)]
    done = run_tool("sr-train", *args, "--resume", "auto")
    assert done.returncode == 0, done.stderr
    _assert_same_run(run, straight)


@pytest.mark.slow
@pytest.mark.parametrize("signum, code, group", [(signal.SIGTERM, 143, False), (signal.SIGINT, 130, True)])
def test_a_signal_to_a_multi_process_fit_stops_every_process_at_one_step_and_resumes_bit_identically(
        pairs_dir, tmp_path, signum, code, group):
    """SIGTERM to `sr-train fit` training with 2 spawned processes (it passes the stop on), or Ctrl-C to
    all of them: both finish the same step, rank 0 saves the state, exit 143/130; resuming equals an
    uninterrupted 2-process run."""
    run, straight = tmp_path / "run", tmp_path / "straight"
    recipe = _recipe_file(tmp_path / "r.yaml", pairs_dir, run, train__iters=600, train__processes=2,
                          data__workers=1, log__interval=10, val__interval=300, checkpoint__interval=300)
    done = run_tool("sr-train", "fit", recipe, "--no-progress")
    assert done.returncode == 0, done.stderr
    run.rename(straight)
    args = ["fit", recipe, "--no-progress"]
    proc = start_tool("sr-train", *args, new_session=group)
    wait_for(lambda: _started_training(run), what="the first training steps")
    (os.killpg if group else os.kill)(proc.pid, signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code and "Traceback" not in err, err
    states = list_states(run)
    assert len(states) == 1 and 0 < states[0][0] < 600
    assert err.strip().splitlines()[-1].startswith(
        f"sr-train fit: stopped by {signal.Signals(signum).name} after iteration {states[0][0]}")
    done = run_tool("sr-train", *args, "--resume", "auto")
    assert done.returncode == 0, done.stderr
    _assert_same_run(run, straight, 600)


def test_a_second_ctrl_c_stops_at_once():
    with pytest.raises(Stopped) as stopped:
        with deferred_stop() as request:
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)  # repeated SIGTERMs (process managers): still one stop
            assert request.signum == signal.SIGTERM
            os.kill(os.getpid(), signal.SIGINT)
            pytest.fail("the second Ctrl-C did not stop")
    assert stopped.value.exit_code == 130
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize("signum, code, group", [(signal.SIGTERM, 143, False), (signal.SIGINT, 130, True)])
def test_a_signal_during_build_stops_promptly_with_nothing_half_written(tmp_path, signum, code, group):
    """A 2-worker build of 48 sources, signalled once its workers have made some files: it exits within
    seconds, its worker processes are gone, every file under a final name is whole, and a re-run gives
    the bytes of an undisturbed build."""
    raw = make_raw(tmp_path / "raw", 48, size=(320, 272))
    out = tmp_path / "ds"
    args = ("build", "--src", raw, "--out", out, "--scale", "4", "--workers", "2")
    proc = start_tool("srdata", *args, new_session=group)
    wait_for(lambda: len(list((out / ".staging").glob("*.png"))) >= 4, what="the first staged files")
    workers = children_of(proc.pid)
    (os.killpg if group else os.kill)(proc.pid, signum)
    out_text, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert "Traceback" not in err and f"srdata: stopped by {signal.Signals(signum).name}" in err
    wait_for(lambda: not any(alive(pid) for pid in workers), timeout=15, what="the workers to end")
    _complete_pngs(out)
    assert not (out / LOCK_NAME).exists()
    assert run_tool("srdata", *args).returncode == 0
    reference = tmp_path / "reference" / "ds"
    build_dataset(options(raw, reference, scale=4, val=0.05, test=0.05, workers=2), progress=False)
    settings = lambda files: {k: v for k, v in files.items() if k != "dataset.json"}  # noqa: E731
    assert settings(tree(out)) == settings(tree(reference))


def test_ctrl_c_during_predict_stops_with_whole_files_only(tmp_path, weights_file):
    rng = np.random.default_rng(5)
    inputs = tmp_path / "in"
    for i in range(30):
        write_image(inputs / f"im{i:02d}.png", rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    out = tmp_path / "up"
    proc = start_tool("sr-train", "predict", "--weights", weights_file, inputs, "--out", out, "--engine", "paddle",
                      "--tile", "8", "--no-progress", new_session=True)
    wait_for(lambda: len(list(out.glob("*.png"))) >= 2, what="the first outputs")
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, err
    written = _complete_pngs(out)
    assert 2 <= len(written) < 30 and not (out / LOCK_NAME).exists()
    assert not [p for p in out.iterdir() if is_temp_name(p.name)]


# ============================================================================ hostile trees and names

WEIRD_NAMES = ["with space.png", "new\nline.png", "ünïcødé 画像.png", "-leading-dash.png", "--out.png"]


def test_hostile_source_tree_is_built_with_every_problem_in_rejected_jsonl(tmp_path):
    """Links followed once, loops and dangling links reported, unreadable files and folders reported,
    odd names built, the output folder inside the source folder skipped: exit 0, no traceback."""
    enforce, why = permissions_enforced()
    if why:
        pytest.skip(why)
    raw = tmp_path / "raw"
    for i, name in enumerate(WEIRD_NAMES):
        write_image(raw / name, blob_image(i, 160, 136))
    write_image(raw / os.fsdecode(b"latin1-\xe9.png"), blob_image(10, 160, 136))  # not UTF-8
    write_image(raw / ("L" * 200) / ("n" * 200 + ".png"), blob_image(15, 160, 136))  # its id would be 403 bytes
    write_image(tmp_path / "elsewhere" / "linked.png", blob_image(11, 160, 136))
    write_image(raw / "sub" / "deep.png", blob_image(12, 160, 136))
    write_image(raw / "locked" / "hidden_from_us.png", blob_image(13, 160, 136))
    write_image(raw / "unreadable.png", blob_image(14, 160, 136))
    (raw / "loop").symlink_to("..")
    (raw / "self").symlink_to("self")
    (raw / "elsewhere").symlink_to(tmp_path / "elsewhere")
    (raw / "sub_again").symlink_to("sub")
    (raw / "gone.png").symlink_to(tmp_path / "missing.png")
    os.mkfifo(raw / "pipe.png")
    (raw / "locked").chmod(0)
    (raw / "unreadable.png").chmod(0)
    out = raw / "out"  # inside --src
    try:
        done = run_tool("srdata", "build", "--src", raw, "--out", out, "--scale", "4", "--val", "0", "--test", "0",
                        "--workers", "2", preexec_fn=enforce, timeout=300)
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
        rejected = {row["source"]: row["reason"] for row in map(json.loads, (out / "rejected.jsonl").open())}
        assert rejected == {
            "gone.png": f"dangling symlink (points to {tmp_path / 'missing.png'}, which does not exist)",
            "locked": "unreadable folder (Permission denied)",
            "loop": "symlink loop (points to .., a folder that contains it; not followed)",
            "pipe.png": "not a regular file (named pipe)",
            "self": "symlink loop (Too many levels of symbolic links)",
            "sub_again": f"folder already scanned (the same folder as {raw / 'sub'}; not scanned twice)",
            "unreadable.png": "unreadable (Permission denied)",
        }
        built = sorted(p.name for p in (out / "train").iterdir())
        long = [name for name in built if name.startswith("L" * 180)]
        assert len(long) == 1 and len(long[0].encode()) <= 204 and long[0][180] == "-"
        names = [*(Path(n).stem for n in WEIRD_NAMES), os.fsdecode(b"latin1-\xe9"), "elsewhere__linked", "sub__deep"]
        assert sorted(set(built) - set(long)) == sorted(f"{n}.png" for n in names)
        # the dataset is usable by the readers, whatever the names
        inspect = run_tool("srdata", "inspect", out, "--workers", "1")
        assert inspect.returncode == 0 and "Traceback" not in inspect.stderr
    finally:
        (raw / "locked").chmod(0o755)
        (raw / "unreadable.png").chmod(0o644)


def test_predict_on_a_hostile_tree_skips_each_problem_in_one_line_and_writes_the_rest(tmp_path, weights_file):
    inputs = tmp_path / "in"
    for i, name in enumerate(WEIRD_NAMES):
        write_image(inputs / name, blob_image(i, 20, 16))
    (inputs / "loop").symlink_to(".")
    (inputs / "gone.png").symlink_to("missing.png")
    dashed = write_image(tmp_path / "-given-alone.png", blob_image(9, 20, 16))
    done = run_tool("sr-train", "predict", "--weights", weights_file, "--out", tmp_path / "up", "--engine", "paddle",
                    "--no-progress", "--", inputs, dashed.name, cwd=tmp_path)
    assert done.returncode == 1, done.stderr  # skipped inputs: exit 1, as documented
    assert "Traceback" not in done.stderr
    skipped = [line for line in done.stderr.splitlines() if line.startswith("sr-train predict: skipped")]
    assert len(skipped) == 2 and "dangling symlink" in skipped[0] and "symlink loop" in skipped[1]
    assert sorted(p.name for p in (tmp_path / "up").iterdir()) == sorted(
        f"{Path(n).stem}.png" for n in [*WEIRD_NAMES, dashed.name])


def test_a_source_that_changes_while_read_is_rejected_and_read_again_next_time(tmp_path, monkeypatch):
    """The size seen when the file was opened, the bytes read and the size after reading must agree;
    here a writer grows the file between the read and the second look."""
    raw = make_raw(tmp_path / "raw", 3, size=(160, 136))
    growing = raw / "img001.png"
    real_fstat, seen = os.fstat, []

    def fstat(fd):
        result = real_fstat(fd)
        if os.readlink(f"/proc/self/fd/{fd}") == str(growing):
            seen.append(fd)
            if len(seen) == 2:  # the look after reading
                with open(growing, "ab") as handle:
                    handle.write(b"more")
                return real_fstat(fd)
        return result

    monkeypatch.setattr("srdata.build.os.fstat", fstat)
    out = tmp_path / "ds"
    report = build_dataset(options(raw, out, scale=4, val=0, test=0), progress=False)
    assert report.rejected == [{"source": "img001.png", "reason": report.rejected[0]["reason"]}]
    assert report.rejected[0]["reason"].startswith("changed while read (")
    monkeypatch.undo()
    report = build_dataset(options(raw, out, scale=4, val=0, test=0), progress=False)
    assert report.rejected == [] and report.decoded == 1  # looked at again, not taken from the record


@pytest.mark.slow
def test_a_source_rewritten_all_the_time_never_breaks_the_build(tmp_path):
    """A real writer process rewrites one source (two versions of different sizes) while real builds run:
    each build exits 0 and either rejects it as changed or records exactly one of the two versions."""
    import hashlib
    import subprocess

    raw = make_raw(tmp_path / "raw", 6, size=(160, 136))
    versions = [cv2.imencode(".png", blob_image(s, 160 + 32 * s, 136))[1].tobytes() for s in (20, 21)]
    (tmp_path / "a.bin").write_bytes(versions[0])
    (tmp_path / "b.bin").write_bytes(versions[1])
    writer = subprocess.Popen([sys.executable, "-c", (
        "import sys\nfrom pathlib import Path\nv = [Path(sys.argv[2]).read_bytes(), Path(sys.argv[3]).read_bytes()]\n"
        "i = 0\nwhile True:\n    Path(sys.argv[1]).write_bytes(v[i % 2])\n    i += 1\n"),
        str(raw / "busy.png"), str(tmp_path / "a.bin"), str(tmp_path / "b.bin")])
    try:
        digests = {hashlib.sha256(v).hexdigest() for v in versions}
        for attempt in range(5):
            out = tmp_path / f"ds{attempt}"
            done = run_tool("srdata", "build", "--src", raw, "--out", out, "--scale", "4", "--workers", "2")
            assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
            rows = {r["source"]: r for r in map(json.loads, (out / "manifest.jsonl").open())}
            rejected = {r["source"]: r["reason"] for r in map(json.loads, (out / "rejected.jsonl").open())}
            if "busy.png" in rows:
                assert rows["busy.png"]["sha256"] in digests
            else:
                assert rejected["busy.png"].split(" (")[0] in ("changed while read", "not an image", "truncated",
                                                               "corrupt", "empty file")
    finally:
        writer.kill()
        writer.wait()


# ============================================================================ damaged run folders and datasets

@pytest.mark.parametrize("damage", ["empty", "truncated"])
def test_resume_auto_skips_damaged_states_and_says_so(pairs_dir, tmp_path, capsys, damage):
    recipe = _recipe_file(tmp_path / "r.yaml", pairs_dir, tmp_path / "run", train__iters=6)
    assert sr_train_main(["fit", str(recipe), "--no-progress"]) == 0
    newest = tmp_path / "run" / "ckpt" / "iter_6.state"
    data = newest.read_bytes()
    newest.write_bytes(b"" if damage == "empty" else data[: len(data) // 2])
    capsys.readouterr()
    assert sr_train_main(["fit", str(recipe), "--set", "train.iters=8", "--resume", "auto", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert f"resume: skipped {newest}: not a complete srkit training state" in " ".join(err.split())
    assert "resume: continuing at iteration 3 from" in err
    for state in (tmp_path / "run" / "ckpt").glob("*.state"):
        state.write_bytes(b"")
    assert sr_train_main(["fit", str(recipe), "--set", "train.iters=10", "--resume", "auto", "--no-progress"]) == 2
    assert "no readable training state (2 damaged, listed above)" in one_error_line(capsys.readouterr().err,
                                                                                    "sr-train")


def test_unreadable_recipe_and_pipeline_files_are_one_line_errors(tmp_path, raw):
    """A recipe or pipeline file the user may not read (permission denied): one line naming it, exit 2."""
    enforce, why = permissions_enforced()
    if why:
        pytest.skip(why)
    recipe, pipeline = tmp_path / "r.yaml", tmp_path / "p.yaml"
    recipe.write_text("seed: 0\n")
    pipeline.write_text("steps:\n  - {op: resize, to: lr}\n")
    recipe.chmod(0), pipeline.chmod(0)
    for name, args, path in (("sr-train", ("fit", recipe, "--dry-run"), recipe),
                             ("srdata", ("build", "--src", raw, "--out", tmp_path / "ds", "--scale", "4",
                                         "--degrade", pipeline), pipeline)):
        done = run_tool(name, *args, preexec_fn=enforce)
        assert done.returncode == 2, done.stderr
        assert one_error_line(done.stderr, name).startswith(f"{name}: error: {path}: cannot read the ")


@pytest.mark.parametrize("damage", ["empty", "truncated"])
def test_damaged_weights_are_one_line_errors(tmp_path, weights_file, capsys, damage):
    bad = tmp_path / "last.safetensors"
    data = weights_file.read_bytes()
    bad.write_bytes(b"" if damage == "empty" else data[: len(data) - 100])
    image = write_image(tmp_path / "in.png", blob_image(0, 16, 16))
    for argv in (["predict", "--weights", str(bad), str(image), "--out", str(tmp_path / "up"), "--engine", "paddle"],
                 ["export", "--weights", str(bad), "--format", "paddle", "--out", str(tmp_path / "export")],
                 ["convert", str(bad), str(tmp_path / "converted.safetensors")]):
        assert sr_train_main(argv) == 2, argv
        assert str(bad) in one_error_line(capsys.readouterr().err, "sr-train")


def test_a_hand_edited_manifest_with_a_broken_line(tmp_path, raw, reference_ds, capsys):
    out = tmp_path / "ds"
    assert srdata_main(["build", "--src", str(raw), "--out", str(out), *BUILD]) == 0
    lines = (out / "manifest.jsonl").read_text().splitlines()
    lines[2] = lines[2][:40]
    (out / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert srdata_main(["inspect", str(out), "--workers", "1"]) == 2
    line = one_error_line(capsys.readouterr().err, "srdata")
    assert f"{out / 'manifest.jsonl'}:3: not a JSON object" in line
    assert srdata_main(["build", "--src", str(raw), "--out", str(out), *BUILD]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "srdata build: the previous build's record could not be used" in err and "manifest.jsonl:3" in err
    assert tree(out) == reference_ds


def test_a_dataset_from_a_future_srkit_is_refused_by_every_reader(tmp_path, raw, pairs_dir, capsys):
    out = tmp_path / "ds"
    assert srdata_main(["build", "--src", str(raw), "--out", str(out), *BUILD]) == 0
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["format"] == "srkit-dataset" and meta["format_version"] == 1
    meta.update(format_version=2, version="9.0.0")
    (out / "dataset.json").write_text(json.dumps(meta))
    recipe = _recipe_file(tmp_path / "r.yaml", pairs_dir, tmp_path / "run")
    runs = [(srdata_main, "srdata", ["inspect", str(out)]),
            (srdata_main, "srdata", ["build", "--src", str(raw), "--out", str(out), *BUILD]),
            (sr_train_main, "sr-train", ["fit", str(recipe), "--set", f"data.root={out}", "--set", "data.train=null",
                                         "--set", "data.val=null"])]
    capsys.readouterr()
    for main, prog, argv in runs:
        assert main(argv) == 2, argv
        line = one_error_line(capsys.readouterr().err, prog)
        assert "written by a newer srkit (9.0.0, dataset format 2" in line and "upgrade srkit" in line


# ============================================================================ dry run

def test_dry_run_prints_the_plan_and_writes_nothing(pairs_dir, tmp_path, capsys):
    recipe = _recipe_file(tmp_path / "r.yaml", pairs_dir, tmp_path / "run", train__iters=300,
                          checkpoint__interval=100)
    before = tree(tmp_path)
    assert sr_train_main(["fit", str(recipe), "--dry-run"]) == 0
    plan = " ".join(capsys.readouterr().out.split())
    assert tree(tmp_path) == before and not (tmp_path / "run").exists()
    for fact in ("compact (in_nc 3, out_nc 3, nf 8, nc 1, scale 2", "4 train pairs", "2 val pairs",
                 "iterations 1..300 (300 to run) of batch 2 x 32 px", "a new run", f"{tmp_path / 'run'}/best",
                 "3 x", "nothing was trained or written"):
        assert fact in plan, fact
    parameters = int(plan.split(" parameters")[0].rsplit(" ", 1)[1].replace(",", ""))
    assert parameters == sum(v.size for v in model_state(make_model({**COMPACT_ARCH, "nf": 8, "nc": 1,
                                                                      "scale": 2, "skip": "bicubic"})).values())
    assert sr_train_main(["fit", str(recipe), "--set", "train.patch_size=256", "--dry-run"]) == 2
    assert "smaller than train.patch_size 256" in one_error_line(capsys.readouterr().err, "sr-train")


# ============================================================================ random recipes and options

def _schema(cls, prefix: str = "") -> dict[str, object]:
    """Every dotted key of a recipe (sr_train.recipe.Recipe and its nested sections) -> its type hint."""
    keys = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.metadata.get("internal"):
            continue
        keys[prefix + f.name] = hints[f.name]
        for member in typing.get_args(hints[f.name]) or (hints[f.name],):
            if dataclasses.is_dataclass(member):
                keys.update(_schema(member, f"{prefix}{f.name}."))
    return keys


RECIPE_SCHEMA = _schema(Recipe)
RECIPE_KEYS = list(RECIPE_SCHEMA)


def _plausible(hint) -> st.SearchStrategy:
    """Values of the hint's type, mostly in the range real recipes use (so dry runs get past the checks)."""
    members = [m for m in (typing.get_args(hint) or (hint,)) if m is not type(None)]
    options = []
    for member in members:
        if member is bool:
            options.append(st.booleans())
        elif member is int:
            options.append(st.integers(0, 64))
        elif member is float:
            options.append(st.floats(0, 1))
        elif member is str:
            options.append(st.sampled_from(["compact", "l1", "mse", "constant", "multistep", "nearest", "prelu",
                                            "unet", "vgg128", "conv5_4", "random-for-tests", "cosine_restart"]))
        elif typing.get_origin(member) is list:
            options.append(st.lists(st.integers(0, 50), max_size=3))
    return st.one_of(*options) if options else st.none()


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-3, 300), st.floats(),
                    st.floats(-1e3, 1e3), st.text(max_size=8),
                    st.sampled_from(["l1", "mse", "compact", "rrdbnet", "constant", "multistep", "unet", "vgg128",
                                     "nearest", "imagenet", "auto", ".", "/", "..", "~"]))
def _containers(inner: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3))


VALUES = st.recursive(SCALARS, _containers, max_leaves=6)
KEYS = st.one_of(st.sampled_from(RECIPE_KEYS), st.text(max_size=10),
                 st.builds(lambda a, b: f"{a}.{b}", st.sampled_from(RECIPE_KEYS), st.text(max_size=6)))
FUZZ = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _yaml_value(value) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=1 << 30).removesuffix("\n...\n").strip()


def _run_main(main, argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def _assert_success_or_one_line_exit_2(prog: str, argv: list, code: int, err: str, documented_exit_1=None) -> None:
    """The property: exit 0; or exit 2 with exactly one `PROG: error:` line; or a documented exit 1
    (`documented_exit_1(err)` says whether the message is the documented one). Never a traceback."""
    assert "Traceback" not in err, (argv, err)
    event(f"exit {code}")  # `pytest --hypothesis-show-statistics` shows how many runs got past the checks
    if code == 0:
        return
    if code == 1 and documented_exit_1 is not None and documented_exit_1(err):
        return
    assert code == 2, (argv, code, err)
    one_error_line(err, prog)


OVERRIDES = st.one_of(
    st.tuples(KEYS, st.one_of(VALUES.map(_yaml_value), st.text(max_size=12))),
    st.sampled_from(RECIPE_KEYS).flatmap(lambda key: st.tuples(st.just(key),
                                                               _plausible(RECIPE_SCHEMA[key]).map(_yaml_value))))


@FUZZ
@given(overrides=st.lists(OVERRIDES, max_size=3),
       resume=st.one_of(st.none(), st.just("auto"), st.text(max_size=8)))
def test_fit_dry_run_with_random_overrides_succeeds_or_fails_in_one_line(pairs_dir, tmp_path, overrides, resume):
    recipe = _recipe_file(tmp_path / "r.yaml", pairs_dir, tmp_path / "run")
    argv = ["fit", str(recipe), *[arg for key, value in overrides for arg in ("--set", f"{key}={value}")],
            *(["--resume", resume] if resume is not None else []), "--dry-run"]
    code, out, err = _run_main(sr_train_main, argv)
    _assert_success_or_one_line_exit_2("sr-train", argv, code, err)
    assert code != 0 or out.endswith("dry run: nothing was trained or written\n")
    assert not (tmp_path / "run").exists()


@FUZZ
@given(raw=st.dictionaries(
    st.one_of(st.sampled_from([k for k in RECIPE_KEYS if "." not in k]), st.text(max_size=8), st.integers()),
    st.one_of(VALUES, st.dictionaries(st.sampled_from([k.rsplit(".", 1)[-1] for k in RECIPE_KEYS]), VALUES, max_size=4)),
    max_size=6))
def test_fit_dry_run_of_a_random_recipe_file_succeeds_or_fails_in_one_line(pairs_dir, tmp_path, raw):
    recipe = tmp_path / "random.yaml"
    base = tiny_recipe(pairs_dir, tmp_path / "run")
    recipe.write_text(yaml.safe_dump({**base, **raw}))
    code, out, err = _run_main(sr_train_main, ["fit", str(recipe), "--dry-run"])
    _assert_success_or_one_line_exit_2("sr-train", raw, code, err)
    assert not (tmp_path / "run").exists()


PATH_OPTIONS = {"--src", "--out", "--hr", "--lr", "--json", "--sheet", "--save-images", "--weights"}
CHOICES = ["bicubic", "area", "nearest", "lanczos", "matlab", "bilinear", "0.1", "0", "1", "2", "1:3", "3:1",
           "64x48", "0x9", "paddle", "onnx", "model", "val", "test", "train", "nan", "inf", "-1", "1e309", ""]


def _option_values(param) -> st.SearchStrategy:
    """Values for an option: mostly plausible ones of its type (so that runs get past parsing and do
    work), edge values, anything of its type, and text of any kind."""
    kind = param.bare_type()
    if kind == "int":
        typed = st.one_of(st.integers(-3, 40), st.sampled_from([0, 1, 2, 3, 4, 8, 64, 10**6, 2**31, 2**63, -1]),
                          st.integers())
    elif kind == "float":
        typed = st.one_of(st.floats(-5, 50), st.sampled_from([0.0, 0.5, 1e-9, 1e6, 1e308, float("nan"),
                                                               float("inf"), float("-inf")]), st.floats())
    else:
        typed = st.sampled_from(CHOICES)
    return st.one_of(typed.map(str), typed.map(str), st.text(max_size=10))


def _random_options(app, command: str, fixed: set[str]) -> st.SearchStrategy:
    """Lists of argv pieces: some of `command`'s options (not those in `fixed` nor paths) with random values."""
    params = [p for p in typer.main.get_command(app).commands[command].params
              if p.param_type_name == "option" and not set(p.opts) & (fixed | PATH_OPTIONS)]
    pieces = []
    for p in params:
        if p.is_flag:
            pieces.append(st.sampled_from([[name] for name in p.opts + p.secondary_opts]))
        else:
            pieces.append(_option_values(p).map(lambda value, name=p.opts[0]: [name, str(value)]))
    return st.lists(st.one_of(*pieces), max_size=4).map(lambda chosen: [arg for piece in chosen for arg in piece])


def _paths(root: Path) -> st.SearchStrategy:
    """Output paths a run may be given: new files or folders under `root`, an existing folder or file,
    a path below a file."""
    (root / "existing_dir").mkdir(exist_ok=True)
    (root / "existing_file.txt").write_text("x")
    names = st.text(st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)), min_size=1,
                    max_size=8).filter(lambda n: n not in (".", ".."))
    return st.one_of(names.map(lambda n: str(root / "new" / n)),
                     st.sampled_from([str(root / "existing_dir"), str(root / "existing_file.txt"),
                                      str(root / "existing_file.txt" / "below"), str(root / "x.png"),
                                      str(root / "x.json")]))


@pytest.fixture(scope="module")
def tiny_x4(tmp_path_factory) -> tuple[Path, Path]:
    """(raw folder of 2 sources, dataset built from them at x4)."""
    root = tmp_path_factory.mktemp("tiny_x4")
    raw = make_raw(root / "raw", 2, size=(136, 136))
    assert srdata_main(["build", "--src", str(raw), "--out", str(root / "ds"), "--scale", "4", "--val", "1",
                        "--test", "0", "--workers", "1"]) == 0
    return raw, root / "ds"


def _fresh(tmp_path: Path) -> Path:
    return tmp_path / f"run{len(list(tmp_path.iterdir()))}"


@settings(FUZZ, max_examples=25)
@given(data=st.data())
def test_srdata_build_options_succeed_or_fail_in_one_line(tiny_x4, tmp_path, data):
    raw, _ = tiny_x4
    argv = ["build", "--src", str(raw), "--out", str(_fresh(tmp_path)),
            *data.draw(_random_options(srdata_app, "build", set()))]
    code, _, err = _run_main(srdata_main, argv)
    _assert_success_or_one_line_exit_2("srdata", argv, code, err,
                                       documented_exit_1=lambda e: "--strict" in argv and "--strict:" in e)


@settings(FUZZ, max_examples=20)
@given(data=st.data())
def test_srdata_inspect_options_succeed_or_fail_in_one_line(tiny_x4, tmp_path, data):
    _, ds = tiny_x4
    paths = _paths(tmp_path)
    argv = ["inspect", str(ds), *data.draw(_random_options(srdata_app, "inspect", set())),
            *data.draw(st.lists(st.tuples(st.sampled_from(["--json", "--sheet", "--hr", "--lr"]), paths),
                                max_size=2).map(lambda pairs: [a for pair in pairs for a in pair]))]
    code, _, err = _run_main(srdata_main, argv)
    _assert_success_or_one_line_exit_2("srdata", argv, code, err)


@settings(FUZZ, max_examples=20)
@given(data=st.data())
def test_sr_train_predict_options_succeed_or_fail_in_one_line(tiny_x4, weights_file, tmp_path, data):
    raw, _ = tiny_x4
    small = write_image(tmp_path / "in" / "small.png", blob_image(1, 12, 10))
    argv = ["predict", "--weights", str(weights_file), str(small), "--out", str(_fresh(tmp_path)), "--no-progress",
            *data.draw(_random_options(sr_train_app, "predict", {"--progress"}))]
    with _environ(SRKIT_CACHE=str(tmp_path.parent / "cache")):
        code, _, err = _run_main(sr_train_main, argv)
    _assert_success_or_one_line_exit_2("sr-train", argv, code, err,
                                       documented_exit_1=lambda e: "sr-train predict: skipped" in e)


@settings(FUZZ, max_examples=20)
@given(data=st.data())
def test_sr_train_eval_options_succeed_or_fail_in_one_line(tiny_x4, weights_file, tmp_path, data):
    _, ds = tiny_x4
    paths = _paths(tmp_path)
    argv = ["eval", str(ds), "--weights", str(weights_file), "--split", "val", "--no-progress",
            *data.draw(_random_options(sr_train_app, "eval", {"--progress"})),
            *data.draw(st.lists(st.tuples(st.sampled_from(["--json", "--save-images"]), paths),
                                max_size=2).map(lambda pairs: [a for pair in pairs for a in pair]))]
    code, _, err = _run_main(sr_train_main, argv)
    _assert_success_or_one_line_exit_2("sr-train", argv, code, err)


@settings(FUZZ, max_examples=8)
@given(data=st.data())
def test_sr_train_export_and_convert_arguments_succeed_or_fail_in_one_line(weights_file, tmp_path, data):
    paths = _paths(tmp_path)
    fmt = data.draw(st.one_of(st.just("paddle"), st.text(max_size=6), st.sampled_from(CHOICES)))
    source = data.draw(st.one_of(st.just(str(weights_file)), paths))
    for argv in (["export", "--weights", source, "--format", fmt, "--out", data.draw(paths)],
                 ["convert", source, data.draw(st.one_of(paths, paths.map(lambda p: p + ".safetensors")))]):
        code, _, err = _run_main(sr_train_main, argv)
        _assert_success_or_one_line_exit_2("sr-train", argv, code, err)


@contextlib.contextmanager
def _environ(**values):
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
