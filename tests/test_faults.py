"""Faults a user's machine throws at srkit, tried for real (issue 16): file modes under a umask, two runs
on one folder, full disks and file-size limits, SIGTERM and Ctrl-C, hostile source trees and names,
damaged run folders, random recipes and options. The rule everywhere: never a traceback, never a lost
or unreadable file; a one-line error naming the file, or a record in rejected.jsonl.

Most tests start the tools in fresh processes (tests/helpers.py: run_tool, start_tool), as a user
would; a few drive the CLI in-process (`main([...])`) where no process boundary is involved.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import stat
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from hypothesis import settings

from helpers import (COMPACT_ARCH, alive, children_of, file_size_limit, holding_lock, make_model, make_raw,
                     one_error_line, options, run_tool, start_tool, tiny_recipe, tree, wait_for, write_image)
from sr_train.checkpoint import list_states
from sr_train.cli import main as sr_train_main
from sr_train.weights.load import model_state
from sr_train.weights.srkit import save_weights
from srdata import atomic
from srdata.atomic import AppendFile, is_temp_name, write_bytes
from srdata.build import build_dataset
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
    done = __import__("subprocess").run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
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


