"""The training loop: outputs, exact resume, kill -9 safety, NaN stop, data checks, schedules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import shutil
from pathlib import Path

import cv2
import numpy as np
import paddle
import pytest

import sr_train.cache
import sr_train.data
import sr_train.evaluate
import sr_train.fit as fit_module
import sr_train.launch
from sr_train.checkpoint import list_states, load_optimizer_state, read_state, split_longest_prefix
from sr_train.cli import main
from sr_train.data import ImageStore, TrainBatches, find_pairs, train_loader
from sr_train.launch import fit_processes
from sr_train.schedule import learning_rate
from sr_train.recipe import SchedulerConfig, recipe_from_dict
from sr_train.weights.load import read_weights
from sr_train.weights.srkit import read_weights_file
from srdata.errors import UserError
from srdata.jsonio import finite_or_none
from srdata.layout import SplitDirs
from conftest import ROOT
from helpers import quiet, run, tiny_recipe, write_png

SCALE = 2


def weights_of(path: Path) -> dict[str, np.ndarray]:
    return read_weights_file(path).state


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = read_weights_file(a), read_weights_file(b)
    assert wa.state.keys() == wb.state.keys()
    for k in wa.state:
        np.testing.assert_array_equal(wa.state[k], wb.state[k], err_msg=k)
    for k in wa.ema or {}:
        np.testing.assert_array_equal(wa.ema[k], wb.ema[k], err_msg="ema " + k)


def test_fit_writes_weights_states_logs_and_curves(pairs_dir, tmp_path):
    result = run(tiny_recipe(pairs_dir, tmp_path / "run"))
    run_dir = tmp_path / "run"
    assert result.iteration == 6
    for name in ("best.safetensors", "last.safetensors", "metrics.jsonl", "curves.png", "recipe.yaml",
                 "ckpt/iter_3.safetensors", "ckpt/iter_3.state", "ckpt/iter_6.safetensors", "ckpt/iter_6.state"):
        assert (run_dir / name).is_file(), name
    arch, state = read_weights(run_dir / "last.safetensors")
    assert arch["arch"] == "compact" and arch["scale"] == SCALE and "body.0.weight" in state
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in rows if "loss" in r] == [1, 2, 3, 4, 5, 6]
    assert all("data_ms" in r and "step_ms" in r for r in rows if "loss" in r)
    vals = [r for r in rows if "val_psnr" in r]
    assert [r["iter"] for r in vals] == [3, 6]
    # one val pair is flat, so bicubic's mean PSNR is infinite: written as null (srdata.jsonio's rule)
    assert all(r["bicubic_psnr"] is None or r["bicubic_psnr"] > 10 for r in vals)
    assert all(r["bicubic_ssim"] > 0.5 for r in vals)
    assert result.best_psnr == max(r["val_psnr"] for r in vals)
    curves = cv2.imread(str(run_dir / "curves.png"))
    assert curves is not None and curves.std() > 0  # something was drawn
    assert not [p for p in run_dir.rglob(".*.tmp")]


def test_state_is_safetensors_with_everything_to_resume(pairs_dir, tmp_path):
    run(tiny_recipe(pairs_dir, tmp_path / "run", train__ema=0.9))
    state = read_state(tmp_path / "run" / "ckpt" / "iter_6.state")
    assert state.iteration == 6 and state.ema is not None
    assert {"body.0.weight.moment1_0", "body.0.weight.moment2_0", "body.4.bias.beta1_pow_acc_0"} <= set(state.optimizer)
    assert state.info["recipe"]["train"]["iters"] == 6 and state.info["data_order"]["images"] == 4
    assert (tmp_path / "run" / "ckpt" / "iter_6.state").read_bytes()[:1] != b"\x80"  # not a pickle


@pytest.mark.parametrize("scheduler", [{"name": "cosine_restart", "periods": [4, 4], "restart_weights": [1, 0.5]},
                                       {"name": "multistep", "milestones": [3, 5], "gamma": 0.5}])
def test_resume_is_bit_identical_to_a_straight_run(pairs_dir, tmp_path, scheduler):
    """2N straight vs the state at N (written by that run) resumed in a fresh model/optimiser for N more."""
    raw = tiny_recipe(pairs_dir, tmp_path / "straight", train__iters=8, train__ema=0.9, train__grad_clip=0.5,
                      train__scheduler=scheduler, checkpoint__interval=4, val__interval=4)
    run(raw)
    branched = dict(raw, run_dir=str(tmp_path / "branch"))
    result = run(branched, resume=str(tmp_path / "straight" / "ckpt" / "iter_4.state"))
    assert result.iteration == 8
    assert_same_weights(tmp_path / "straight" / "last.safetensors", tmp_path / "branch" / "last.safetensors")
    straight, resumed = (read_state(tmp_path / d / "ckpt" / "iter_8.state") for d in ("straight", "branch"))
    for k in straight.optimizer:
        np.testing.assert_array_equal(straight.optimizer[k], resumed.optimizer[k], err_msg=k)


def test_stop_then_resume_auto_equals_straight(pairs_dir, tmp_path):
    """A run that really ended at N (constant lr, so the schedule does not depend on iters) and was
    continued with --resume auto and more iterations equals the straight run."""
    const = {"name": "constant"}
    run(tiny_recipe(pairs_dir, tmp_path / "a", train__iters=6, train__scheduler=const))
    run(tiny_recipe(pairs_dir, tmp_path / "b", train__iters=3, train__scheduler=const))
    result = run(tiny_recipe(pairs_dir, tmp_path / "b", train__iters=6, train__scheduler=const), resume="auto")
    assert result.iteration == 6
    assert_same_weights(tmp_path / "a" / "last.safetensors", tmp_path / "b" / "last.safetensors")
    rows = [json.loads(line) for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in rows if "loss" in r] == [1, 2, 3, 4, 5, 6]  # no duplicated log rows


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_resume_auto_skips_a_damaged_latest_state(pairs_dir, tmp_path, damage):
    raw = tiny_recipe(pairs_dir, tmp_path / "run", train__iters=6)
    run(raw)
    latest = tmp_path / "run" / "ckpt" / "iter_6.state"
    data = latest.read_bytes()
    latest.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"\x80\x04junk" * 50, "empty": b""}[damage])
    (tmp_path / "run" / "ckpt" / ".iter_9.state.abc.tmp").write_bytes(b"partial")  # left by a kill -9
    raw["train"]["iters"] = 9
    out = quiet()
    result = run(raw, resume="auto", console=out)
    assert result.iteration == 9
    assert len(result.skipped_states) == 1 and "iter_6.state" in result.skipped_states[0]
    assert "continuing at iteration 3" in out.file.getvalue()
    assert not (tmp_path / "run" / "ckpt" / ".iter_9.state.abc.tmp").exists()
    assert read_state(tmp_path / "run" / "ckpt" / "iter_9.state").iteration == 9


def test_resume_auto_without_states_starts_fresh_and_plain_fit_refuses_existing_states(pairs_dir, tmp_path):
    raw = tiny_recipe(pairs_dir, tmp_path / "run", train__iters=3)
    assert run(raw, resume="auto").iteration == 3
    with pytest.raises(UserError, match="--resume auto"):
        run(raw)


def forbid_data_and_models(monkeypatch) -> None:
    """Make any pair scan, pixel decode or model build fail the test."""
    def forbidden(*args, **kwargs):
        raise AssertionError("data was read or a model built before the run_dir check")

    for module, name in ((sr_train.cache, "read_png_rgb"), (sr_train.data, "image_size"),
                         (sr_train.evaluate, "read_png_rgb"), (fit_module, "build_model")):
        monkeypatch.setattr(module, name, forbidden)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_plain_fit_on_a_run_dir_with_states_refuses_before_reading_data(pairs_dir, tmp_path, monkeypatch):
    raw = tiny_recipe(pairs_dir, tmp_path / "run", train__iters=3)
    run(raw)
    before = snapshot(tmp_path / "run")
    forbid_data_and_models(monkeypatch)
    with pytest.raises(UserError, match="already has training states"):
        run(raw)
    assert snapshot(tmp_path / "run") == before


def test_resume_path_into_a_run_dir_with_other_states_exits_2_and_changes_nothing(pairs_dir, tmp_path, capsys,
                                                                                   monkeypatch):
    run(tiny_recipe(pairs_dir, tmp_path / "a", train__iters=3))
    run(tiny_recipe(pairs_dir, tmp_path / "b", train__iters=6))
    before = snapshot(tmp_path / "b")
    recipe = tmp_path / "b.yaml"
    recipe.write_text(json.dumps(tiny_recipe(pairs_dir, tmp_path / "b", train__iters=6)))
    forbid_data_and_models(monkeypatch)
    capsys.readouterr()
    code = main(["fit", str(recipe), "--no-progress", "--resume", str(tmp_path / "a" / "ckpt" / "iter_3.state")])
    err = capsys.readouterr().err
    assert code == 2 and "use a new run_dir, or --resume auto" in err and len(err.strip().splitlines()) == 1
    assert snapshot(tmp_path / "b") == before
    # the same refusal when PATH is one of the run_dir's own states but not the only one
    with pytest.raises(UserError, match="use a new run_dir"):
        run(tiny_recipe(pairs_dir, tmp_path / "b", train__iters=6), resume=str(tmp_path / "b" / "ckpt" / "iter_3.state"))


def test_resume_path_into_a_new_or_empty_run_dir_branches(pairs_dir, tmp_path):
    run(tiny_recipe(pairs_dir, tmp_path / "a", train__iters=3))
    state = str(tmp_path / "a" / "ckpt" / "iter_3.state")
    (tmp_path / "empty" / "ckpt").mkdir(parents=True)
    for name in ("new", "empty"):
        result = run(tiny_recipe(pairs_dir, tmp_path / name, train__iters=6), resume=state)
        assert result.iteration == 6
        assert [i for i, _ in list_states(tmp_path / name)] == [6]  # continued from 3, wrote 6
    assert [i for i, _ in list_states(tmp_path / "a")] == [3]  # the source run is untouched


def test_keep_states_prunes_old_states_but_keeps_weights(pairs_dir, tmp_path):
    run(tiny_recipe(pairs_dir, tmp_path / "run", train__iters=6, checkpoint__interval=1, checkpoint__keep_states=2))
    assert [i for i, _ in list_states(tmp_path / "run")] == [6, 5]
    assert len(list((tmp_path / "run" / "ckpt").glob("iter_*.safetensors"))) == 6


def test_nan_loss_stops_and_keeps_the_last_good_state(pairs_dir, tmp_path, monkeypatch):
    real = fit_module.pixel_loss
    calls = {"n": 0}

    def poisoned(sr, gt, kind):
        calls["n"] += 1
        loss = real(sr, gt, kind)
        return loss * float("nan") if calls["n"] == 5 else loss

    monkeypatch.setattr(fit_module, "pixel_loss", poisoned)
    with pytest.raises(fit_module.TrainingDiverged, match=r"loss became nan at iteration 5.*iter_3\.state"):
        run(tiny_recipe(pairs_dir, tmp_path / "run"))
    assert [i for i, _ in list_states(tmp_path / "run")] == [3]
    assert read_state(tmp_path / "run" / "ckpt" / "iter_3.state").iteration == 3
    assert read_weights_file(tmp_path / "run" / "last.safetensors").meta["iteration"] == 3


def test_mismatched_pairs_are_all_listed_before_training(pairs_dir, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(pairs_dir, bad)
    (bad / "train_lq" / "im0.png").unlink()  # missing partner
    write_png(bad / "train_lq" / "im1.png", np.zeros((20, 32, 3), np.uint8))  # wrong size
    write_png(bad / "train_lq" / "extra.png", np.zeros((32, 32, 3), np.uint8))  # no HR
    out = quiet()
    with pytest.raises(UserError, match=r"3 problem\(s\) in the train pairs.*srdata build"):
        run(tiny_recipe(bad, tmp_path / "run"), console=out)
    listed = out.file.getvalue()
    assert "im0.png: no partner" in listed and "im1.png: HR 64x64 is not 2 x LR 32x20" in listed
    assert "extra.png: no partner" in listed
    assert not (tmp_path / "run").exists()  # nothing written


def test_patch_larger_than_images_is_reported(pairs_dir, tmp_path):
    with pytest.raises(UserError, match="smaller than train.patch_size 128"):
        run(tiny_recipe(pairs_dir, tmp_path / "run", train__patch_size=128), console=quiet())


def test_srdata_dataset_root_is_used(tmp_path, pairs_dir):
    ds = tmp_path / "ds"
    for split in ("train", "val"):
        shutil.copytree(pairs_dir / split, ds / split)
        shutil.copytree(pairs_dir / f"{split}_lq", ds / f"{split}_X{SCALE}")
    (ds / "dataset.json").write_text(json.dumps({"scale": SCALE, "version": "0.1.0", "settings": {}, "counts": {}}))
    raw = tiny_recipe(pairs_dir, tmp_path / "run", train__iters=2)
    raw["data"] = {"root": str(ds)}
    assert run(raw).iteration == 2
    raw["data"] = {"root": str(tmp_path / "nope")}
    raw["run_dir"] = str(tmp_path / "run2")  # a fresh run_dir: the one above now holds states (checked first)
    with pytest.raises(UserError, match="srdata build"):
        run(raw)


def test_val_images_too_small_to_score_are_refused_before_training(pairs_dir, tmp_path, monkeypatch):
    """64 px val HR, crop 30: SSIM's margin leaves nothing; said before any model is built."""
    monkeypatch.setattr(fit_module, "build_model", lambda *a: pytest.fail("a model was built"))
    with pytest.raises(UserError, match=r"too small to score with val.crop_border 30 .*needs 71 px"):
        run(tiny_recipe(pairs_dir, tmp_path / "run", val__crop_border=30))
    assert not (tmp_path / "run").exists()


def test_bicubic_is_scored_once_per_run(pairs_dir, tmp_path, monkeypatch):
    calls = []
    real = sr_train.evaluate.bicubic_baseline
    monkeypatch.setattr(sr_train.evaluate, "bicubic_baseline", lambda *a: calls.append(1) or real(*a))
    out = quiet()
    result = run(tiny_recipe(pairs_dir, tmp_path / "run"), console=out)  # 2 val pairs, validated at 3 and 6
    assert len(calls) == 2
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    vals = [r for r in rows if "val_psnr" in r]
    assert vals[0]["bicubic_psnr"] == vals[1]["bicubic_psnr"] == finite_or_none(result.bicubic_psnr)
    assert vals[0]["bicubic_ssim"] == vals[1]["bicubic_ssim"]
    assert "bicubic on val: PSNR" in out.file.getvalue()


def test_validation_scores_in_eval_mode_and_training_resumes_in_train_mode(pairs_dir, tmp_path, monkeypatch):
    built, modes = [], []
    real_build, real_score = fit_module.build_model, fit_module.score_model
    monkeypatch.setattr(fit_module, "build_model", lambda arch: built.append(real_build(arch)) or built[-1])
    monkeypatch.setattr(fit_module, "score_model", lambda model, *a, **k: modes.append(model.training)
                        or real_score(model, *a, **k))
    real_loss = fit_module.pixel_loss
    monkeypatch.setattr(fit_module, "pixel_loss", lambda *a: modes.append(("step", built[0].training))
                        or real_loss(*a))
    run(tiny_recipe(pairs_dir, tmp_path / "run", val__interval=2, train__iters=4))  # no EMA: the model is scored
    assert modes == [("step", True), ("step", True), False, ("step", True), ("step", True), False]
    assert built[0].training


def test_split_longest_prefix_picks_the_longest_name():
    assert split_longest_prefix("p_1_2_moment1_0", ["p_1", "p_1_2"], "_") == ("p_1_2", "moment1_0")
    assert split_longest_prefix("body.1.weight.moment1_0", ["body.1", "body.1.weight"], ".") == \
        ("body.1.weight", "moment1_0")
    assert split_longest_prefix("head.weight.moment1_0", ["body.1.weight"], ".") is None


def test_state_of_another_architecture_is_refused_on_resume(pairs_dir, tmp_path):
    run(tiny_recipe(pairs_dir, tmp_path / "a", train__iters=3))
    state = read_state(tmp_path / "a" / "ckpt" / "iter_3.state")
    layer = paddle.nn.Linear(2, 2)
    optimizer = paddle.optimizer.Adam(parameters=layer.parameters())
    with pytest.raises(UserError, match="matches no parameter of the model"):
        load_optimizer_state(optimizer, dict(layer.named_parameters()), state.optimizer)


def test_batches_depend_only_on_seed_and_iteration(pairs_dir, tmp_path):
    split = SplitDirs("train", pairs_dir / "train", pairs_dir / "train_lq")
    store = ImageStore(find_pairs(split, SCALE, 32), SCALE, tmp_path)
    full = TrainBatches(store, 3, 0, 10, 4, 32, True, True)
    late = TrainBatches(store, 3, 5, 10, 4, 32, True, True)
    for a, b in zip(full[5], late[0]):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(full[0][1], full[1][1])
    shares = [TrainBatches(store, 3, 0, 10, 4, 32, True, True, rank=r, world=2)[5] for r in (0, 1)]
    np.testing.assert_array_equal(np.concatenate([s[1] for s in shares]), full[5][1])  # distributed sampler
    lq, gt = full[2]
    assert lq.shape == (4, 3, 16, 16) and gt.shape == (4, 3, 32, 32) and lq.dtype == np.float32
    # aligned: the LR crop is the HR crop downscaled (INTER_AREA by 2 of 64 px images) up to rounding
    down = cv2.resize(gt[0].transpose(1, 2, 0), (16, 16), interpolation=cv2.INTER_AREA)
    assert np.abs(down - lq[0].transpose(1, 2, 0)).max() < 3 / 255


def test_training_images_are_decoded_once_into_data_cache_dir(pairs_dir, tmp_path):
    cache = tmp_path / "cache"
    first, second = quiet(), quiet()
    run(tiny_recipe(pairs_dir, tmp_path / "a", train__iters=1, data__cache_dir=str(cache)), console=first)
    assert "MB decoded, written now to" in first.file.getvalue()
    assert len(list(cache.rglob("pixels-*.u8"))) == 2  # the HR folder's and the LR folder's
    stamps = {p: p.stat().st_mtime_ns for p in cache.rglob("*")}
    run(tiny_recipe(pairs_dir, tmp_path / "b", train__iters=1, data__cache_dir=str(cache)), console=second)
    assert "MB decoded, read from" in second.file.getvalue()
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*")} == stamps


def test_loader_workers_do_not_change_the_batches(pairs_dir, tmp_path):
    split = SplitDirs("train", pairs_dir / "train", pairs_dir / "train_lq")
    store = ImageStore(find_pairs(split, SCALE, 32), SCALE, tmp_path)  # workers map the cache file themselves
    serial = [tuple(t.numpy() for t in b) for b in train_loader(TrainBatches(store, 1, 2, 6, 2, 32, True, True), 0)]
    parallel = [tuple(t.numpy() for t in b) for b in train_loader(TrainBatches(store, 1, 2, 6, 2, 32, True, True), 2)]
    assert len(serial) == len(parallel) == 4
    for (a, b), (c, d) in zip(serial, parallel):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)


# --- what runs only on a GPU, run on CPU as far as Paddle allows (README: "On a GPU") ---------------


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_the_amp_code_path_runs_on_cpu_and_trains_as_float32(pairs_dir, tmp_path, monkeypatch, dtype):
    """fit's AMP path (auto_cast with train.amp_dtype, GradScaler for float16), forced on here: on a CPU
    place Paddle switches auto_cast and GradScaler off itself, so the path must run and train exactly as
    float32. This catches breakage of the code GPU users run, not float16/bfloat16 numerics."""
    run(tiny_recipe(pairs_dir, tmp_path / "fp32", train__iters=3))
    monkeypatch.setattr(fit_module, "on_gpu", lambda: True)
    out = quiet()
    run(tiny_recipe(pairs_dir, tmp_path / "amp", train__iters=3, train__amp=True, train__amp_dtype=dtype), console=out)
    assert "train.amp ignored" not in out.file.getvalue()
    assert_same_weights(tmp_path / "fp32" / "last.safetensors", tmp_path / "amp" / "last.safetensors")
    with pytest.raises(UserError, match="train.amp_dtype: unknown type 'fp8'"):
        run(tiny_recipe(pairs_dir, tmp_path / "bad", train__amp_dtype="fp8"))


def test_amp_on_cpu_is_ignored_with_a_notice(pairs_dir, tmp_path):
    out = quiet()
    run(tiny_recipe(pairs_dir, tmp_path / "amp", train__iters=1, train__amp=True), console=out)
    assert "train.amp ignored: mixed precision is used on GPU only" in out.file.getvalue()


def test_to_static_trains_bit_identically_to_dynamic_mode_and_resumes(pairs_dir, tmp_path):
    """train.to_static runs the generator's training forward as a static graph (paddle.jit.to_static):
    same weights as dynamic mode, bit for bit on CPU, also across a resume."""
    run(tiny_recipe(pairs_dir, tmp_path / "dynamic", train__iters=4, checkpoint__interval=2, val__interval=2))
    run(tiny_recipe(pairs_dir, tmp_path / "static", train__iters=4, checkpoint__interval=2, val__interval=2,
                    train__to_static=True))
    assert_same_weights(tmp_path / "dynamic" / "last.safetensors", tmp_path / "static" / "last.safetensors")
    run(tiny_recipe(pairs_dir, tmp_path / "branch", train__iters=4, checkpoint__interval=2, val__interval=2,
                    train__to_static=True), resume=str(tmp_path / "dynamic" / "ckpt" / "iter_2.state"))
    assert_same_weights(tmp_path / "dynamic" / "last.safetensors", tmp_path / "branch" / "last.safetensors")
    for name, static in (("gan-dynamic", False), ("gan-static", True)):  # the GAN stage: D stays dynamic
        run(gan_recipe(pairs_dir, tmp_path / name, train__iters=2, train__to_static=static))
    assert_same_weights(tmp_path / "gan-dynamic" / "last.safetensors", tmp_path / "gan-static" / "last.safetensors")


def test_the_loader_hands_batches_to_paddles_pinned_memory_buffered_reader(pairs_dir, tmp_path):
    """On a GPU, paddle's DataLoader copies each batch to the device from pinned memory in a background
    thread (use_buffer_reader with pin_memory, Paddle's dygraph default): train_loader must keep both,
    and deliver tensors on Paddle's expected place (the GPU there, the CPU here)."""
    split = SplitDirs("train", pairs_dir / "train", pairs_dir / "train_lq")
    loader = train_loader(TrainBatches(ImageStore(find_pairs(split, SCALE, 32), SCALE, tmp_path),
                                       1, 0, 2, 2, 32, True, True), 0)
    assert loader.use_buffer_reader and loader.pin_memory
    lq, gt = next(iter(loader))
    assert str(lq.place) == f"Place({paddle.device.get_device()})" and gt.shape == [2, 3, 32, 32]


def test_pixel_losses():
    import paddle

    sr, gt = paddle.to_tensor([[0.0, 0.5]]), paddle.to_tensor([[0.1, 0.1]])
    assert float(fit_module.pixel_loss(sr, gt, "l1")) == pytest.approx(0.25)
    assert float(fit_module.pixel_loss(sr, gt, "mse")) == pytest.approx((0.01 + 0.16) / 2)


@pytest.mark.parametrize("clip", [False, True])
def test_clip_output_compares_the_clipped_output(pairs_dir, tmp_path, monkeypatch, clip):
    real, seen = fit_module.pixel_loss, []

    def spy(sr, gt, kind):
        seen.append((float(sr.min()), float(sr.max()), kind))
        return real(sr, gt, kind)

    monkeypatch.setattr(fit_module, "pixel_loss", spy)
    raw = tiny_recipe(pairs_dir, tmp_path / "run", train__iters=3, train__lr=0.05, train__loss="mse",
                      train__clip_output=clip)
    run(raw)
    assert all(kind == "mse" for _, _, kind in seen)
    lo, hi = min(s[0] for s in seen), max(s[1] for s in seen)
    if clip:
        assert 0.0 <= lo and hi <= 1.0
    else:
        assert lo < 0.0 or hi > 1.0  # lr 0.05 makes the raw output overshoot


def test_learning_rate_schedules():
    cos = SchedulerConfig(name="cosine_restart", periods=[10, 10], restart_weights=[1.0, 0.5], eta_min=0.0)
    assert learning_rate(0, 1.0, cos, 20) == 1.0
    assert learning_rate(5, 1.0, cos, 20) == pytest.approx(0.5)
    assert learning_rate(10, 1.0, cos, 20) == 0.5  # restart with weight 0.5
    assert learning_rate(15, 1.0, cos, 20) == pytest.approx(0.25)
    assert learning_rate(25, 1.0, cos, 20) == 0.0
    one = SchedulerConfig(name="cosine_restart", eta_min=0.1)
    assert learning_rate(0, 1.0, one, 100) == 1.0 and learning_rate(50, 1.0, one, 100) == pytest.approx(0.55)
    step = SchedulerConfig(name="multistep", milestones=[3, 6], gamma=0.1)
    assert [learning_rate(i, 1.0, step, 10) for i in (0, 2, 3, 5, 6, 9)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])
    assert learning_rate(7, 0.3, SchedulerConfig(name="constant"), 10) == 0.3


def test_cli_fit_bad_recipe_is_one_line_exit_2(tmp_path, capsys):
    path = tmp_path / "r.yaml"
    path.write_text("data: {root: x}\ntrain: {itres: 3}\n")
    assert main(["fit", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sr-train: error:") and "train.iters" in err[0]
    assert main(["fit", str(path), "--set", "train.itres=4"]) == 2


def test_cli_fit_runs(pairs_dir, tmp_path, capsys):
    import yaml

    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(tiny_recipe(pairs_dir, tmp_path / "run")))
    assert main(["fit", str(path), "--set", "train.iters=2", "--no-progress"]) == 0
    assert "done: 2 iterations" in capsys.readouterr().out
    assert main(["fit", str(path), "--set", "train.iters=3", "--resume", "auto", "--no-progress"]) == 0
    assert read_state(tmp_path / "run" / "ckpt" / "iter_3.state").iteration == 3


@pytest.mark.slow
@pytest.mark.parametrize("to_static", [False, True])
def test_two_process_data_parallel_equals_one_process(pairs_dir, tmp_path, to_static):
    """`python -m paddle.distributed.launch --nproc_per_node 2 sr-train fit ...` on CPU (gloo): each
    process trains on half of every batch, gradients are averaged, rank 0 writes; the weights equal
    a one-process run's up to float summation order (with train.to_static too: DataParallel around
    the static training forward)."""
    import subprocess
    import sys

    import yaml

    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe(pairs_dir, tmp_path / "two", train__iters=4, train__batch_size=4,
                                                 train__to_static=to_static)))
    script = Path(sys.executable).parent / "sr-train"
    cmd = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir",
           str(tmp_path / "log"), str(script), "fit", str(recipe), "--no-progress"]
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "2 process(es)" in (tmp_path / "log" / "workerlog.0").read_text()
    assert main(["fit", str(recipe), "--set", f"run_dir={tmp_path / 'one'}", "--set", "train.processes=1",
                 "--set", "train.to_static=false", "--no-progress"]) == 0
    two, one = (read_weights_file(tmp_path / d / "last.safetensors").state for d in ("two", "one"))
    for k in one:
        np.testing.assert_allclose(two[k], one[k], atol=1e-6, err_msg=k)


def test_fit_processes_default_to_the_cores_that_divide_the_batch(pairs_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("PADDLE_TRAINERS_NUM", raising=False)
    recipe = recipe_from_dict(tiny_recipe(pairs_dir, tmp_path / "r", train__batch_size=6, train__processes=0), "r.yaml")

    def with_cores(cores: int) -> int:
        monkeypatch.setattr(sr_train.launch, "default_workers", lambda: cores)
        return fit_processes(recipe)

    assert [with_cores(cores) for cores in (1, 2, 3, 4, 5, 8)] == [1, 2, 3, 3, 3, 6]
    recipe.train.processes = 2
    assert with_cores(8) == 2
    recipe.train.processes = 4
    with pytest.raises(UserError, match="train.batch_size 6 is not divisible by train.processes 4"):
        fit_processes(recipe)
    monkeypatch.setenv("PADDLE_TRAINERS_NUM", "2")  # already started by paddle.distributed.launch
    assert fit_processes(recipe) == 1


def test_sr_train_fit_spawns_data_parallel_processes_itself(pairs_dir, tmp_path, capfd):
    """`sr-train fit` with train.processes 2 starts two processes (paddle.distributed.spawn, gloo) with
    no launcher: same weights as one process up to float summation order, rank 0 alone writes, and a
    data error found in the processes is one line, exit 2."""
    import yaml

    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe(pairs_dir, tmp_path / "two", train__iters=4, train__batch_size=4)))
    assert main(["fit", str(recipe), "--set", "train.processes=2", "--no-progress"]) == 0
    assert "2 process(es)" in capfd.readouterr().err
    assert main(["fit", str(recipe), "--set", f"run_dir={tmp_path / 'one'}", "--set", "train.processes=1",
                 "--set", "train.to_static=false", "--no-progress"]) == 0
    two, one = (read_weights_file(tmp_path / d / "last.safetensors").state for d in ("two", "one"))
    for k in one:
        np.testing.assert_allclose(two[k], one[k], atol=1e-6, err_msg=k)
    assert main(["fit", str(recipe), "--set", "train.processes=2", "--set", "train.patch_size=512",
                 "--set", f"run_dir={tmp_path / 'bad'}", "--no-progress"]) == 2
    err = capfd.readouterr().err
    assert err.count("sr-train: error:") == 1 and "patch_size" in err and "Traceback" not in err


@pytest.mark.slow
def test_spawned_two_process_resume_is_bit_identical(pairs_dir, tmp_path):
    """Two spawned processes: 2 iterations then a resume for 2 more == 4 straight, bit for bit (constant
    lr, so the schedule does not depend on train.iters)."""
    import yaml

    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe(pairs_dir, tmp_path / "a", train__iters=4, train__batch_size=4,
                                                 train__processes=2, checkpoint__interval=2, val__interval=2,
                                                 train__scheduler={"name": "constant"})))
    assert main(["fit", str(recipe), "--set", "train.iters=2", "--no-progress"]) == 0
    assert main(["fit", str(recipe), "--resume", "auto", "--no-progress"]) == 0
    assert main(["fit", str(recipe), "--set", f"run_dir={tmp_path / 'b'}", "--no-progress"]) == 0
    assert_same_weights(tmp_path / "a" / "last.safetensors", tmp_path / "b" / "last.safetensors")


@pytest.mark.slow
def test_spawned_run_survives_a_validation_longer_than_gloos_timeout(pairs_dir, tmp_path):
    """Rank 0 validating for 45 s (a sitecustomize slows every validation down) while rank 1 waits:
    gloo's own barrier timed out after about 30 s; the store-polling barrier waits as long as needed."""
    import yaml

    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(
        "import time, sr_train.fit as fit\n"
        "slow = fit.score_model\n"
        "fit.score_model = lambda *a, **k: (time.sleep(45), slow(*a, **k))[1]\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe(pairs_dir, tmp_path / "run", train__iters=2, train__batch_size=2,
                                                 train__processes=2, val__interval=1)))
    env = {**os.environ, "PYTHONPATH": f"{hooks}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run([sys.executable, "-m", "sr_train.cli", "fit", str(recipe), "--no-progress"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "run" / "last.safetensors").is_file()


# ---------------------------------------------------------------- GAN stage

def gan_recipe(pairs_dir: Path, run_dir: Path, disc: str = "unet", **overrides) -> dict:
    raw = tiny_recipe(pairs_dir, run_dir, **overrides)
    raw["discriminator"] = {"arch": disc, "nf": 4}
    raw["loss"] = {"pixel": {"weight": 0.01},
                   "perceptual": {"weight": 1.0, "layer": "conv2_2", "weights": "random-for-tests"},
                   "gan": {"weight": 0.1}}
    return raw


def test_gan_stage_logs_every_term_and_saves_both_networks(pairs_dir, tmp_path):
    run(gan_recipe(pairs_dir, tmp_path / "run", train__iters=4, checkpoint__interval=2, val__interval=4))
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    terms = {"loss", "l_pix", "l_percep", "l_g_gan", "l_d_real", "l_d_fake", "d_real", "d_fake"}
    assert all(terms <= set(r) for r in rows if "l_pix" in r) and len([r for r in rows if "l_pix" in r]) == 4
    first = [r for r in rows if "l_pix" in r][0]
    assert first["loss"] == pytest.approx(first["l_pix"] + first["l_percep"] + first["l_g_gan"])
    s2, s4 = (read_state(tmp_path / "run" / "ckpt" / f"iter_{i}.state") for i in (2, 4))
    assert s4.disc is not None and s4.optimizer_d and "conv0.weight" in s4.disc
    assert not np.array_equal(s2.disc["conv0.weight"], s4.disc["conv0.weight"])  # D trains
    assert read_weights_file(tmp_path / "run" / "last.safetensors").meta["stage"] == "gan"
    assert "conv0.weight" not in read_weights_file(tmp_path / "run" / "last.safetensors").state  # G only


@pytest.mark.parametrize("disc,patch", [("unet", 32), ("vgg128", 128)])
def test_gan_resume_is_bit_identical(pairs_dir, tmp_path, disc, patch):
    """Both networks, both optimisers, BatchNorm / spectral-norm buffers: resumed == straight."""
    raw = gan_recipe(pairs_dir, tmp_path / "straight", disc, train__iters=4, train__patch_size=patch,
                     train__ema=0.5, checkpoint__interval=2, val__interval=4)
    if patch > 64:  # 64 px images: use the srdata-free folders with bigger crops
        pytest.importorskip("cv2")
        big = tmp_path / "big"
        for split in ("train", "val"):
            for side, size in (("", 128), ("_lq", 64)):
                (big / f"{split}{side}").mkdir(parents=True)
                for src in sorted((pairs_dir / f"{split}{side}").iterdir()):
                    img = cv2.imread(str(src))
                    cv2.imwrite(str(big / f"{split}{side}" / src.name), cv2.resize(img, (size, size)))
        raw["data"] = tiny_recipe(big, tmp_path)["data"]
    run(raw)
    branched = dict(raw, run_dir=str(tmp_path / "branch"))
    run(branched, resume=str(tmp_path / "straight" / "ckpt" / "iter_2.state"))
    assert_same_weights(tmp_path / "straight" / "last.safetensors", tmp_path / "branch" / "last.safetensors")
    a, b = (read_state(tmp_path / d / "ckpt" / "iter_4.state") for d in ("straight", "branch"))
    for k in a.disc:
        np.testing.assert_array_equal(a.disc[k], b.disc[k], err_msg=k)
    for k in a.optimizer_d:
        np.testing.assert_array_equal(a.optimizer_d[k], b.optimizer_d[k], err_msg=k)


def test_gan_recipe_checks(pairs_dir, tmp_path):
    raw = gan_recipe(pairs_dir, tmp_path / "run")
    del raw["loss"]["gan"]
    with pytest.raises(UserError, match="needs both a discriminator section and loss.gan"):
        run(raw)
    with pytest.raises(UserError, match="vgg128 takes 128"):
        run(gan_recipe(pairs_dir, tmp_path / "run", "vgg128"))
    raw = gan_recipe(pairs_dir, tmp_path / "run")
    raw["loss"]["perceptual"]["weights"] = None
    with pytest.raises(UserError, match="loss.perceptual.weights"):
        run(raw)


def test_psnr_state_cannot_be_resumed_as_gan(pairs_dir, tmp_path):
    run(tiny_recipe(pairs_dir, tmp_path / "psnr", train__iters=3))
    with pytest.raises(UserError, match="model.init_from"):
        run(gan_recipe(pairs_dir, tmp_path / "gan"), resume=str(tmp_path / "psnr" / "ckpt" / "iter_3.state"))


def test_gan_stage_starts_from_psnr_weights(pairs_dir, tmp_path):
    run(tiny_recipe(pairs_dir, tmp_path / "psnr", train__iters=3))
    raw = gan_recipe(pairs_dir, tmp_path / "gan", train__iters=1, train__lr=0.0)
    raw["model"]["init_from"] = str(tmp_path / "psnr" / "last.safetensors")
    raw["train"]["scheduler"] = {"name": "constant"}
    run(raw)
    assert_same_weights(tmp_path / "psnr" / "last.safetensors", tmp_path / "gan" / "last.safetensors")  # lr 0


def test_paddlegan_config_trains_directly(pairs_dir, tmp_path, capsys):
    """A PaddleGAN SR config (shortened esrgan_psnr_x4_div2k.yaml) goes straight to `sr-train fit`."""
    from test_recipe import PADDLEGAN_PSNR

    text = PADDLEGAN_PSNR
    for old, new in (("data/DIV2K/DIV2K_train_HR_sub", str(pairs_dir / "train")),
                     ("data/DIV2K/DIV2K_train_LR_bicubic/X4_sub", str(pairs_dir / "train_lq")),
                     ("data/Set14/GTmod12", str(pairs_dir / "val")), ("data/Set14/LRbicx4", str(pairs_dir / "val_lq")),
                     ("scale: 4", "scale: 2"), ("output_dir: output_dir", f"output_dir: {tmp_path}")):
        text = text.replace(old, new)
    config = tmp_path / "esrgan_psnr_x2.yaml"
    config.write_text(text)
    argv = ["fit", str(config), "--no-progress", "--set", "train.iters=2", "--set", "model.nb=1", "--set", "model.nf=8",
            "--set", "model.gc=4", "--set", "train.patch_size=32", "--set", "data.workers=0"]
    assert main(argv) == 0
    arch, _ = read_weights(tmp_path / "esrgan_psnr_x2" / "last.safetensors")
    assert (arch["arch"], arch["nb"], arch["scale"]) == ("rrdbnet", 1, 2)
    assert "min_max ignored" in capsys.readouterr().err


@pytest.mark.slow
def test_kill_9_at_any_moment_leaves_a_resumable_run(pairs_dir, tmp_path):
    """SIGKILL a real `sr-train fit` that checkpoints every iteration, at several moments; each time
    `--resume auto` must continue (never a state it cannot read)."""
    import signal
    import subprocess
    import sys
    import time

    import yaml

    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe(pairs_dir, tmp_path / "run", train__iters=400,
                                                 checkpoint__interval=1, checkpoint__keep_states=3,
                                                 val__interval=50)))
    script = Path(sys.executable).parent / "sr-train"
    rng = np.random.default_rng(0)
    for attempt in range(3):
        proc = subprocess.Popen([str(script), "fit", str(recipe), "--no-progress", "--resume", "auto"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(4 + float(rng.uniform(0, 3)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        states = list_states(tmp_path / "run")
        assert states, f"attempt {attempt}: no state written before the kill"
        out = quiet()
        raw = tiny_recipe(pairs_dir, tmp_path / "run", train__iters=states[0][0] + 1, checkpoint__interval=1,
                          checkpoint__keep_states=3, val__interval=50)
        result = run(raw, resume="auto", console=out)
        assert result.iteration == states[0][0] + 1 or result.skipped_states
