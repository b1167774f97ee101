"""Every speed script under bench/ still runs (tiny settings on the bundled samples): a bench that
rots silently would leave `make bench` broken until someone needs the figures. Slow: each starts
its own processes (and bench/cluster.py a local Dask cluster)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from helpers import ROOT, SAMPLES

TINY = {
    "build.py": ["--src", str(SAMPLES), "--repeat", "1"],
    "cluster.py": ["--src", str(SAMPLES), "--repeat", "1", "--noop-items", "200"],
    "dedup.py": ["--n", "20000", "--check", "500", "--target", "5"],
    "degrade.py": ["--src", str(SAMPLES), "--images", "4", "--seconds", "0.3", "--repeat", "1", "--target", "0"],
    "frames.py": ["--seconds", "2", "--repeat", "1"],
    "loader.py": ["--src", str(SAMPLES), "--images", "4", "--repeat", "1", "--seconds", "0.3", "--batches", "4"],
    "predict.py": ["--images", "1", "--crop", "64", "--repeat", "1"],
    "train.py": ["--iters", "3"],
}


def test_every_bench_script_is_listed_here():
    scripts = [p.name for p in (ROOT / "bench").glob("*.py") if p.name != "common.py"]  # common.py: what they share
    assert sorted(TINY) == sorted(scripts)


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(TINY))
def test_bench_script_runs(script, tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "bench" / script), *TINY[script]], cwd=tmp_path,
                          capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert done.stdout.strip()  # it printed its figures
