"""sr-train fit with data.degrade: LRs made on the fly from HR patches, exactly reproducible."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import make_raw, options, run, tiny_recipe
from sr_train.checkpoint import read_state
from sr_train.data import (ImageStore, TrainBatches, degrade_patch, degrade_seed, find_pairs, random_crop, sample_rng,
                           train_loader)
from sr_train.recipe import recipe_from_dict
from sr_train.weights.srkit import read_weights_file
from srdata.build import build_dataset
from srdata.degradations.pipeline import load_pipeline
from srdata.errors import UserError
from srdata.layout import SplitDirs

SCALE = 2


def hr_only_store(pairs_dir, cache_dir) -> ImageStore:
    split = SplitDirs("train", pairs_dir / "train", None)
    return ImageStore(find_pairs(split, SCALE, 32, hr_only=True), SCALE, cache_dir)


def test_online_lrs_are_the_pipeline_applied_to_each_hr_patch(pairs_dir, tmp_path):
    store = hr_only_store(pairs_dir, tmp_path)
    assert store.lr is None
    assert [p.lr for p in store.pairs] == [None] * 4
    pipeline = load_pipeline("realesrgan")
    batches = TrainBatches(store, 3, 0, 10, 4, 32, True, True, pipeline=pipeline)
    lq, gt = batches[5]
    assert lq.shape == (4, 3, 16, 16) and gt.shape == (4, 3, 32, 32)
    for j in range(4):
        hr = (gt[j].transpose(1, 2, 0) * 255).round().astype(np.uint8)
        expected = degrade_patch(hr, pipeline, degrade_seed(3, 5, j), SCALE)
        np.testing.assert_array_equal((lq[j].transpose(1, 2, 0) * 255).round().astype(np.uint8), expected)
    late = TrainBatches(store, 3, 5, 10, 4, 32, True, True, pipeline=pipeline)
    for a, b in zip(batches[5], late[0]):
        np.testing.assert_array_equal(a, b)  # a pure function of (seed, iteration, sample): resume-safe
    assert len({degrade_seed(3, it, j) for it in range(5) for j in range(4)}) == 20


def test_hr_only_crop_uses_the_same_grid_as_a_paired_crop(pairs_dir, tmp_path):
    """The crop of an HR-only sample is where a paired crop would be, so data.degrade only changes the LR."""
    store = hr_only_store(pairs_dir, tmp_path)
    hr = store.get(0)[0]
    lr = hr[::SCALE, ::SCALE]
    alone, _ = random_crop(hr, None, SCALE, 32, sample_rng(1, 2, 3), True, True)
    paired, _ = random_crop(hr, lr, SCALE, 32, sample_rng(1, 2, 3), True, True)
    np.testing.assert_array_equal(alone, paired)


def test_online_batches_do_not_depend_on_loader_workers(pairs_dir, tmp_path):
    store = hr_only_store(pairs_dir, tmp_path)
    pipeline = load_pipeline("anime-video")

    def batches(workers):
        return [tuple(t.numpy() for t in b)
                for b in train_loader(TrainBatches(store, 1, 2, 6, 2, 32, True, True, pipeline=pipeline), workers)]

    for (a, b), (c, d) in zip(batches(0), batches(2)):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)


def degrade_recipe(pairs_dir, run_dir, **overrides):
    raw = tiny_recipe(pairs_dir, run_dir, data__degrade="realesrgan", **overrides)
    del raw["data"]["train"]["lq"]  # HR-only training data
    return raw


def test_fit_with_online_degradation_resumes_bit_identically(pairs_dir, tmp_path):
    raw = degrade_recipe(pairs_dir, tmp_path / "straight", train__iters=6, checkpoint__interval=3, val__interval=3)
    run(raw)
    state = read_state(tmp_path / "straight" / "ckpt" / "iter_6.state")
    assert state.info["data_order"]["degrade"]["name"] == "realesrgan"
    run(dict(raw, run_dir=str(tmp_path / "branch")), resume=str(tmp_path / "straight" / "ckpt" / "iter_3.state"))
    a, b = (read_weights_file(tmp_path / d / "last.safetensors").state for d in ("straight", "branch"))
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    plain = tiny_recipe(pairs_dir, tmp_path / "plain", train__iters=6, checkpoint__interval=3, val__interval=3)
    run(plain)
    c = read_weights_file(tmp_path / "plain" / "last.safetensors").state
    assert any(not np.array_equal(a[k], c[k]) for k in a)  # the online LRs really were used


@pytest.mark.parametrize("change, message", [
    ({"data__degrade": "nope"}, "test.yaml: data.degrade: 'nope' is not a preset"),
    ({"data__degrade": None}, "data.train.gt and data.train.lq are both needed"),
])
def test_recipe_errors(pairs_dir, tmp_path, change, message):
    raw = degrade_recipe(pairs_dir, tmp_path / "run")
    raw["data"].update({k.split("__")[1]: v for k, v in change.items()})
    with pytest.raises(UserError, match=message):
        recipe_from_dict(raw, "test.yaml")


def test_a_built_dataset_without_train_lrs_trains_with_data_degrade(tmp_path):
    src = make_raw(tmp_path / "raw", 8)
    build_dataset(options(src, tmp_path / "ds", val=2, test=0), progress=False)
    for lr in (tmp_path / "ds" / "train_X2").iterdir():
        lr.unlink()
    (tmp_path / "ds" / "train_X2").rmdir()
    raw = {"seed": 1, "run_dir": str(tmp_path / "run"), "data": {"root": str(tmp_path / "ds"), "degrade": "seed"},
           "model": {"arch": "compact", "nf": 8, "nc": 1},
           "train": {"iters": 2, "batch_size": 2, "patch_size": 32}, "val": {"interval": 2},
           "checkpoint": {"interval": 2}}
    assert run(raw).iteration == 2
    with pytest.raises(UserError, match="has no train/ and train_X2/ folders"):
        run({**raw, "data": {"root": str(tmp_path / "ds")}, "run_dir": str(tmp_path / "run2")})
