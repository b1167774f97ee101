"""Shared test fixtures: paths to the bundled samples and small images made on the fly."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers import ROOT, SAMPLES, start_scheduler, write_png  # noqa: F401 (ROOT: imported from here by tests)


@pytest.fixture(scope="session", autouse=True)
def private_srkit_cache(tmp_path_factory):
    """srkit's cache folder (decoded training images, ONNX exports) in a temporary folder, for this
    process and every process the tests start, never the user's ~/.cache."""
    os.environ["SRKIT_CACHE"] = str(tmp_path_factory.mktemp("srkit-cache"))


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    return SAMPLES


@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory, samples_dir) -> Path:
    """train (4) and val (2) pairs: 64 px HR crops of the samples, LR = INTER_AREA / 2."""
    root = tmp_path_factory.mktemp("pairs")
    files = sorted(samples_dir.glob("*.png"))[:6]
    for i, path in enumerate(files):
        img = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        hr = np.ascontiguousarray(img[100:164, 200:264])
        lr = cv2.resize(hr, (32, 32), interpolation=cv2.INTER_AREA)
        split = "train" if i < 4 else "val"
        write_png(root / split / f"im{i}.png", hr)
        write_png(root / f"{split}_lq" / f"im{i}.png", lr)
    return root


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    """A `dask scheduler` and two `dask worker` processes (one thread each) on localhost."""
    folder = tmp_path_factory.mktemp("dask")
    cluster = start_scheduler(folder)
    try:
        for _ in range(2):
            cluster.add_worker(folder)
        cluster.wait_for_workers(2)
        yield cluster
    finally:
        cluster.stop()
