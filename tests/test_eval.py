"""`sr-train eval`: per-image scores vs bicubic, the JSON schema, saved images, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

import sr_train.evaluate

from sr_train.cli import main
from sr_train.evaluate import evaluate
from sr_train.models import Compact, RRDBNet, init_weights
from sr_train.weights.load import model_state
from sr_train.weights.srkit import save_weights
from srdata.metrics import psnr


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, samples_dir) -> Path:
    """A srdata-style x2 dataset: val (1) and test (2) pairs cut from the samples."""
    ds = tmp_path_factory.mktemp("ds")
    files = sorted(samples_dir.glob("*.png"))[:3]
    for i, path in enumerate(files):
        img = cv2.imread(str(path))[60:140, 100:196]  # 96 x 80 BGR
        split = "val" if i == 0 else "test"
        (ds / split).mkdir(exist_ok=True)
        (ds / f"{split}_X2").mkdir(exist_ok=True)
        cv2.imwrite(str(ds / split / f"img{i}.png"), img)
        cv2.imwrite(str(ds / f"{split}_X2" / f"img{i}.png"), cv2.resize(img, (48, 40), interpolation=cv2.INTER_AREA))
    (ds / "dataset.json").write_text(json.dumps({"scale": 2, "version": "0.1.0", "settings": {}, "counts": {}}))
    return ds


@pytest.fixture(scope="module")
def untrained(tmp_path_factory) -> Path:
    """A fresh Compact: its output is the bicubic up-sampling of the input."""
    model = Compact(nf=8, nc=1, scale=2)
    init_weights(model, 0)
    path = tmp_path_factory.mktemp("w") / "compact.safetensors"
    save_weights(path, model_state(model), dict(model.arch))
    return path


def test_eval_json_schema_and_bicubic_equivalence(dataset, untrained, tmp_path, capsys):
    out = tmp_path / "scores.json"
    assert main(["eval", str(dataset), "--weights", str(untrained), "--json", str(out), "--no-progress"]) == 0
    report = json.loads(out.read_text())
    assert set(report) == {"images", "mean", "crop_border", "y_channel", "weights", "split"}
    assert set(report["mean"]) == {"psnr", "ssim", "bicubic_psnr", "bicubic_ssim"}
    assert [set(i) for i in report["images"]] == [{"name", "psnr", "ssim", "bicubic_psnr", "bicubic_ssim"}] * 2
    assert [i["name"] for i in report["images"]] == ["img1", "img2"]
    assert (report["crop_border"], report["y_channel"], report["split"]) == (2, True, "test")
    for image in report["images"]:  # the untrained compact IS bicubic, up to 8-bit rounding
        assert image["psnr"] == pytest.approx(image["bicubic_psnr"], abs=0.1)
    stdout = capsys.readouterr().out
    assert "img1" in stdout and "gain over bicubic" in stdout


def test_eval_scores_match_srdata_metrics_and_saved_images(dataset, tmp_path):
    model = RRDBNet(nf=8, nb=1, gc=4, scale=2)
    init_weights(model, 1)
    weights = tmp_path / "r.safetensors"
    save_weights(weights, model_state(model), dict(model.arch))
    report = evaluate(str(dataset), str(weights), split="val", save_images=str(tmp_path / "sr"), tile=0, progress=False)
    saved = cv2.cvtColor(cv2.imread(str(tmp_path / "sr" / "img0.png")), cv2.COLOR_BGR2RGB)
    hr = cv2.cvtColor(cv2.imread(str(dataset / "val" / "img0.png")), cv2.COLOR_BGR2RGB)
    assert saved.shape == hr.shape
    assert report["images"][0]["psnr"] == pytest.approx(psnr(saved, hr, crop_border=2, y_channel=True))
    tiled = evaluate(str(dataset), str(weights), split="val", tile=16, progress=False)
    assert tiled["images"][0]["psnr"] == pytest.approx(report["images"][0]["psnr"], abs=0.5)


def test_eval_takes_a_recipe(dataset, untrained, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"data": {"root": str(dataset)}, "val": {"y_channel": False, "crop_border": 0}}))
    report = evaluate(str(recipe), str(untrained), split="val", progress=False)
    assert (report["y_channel"], report["crop_border"], report["split"]) == (False, 0, "val")
    assert len(report["images"]) == 1


@pytest.mark.parametrize("args,match", [
    (["--split", "train"], "no train/ and train_X2/"),
    (["--weights", "missing.safetensors"], "missing.safetensors"),
])
def test_eval_errors_are_one_line(dataset, untrained, capsys, args, match):
    argv = ["eval", str(dataset), "--weights", str(untrained), "--no-progress"] + args
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0]


def test_eval_refuses_a_model_of_another_scale(dataset, tmp_path, capsys):
    model = Compact(nf=8, nc=1, scale=4)
    weights = tmp_path / "x4.safetensors"
    save_weights(weights, model_state(model), dict(model.arch))
    assert main(["eval", str(dataset), "--weights", str(weights), "--no-progress"]) == 2
    assert "x4 model but the data is x2" in capsys.readouterr().err


def test_eval_json_has_no_infinity(tmp_path, untrained):
    """Identical images have infinite PSNR; the JSON file says null instead of the invalid Infinity."""
    ds = tmp_path / "flat"
    for split, size in (("test", (32, 32)), ("test_X2", (16, 16))):
        (ds / split).mkdir(parents=True)
        cv2.imwrite(str(ds / split / "a.png"), np.full((*size, 3), 128, np.uint8))
    (ds / "dataset.json").write_text(json.dumps({"scale": 2}))
    out = tmp_path / "s.json"
    assert main(["eval", str(ds), "--weights", str(untrained), "--json", str(out), "--no-progress"]) == 0
    assert json.loads(out.read_text())["images"][0]["bicubic_psnr"] is None


def test_eval_too_small_image_is_a_user_error(tmp_path, untrained, capsys):
    ds = tmp_path / "tiny"
    for split, size in (("test", (8, 8)), ("test_X2", (4, 4))):
        (ds / split).mkdir(parents=True)
        cv2.imwrite(str(ds / split / "a.png"), np.full((*size, 3), 128, np.uint8))
    (ds / "dataset.json").write_text(json.dumps({"scale": 2}))
    assert main(["eval", str(ds), "--weights", str(untrained), "--no-progress"]) == 2
    assert "a.png: cannot be scored" in capsys.readouterr().err


def test_eval_decodes_each_pair_once_and_bicubic_is_srdata_metrics(dataset, untrained, monkeypatch):
    from srdata.metrics import bicubic_baseline

    decoded = []
    real = sr_train.evaluate.read_png_rgb
    monkeypatch.setattr(sr_train.evaluate, "read_png_rgb", lambda path: decoded.append(path) or real(path))
    report = evaluate(str(dataset), str(untrained), progress=False)
    assert len(decoded) == len(set(decoded)) == 4  # 2 test pairs, HR and LR once each
    for image in report["images"]:
        hr = cv2.cvtColor(cv2.imread(str(dataset / "test" / f"{image['name']}.png")), cv2.COLOR_BGR2RGB)
        lr = cv2.cvtColor(cv2.imread(str(dataset / "test_X2" / f"{image['name']}.png")), cv2.COLOR_BGR2RGB)
        assert (image["bicubic_psnr"], image["bicubic_ssim"]) == bicubic_baseline(hr, lr, 2, True)


def test_eval_help_states_the_real_default_tile(capsys):
    from sr_train.tiling import DEFAULT_TILE

    assert main(["eval", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.replace("│", " ").split())  # rich wraps inside a box
    assert f"else {DEFAULT_TILE}." in help_text
