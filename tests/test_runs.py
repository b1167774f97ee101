"""`sr-train runs`: runs side by side (recipe differences, iterations, best PSNR/SSIM, gain over
bicubic, time) with one plot of their validation curves."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import pytest

from sr_train.cli import main
from sr_train.plots import compare_figure
from sr_train.run_files import read_metrics
from helpers import blob_image, run, tiny_recipe, write_png


@pytest.fixture(scope="module")
def textured_pairs(tmp_path_factory) -> Path:
    """Pairs without flat images (bicubic's PSNR stays finite): 64 px HR, LR = INTER_AREA / 2."""
    root = tmp_path_factory.mktemp("textured")
    for i in range(6):
        hr = cv2.cvtColor(blob_image(i, 64, 64), cv2.COLOR_BGR2RGB)
        split = "train" if i < 4 else "val"
        write_png(root / split / f"b{i}.png", hr)
        write_png(root / f"{split}_lq" / f"b{i}.png", cv2.resize(hr, (32, 32), interpolation=cv2.INTER_AREA))
    return root


def test_runs_compares_recipes_scores_and_time(textured_pairs, tmp_path, capsys):
    for name, lr in (("slow", 1e-4), ("fast", 2e-3)):
        run(tiny_recipe(textured_pairs, tmp_path / name, train__lr=lr))
    report_path, plot = tmp_path / "runs.json", tmp_path / "runs.png"
    argv = ["runs", str(tmp_path / "slow"), str(tmp_path / "fast"), "--json", str(report_path), "--plot", str(plot)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "train.lr" in out and "0.0001" in out and "0.002" in out
    report = json.loads(report_path.read_text())
    assert report["differing_keys"] == ["train.lr"]
    for entry, name, lr in zip(report["runs"], ("slow", "fast"), (1e-4, 2e-3)):
        rows = read_metrics(tmp_path / name)
        vals = [r for r in rows if "val_psnr" in r]
        best = max(vals, key=lambda r: r["val_psnr"])
        assert entry["recipe"] == {"train.lr": lr} and entry["iterations"] == 6
        assert entry["best_psnr"] == best["val_psnr"] and entry["best_psnr_iter"] == best["iter"]
        assert entry["best_ssim"] == max(r["val_ssim"] for r in vals)
        assert entry["gain_db"] == pytest.approx(best["val_psnr"] - best["bicubic_psnr"])
        assert entry["train_seconds"] == pytest.approx(sum(1 / r["it_per_s"] for r in rows if "loss" in r))
    picture = cv2.imread(str(plot))
    assert picture is not None and picture.shape == (360, 920, 3)


def test_runs_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["runs", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sr-train: error: ") and "metrics.jsonl" in err and str(tmp_path) in err


def test_runs_of_a_copied_run_reports_no_differences(textured_pairs, tmp_path, capsys):
    run(tiny_recipe(textured_pairs, tmp_path / "a", train__iters=3))
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    assert main(["runs", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    assert "do not differ" in capsys.readouterr().out


def test_compare_figure_draws_one_line_per_run_and_a_shared_bicubic():
    run_a = [{"iter": 5, "val_psnr": 30.0, "val_ssim": 0.8, "bicubic_psnr": 28.0, "bicubic_ssim": 0.7}]
    run_b = [{"iter": 5, "val_psnr": 31.0, "val_ssim": 0.9, "bicubic_psnr": 28.0, "bicubic_ssim": 0.7}]
    psnr, _ = compare_figure([("a", run_a), ("b", run_b)]).axes
    assert [line.get_label() for line in psnr.lines] == ["a", "b", "bicubic"]
    run_c = [{"iter": 5, "val_psnr": 29.0, "val_ssim": 0.8, "bicubic_psnr": 27.0, "bicubic_ssim": 0.7}]
    psnr, _ = compare_figure([("a", run_a), ("c", run_c)]).axes  # other val images: each its own bicubic
    assert [line.get_label() for line in psnr.lines] == ["a", "a: bicubic", "c", "c: bicubic"]
