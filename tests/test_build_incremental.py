"""srdata build re-runs: nothing changed, options changed, sources changed, and killed builds.

The reference for every case is a clean build of the same sources and options into a new
folder: after any history, the dataset must be the same bytes (hidden files included, so
leftover staging or temp files fail the comparison).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import srdata.build
from srdata.build import build_dataset
from helpers import blob_image, make_raw, manifest, options, tree, write_image


def clean_build(tmp_path: Path, src: Path, **kw) -> dict[str, bytes]:
    ref = tmp_path / "reference"
    shutil.rmtree(ref, ignore_errors=True)
    build_dataset(options(src, ref, **kw), progress=False)
    return tree(ref)


def _refuse(*args, **kwargs):
    raise AssertionError("a source was decoded")


def test_rerun_with_nothing_changed_decodes_nothing(tmp_path, monkeypatch):
    src = make_raw(tmp_path / "raw", 6)
    (src / "broken.png").write_bytes(b"broken")
    write_image(src / "tiny.png", blob_image(99, 40, 40))
    out = tmp_path / "ds"
    first = build_dataset(options(src, out), progress=False)
    assert first.decoded == 6 and first.written == 12
    before = tree(out)
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}

    monkeypatch.setattr(srdata.build, "open_header", _refuse)
    monkeypatch.setattr(srdata.build, "decode_opened", _refuse)
    again = build_dataset(options(src, out), progress=False)
    assert again.decoded == 0 and again.written == 0
    assert tree(out) == before
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.png")} == mtimes


def test_changed_blur_rewrites_only_the_lr_files(tmp_path):
    src = make_raw(tmp_path / "raw", 5)
    out = tmp_path / "ds"
    build_dataset(options(src, out), progress=False)
    hr_mtimes = {line["hr"]: (out / line["hr"]).stat().st_mtime_ns for line in manifest(out)}
    report = build_dataset(options(src, out, blur=1.0), progress=False)
    assert report.written == 5  # the five LR files, no HR
    assert {hr: (out / hr).stat().st_mtime_ns for hr in hr_mtimes} == hr_mtimes
    assert tree(out) == clean_build(tmp_path, src, blur=1.0)


def test_changed_split_and_seed_only_rename(tmp_path, monkeypatch):
    src = make_raw(tmp_path / "raw", 8)
    out = tmp_path / "ds"
    build_dataset(options(src, out, val=0.3, test=0.3), progress=False)
    monkeypatch.setattr(srdata.build, "decode_opened", _refuse)
    report = build_dataset(options(src, out, val=2, test=3, seed=4), progress=False)
    assert report.decoded == 0 and report.written == 0
    monkeypatch.undo()
    assert tree(out) == clean_build(tmp_path, src, val=2, test=3, seed=4)


def test_scale_change_replaces_everything_and_removes_old_folders(tmp_path):
    src = make_raw(tmp_path / "raw", 4, size=(136, 130))
    out = tmp_path / "ds"
    build_dataset(options(src, out, scale=2), progress=False)
    build_dataset(options(src, out, scale=4), progress=False)
    assert not any(p.name.endswith("_X2") for p in out.iterdir())
    assert tree(out) == clean_build(tmp_path, src, scale=4)


def test_deleted_and_modified_sources(tmp_path):
    src = make_raw(tmp_path / "raw", 6)
    out = tmp_path / "ds"
    build_dataset(options(src, out), progress=False)
    (src / "img000.png").unlink()
    (src / "img001.png").unlink()
    write_image(src / "img002.png", blob_image(77))  # same name, new content
    report = build_dataset(options(src, out), progress=False)
    assert report.decoded == 1
    sources = [line["source"] for line in manifest(out)]
    assert sources == ["img002.png", "img003.png", "img004.png", "img005.png"]
    assert tree(out) == clean_build(tmp_path, src)


def test_touched_source_is_rehashed_but_not_reencoded(tmp_path):
    src = make_raw(tmp_path / "raw", 3)
    out = tmp_path / "ds"
    build_dataset(options(src, out), progress=False)
    os.utime(src / "img001.png", ns=(1_000_000_000, 1_000_000_000))
    report = build_dataset(options(src, out), progress=False)
    assert report.decoded == 1 and report.written == 0
    assert tree(out) == clean_build(tmp_path, src)


def test_new_near_duplicate_with_more_pixels_takes_over(tmp_path):
    src = make_raw(tmp_path / "raw", 4)
    out = tmp_path / "ds"
    build_dataset(options(src, out), progress=False)
    big = blob_image(2, 192, 160)
    write_image(src / "z_big.png", big)
    build_dataset(options(src, out), progress=False)
    lines = {line["source"]: line for line in manifest(out)}
    assert lines["img002.png"]["dup_of"] == lines["z_big.png"]["id"]
    assert tree(out) == clean_build(tmp_path, src)


def test_rejections_that_depend_on_options_are_revisited(tmp_path):
    src = make_raw(tmp_path / "raw", 2, size=(96, 80))  # LR 24x20 at x4: too small
    out = tmp_path / "ds"
    first = build_dataset(options(src, out, scale=4), progress=False)
    assert first.counts["rejected"] == 2 and first.decoded == 0  # refused from the header
    second = build_dataset(options(src, out, scale=2, max_pixels=7000), progress=False)
    assert second.rejected_by_reason == {"too many pixels": 2} and second.decoded == 0
    third = build_dataset(options(src, out, scale=2), progress=False)
    assert third.counts["train"] + third.counts["val"] + third.counts["test"] == 2 and third.decoded == 2
    assert tree(out) == clean_build(tmp_path, src, scale=2)


# --- killed builds ---------------------------------------------------------------------------


class Killed(BaseException):
    """Stands in for SIGKILL: nothing after it runs (not even `except Exception` handlers)."""


def kill_at_rename(monkeypatch, k: int) -> None:
    """Raise Killed at the k-th rename (each file srkit writes is renamed into place once)."""
    real = os.replace
    count = {"n": 0}

    def replace(a, b):
        count["n"] += 1
        if count["n"] == k:
            raise Killed
        return real(a, b)

    monkeypatch.setattr(os, "replace", replace)


def test_build_killed_at_every_rename_then_rerun_equals_clean_build(tmp_path, monkeypatch):
    """A finished build, then a build with other options (and added/deleted sources) killed at
    the k-th rename for every k (while staging, placing, or writing the manifests), then that
    build again: the same bytes as a clean build, every time."""
    src = make_raw(tmp_path / "raw", 6)
    start = tmp_path / "start"
    build_dataset(options(src, start, blur=0.5, val=2, test=1), progress=False)
    (src / "img005.png").unlink()
    make_raw(src, 2, start=40)
    second = dict(blur=1.5, val=1, test=2)
    reference = clean_build(tmp_path, src, **second)
    shutil.copytree(start, tmp_path / "count")
    renames = count_renames(monkeypatch, lambda: build_dataset(options(src, tmp_path / "count", **second), progress=False))
    assert renames > 20
    out = tmp_path / "ds"
    for k in range(1, renames + 1):
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(start, out)
        with monkeypatch.context() as mp:
            kill_at_rename(mp, k)
            with pytest.raises(Killed):
                build_dataset(options(src, out, **second), progress=False)
        build_dataset(options(src, out, **second), progress=False)
        assert tree(out) == reference, f"killed at rename {k} of {renames}"


def count_renames(monkeypatch, run) -> int:
    real = os.replace
    count = {"n": 0}

    def replace(a, b):
        count["n"] += 1
        return real(a, b)

    with monkeypatch.context() as mp:
        mp.setattr(os, "replace", replace)
        run()
    return count["n"]


def test_state_a_kill_leaves_behind_is_repaired(tmp_path):
    """Half the outputs gone, one overwritten with junk, stray temp files and staging, and a
    manifest cut mid-line: the next build still gives exactly the clean result."""
    src = make_raw(tmp_path / "raw", 6)
    out = tmp_path / "ds"
    build_dataset(options(src, out), progress=False)
    lines = manifest(out)
    for line in lines[:3]:
        (out / line["hr"]).unlink()
    (out / lines[3]["lr"]).write_bytes(b"junk")
    (out / "train" / ".img000.png.abc123.tmp").write_bytes(b"half a png")
    (out / ".manifest.jsonl.xyz.tmp").write_text("{")
    (out / ".staging").mkdir()
    (out / ".staging" / "0123456789abcdef0123456789abcdef.png").write_bytes(b"stale staged")
    text = (out / "manifest.jsonl").read_text()
    (out / "manifest.jsonl").write_text(text[: len(text) // 2])
    build_dataset(options(src, out), progress=False)
    assert tree(out) == clean_build(tmp_path, src)


def _srdata_executable() -> Path:
    exe = Path(sys.executable).parent / "srdata"
    if not exe.exists():
        pytest.skip("the srdata console script is not installed in this environment")
    return exe


@pytest.mark.slow
def test_real_kill_9_at_several_moments(tmp_path):
    """SIGKILL to the whole process group at several points of a real `srdata build`, then the
    same command again: the result is the clean build's bytes."""
    src = make_raw(tmp_path / "raw", 60, size=(200, 180))
    out = tmp_path / "ds"
    args = [str(_srdata_executable()), "build", "--src", str(src), "--out", str(out), "--scale", "2",
            "--workers", "1", "--blur", "1", "--val", "0.2", "--test", "0.2"]
    started = time.perf_counter()
    subprocess.run(args, capture_output=True, check=True)
    full = time.perf_counter() - started
    reference = tree(out)
    assert reference == clean_build(tmp_path, src, blur=1.0)
    killed = 0
    for fraction in (0.5, 0.65, 0.8, 0.9, 0.97):
        shutil.rmtree(out)
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(full * fraction)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        killed += proc.wait() == -signal.SIGKILL
        assert subprocess.run(args, capture_output=True).returncode == 0
        assert tree(out) == reference, f"after a kill at {fraction:.0%} of a build"
    assert killed >= 1  # at least one kill really interrupted a build
