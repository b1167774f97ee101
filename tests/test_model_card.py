"""Model cards: a model trained on a `srdata build` dataset, exported with `--eval`, carries everything
needed to share it (architecture, scale, parameters, data and its hash, iterations, scores against
bicubic, licence, srkit version), in model_card.json and README.md."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

import srdata
from sr_train.cli import main
from sr_train.evaluate import evaluate
from sr_train.model_card import build_card, render_markdown
from sr_train.provenance import TRAINING_KEY, data_record
from sr_train.weights.foreign import read_foreign_detailed
from sr_train.weights.load import model_state
from sr_train.weights.srkit import read_weights_file, save_weights
from srdata.build import build_dataset
from helpers import COMPACT_ARCH, make_model, make_raw, options, run


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A x2 Compact trained 4 iterations (EMA on) on an 8-image dataset made by `srdata build`."""
    root = tmp_path_factory.mktemp("card")
    ds = root / "ds"
    build_dataset(options(make_raw(root / "raw", 8), ds, val=2, test=2, blur=0.8), progress=False)
    recipe = {"seed": 1, "run_dir": str(root / "myrun"), "data": {"root": str(ds)},
              "model": {"arch": "compact", "nf": 8, "nc": 1, "skip": "nearest"},
              "train": {"iters": 4, "batch_size": 2, "patch_size": 32, "lr": 1e-3, "ema": 0.9},
              "val": {"interval": 4}, "checkpoint": {"interval": 4}, "log": {"interval": 1}}
    run(recipe)
    return root, ds


def test_card_of_a_trained_model_says_what_it_is_how_it_was_trained_and_how_well_it_does(trained, tmp_path, capsys):
    root, ds = trained
    weights = root / "myrun" / "best.safetensors"
    out = tmp_path / "share"
    argv = ["export", "--weights", str(weights), "--format", "basicsr", "--out", str(out), "--license", "CC-BY-4.0",
            "--eval", str(ds), "--eval-split", "test", "--no-progress"]
    assert main(argv) == 0, capsys.readouterr().err
    card = json.loads((out / "model_card.json").read_text())
    saved = read_weights_file(weights)
    assert card["name"] == "myrun (best)"
    assert card["architecture"]["name"] == "SRVGGNetCompact (Real-ESRGAN Compact)"
    assert card["architecture"]["basicsr"] == {"class": "SRVGGNetCompact", "num_in_ch": 3, "num_out_ch": 3,
                                               "num_feat": 8, "num_conv": 1, "upscale": 2, "act_type": "prelu"}
    assert card["scale"] == 2 and card["parameters"] == sum(v.size for v in saved.ema.values())
    assert card["license"] == "CC-BY-4.0" and card["srkit_version"] == srdata.__version__
    assert card["weights"]["ema"] is True
    assert card["weights"]["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert [(f["name"], f["sha256"]) for f in card["files"]] == [
        (name, hashlib.sha256((out / name).read_bytes()).hexdigest()) for name in ("model.pth", "model.safetensors")]

    training = card["training"]
    assert (training["iterations"], training["stage"]) == (4, "psnr")
    assert training["data"]["root"] == str(ds)
    assert training["data"]["dataset_json_sha256"] == hashlib.sha256((ds / "dataset.json").read_bytes()).hexdigest()
    dataset = json.loads((ds / "dataset.json").read_text())
    assert training["data"]["build_settings"] == dataset["settings"] and training["data"]["counts"]["val"] == 2
    assert training["recipe"]["train"]["ema"] == 0.9 and training["recipe"]["model"]["skip"] == "nearest"

    val, test = card["evaluation"]
    assert (val["split"], val["iteration"], val["images"]) == ("val", 4, 2)
    assert val["psnr"] == saved.meta["val"]["val_psnr"] and val["bicubic_ssim"] == saved.meta["val"]["bicubic_ssim"]
    report = evaluate(str(ds), str(weights), split="test", progress=False)
    assert (test["split"], test["images"], test["data"]) == ("test", 2, str(ds))
    assert test["psnr"] == report["mean"]["psnr"] and test["ssim"] == report["mean"]["ssim"]
    assert test["gain_db"] == pytest.approx(report["mean"]["psnr"] - report["mean"]["bicubic_psnr"])

    readme = (out / "README.md").read_text()
    for fact in ("x2", "CC-BY-4.0", f"srkit {srdata.__version__}", training["data"]["dataset_json_sha256"],
                 "blur 0.8", "SRVGGNetCompact(num_in_ch=3", "`params_ema`", f"{test['psnr']:.3f}", f"{val['psnr']:.3f}",
                 f"{card['parameters']:,}", "iterations: 4 (psnr stage)"):
        assert fact in readme, fact


def test_every_export_format_gets_a_card_and_licence_defaults_to_unspecified(trained, tmp_path, capsys):
    root, _ = trained
    out = tmp_path / "onnx"
    assert main(["export", "--weights", str(root / "myrun" / "last.safetensors"), "--format", "onnx",
                 "--out", str(out)]) == 0
    card = json.loads((out / "model_card.json").read_text())
    assert card["license"] == "unspecified" and [f["name"] for f in card["files"]] == ["model.onnx"]
    assert [e["source"] for e in card["evaluation"]] == ["validation during training"]
    assert "| licence | unspecified |" in (out / "README.md").read_text()


def test_foreign_weights_get_a_card_that_says_training_is_unknown(trained, tmp_path, capsys):
    root, _ = trained
    first = tmp_path / "first"
    assert main(["export", "--weights", str(root / "myrun" / "best.safetensors"), "--format", "basicsr",
                 "--out", str(first)]) == 0
    again = tmp_path / "again"
    assert main(["export", "--weights", str(first / "model.pth"), "--format", "basicsr", "--out", str(again)]) == 0
    card = json.loads((again / "model_card.json").read_text())
    assert card["training"] is None and card["evaluation"] == [] and card["weights"]["ema"] is True
    assert "Not recorded" in (again / "README.md").read_text()
    assert (again / "model.pth").read_bytes() == (first / "model.pth").read_bytes()  # same tensors, same bytes


def test_an_online_degradation_the_recipe_declares_is_shown(tmp_path):
    """`data.degrade` (a recipe's online degradation pipeline) travels in the training record."""
    pipeline = {"preset": "realesrgan", "seed": 3}
    record = data_record({"train": {"gt": "hr", "lq": "lr"}, "val": {"gt": "vhr", "lq": "vlr"}, "degrade": pipeline})
    assert record["degrade"] == pipeline and record["folders"]["train"] == {"gt": "hr", "lq": "lr"}
    found = read_foreign_detailed(_tiny_weights(tmp_path, record))
    readme = render_markdown(build_card(tmp_path / "w.safetensors", found, [], "MIT"))
    assert "online degradation (recipe `data.degrade`)" in readme and "realesrgan" in readme


def _tiny_weights(tmp_path, data: dict):
    path = tmp_path / "w.safetensors"
    meta = {"iteration": 10, TRAINING_KEY: {"iterations": 10, "stage": "psnr", "recipe_file": "r.yaml", "recipe": {},
                                           "data": data, "srkit_version": srdata.__version__}}
    save_weights(path, model_state(make_model(COMPACT_ARCH)), COMPACT_ARCH, meta=meta)
    return path


def test_infinite_scores_are_null_in_json_and_n_a_in_the_readme(tmp_path):
    found = read_foreign_detailed(_tiny_weights(tmp_path, {}))
    found.meta["val"] = {"iter": 10, "val_psnr": 30.0, "val_ssim": 0.9, "bicubic_psnr": None, "bicubic_ssim": 0.8}
    card = build_card(tmp_path / "w.safetensors", found, [], "MIT")
    assert card["evaluation"][0]["gain_db"] is None
    assert "| n/a |" in render_markdown(card) and np.isfinite(card["evaluation"][0]["psnr"])
