"""srdata build --degrade PIPELINE: recorded per image, reproducible, inspectable, remade only as needed."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np

from helpers import inspect_dataset, make_raw, manifest, options, tree
from srdata.build import build_dataset
from srdata.cli import main
from srdata.degradations.pipeline import Record, preset_path, shorthand_pipeline, source_seed

PIPELINE = """\
name: mine
steps:
  - {op: blur, kernels: {iso: 1, aniso: 1}, sigma: [0.4, 1.6]}
  - {op: resize, to: lr, filters: [area, bicubic]}
  - {op: noise, p: 0.7, sigma: [1, 8], grey_prob: 0.5}
  - {op: jpeg, quality: [50, 90]}
"""


def read_bgr(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_COLOR)


def test_manifest_records_the_fired_steps_and_the_pipeline(tmp_path):
    src = make_raw(tmp_path / "raw", 6, size=(160, 136))
    build_dataset(options(src, tmp_path / "ds", degrade="realesrgan", scale=4, seed=2), progress=False)
    sha = hashlib.sha256(preset_path("realesrgan").read_bytes()).hexdigest()
    lines = [line for line in manifest(tmp_path / "ds") if line["lr"]]
    assert len(lines) == 6
    for line in lines:
        record = line["degradation"]
        assert record["pipeline"] == "realesrgan" and record["pipeline_sha256"] == sha
        assert record["scale"] == 4 and isinstance(record["seed"], int)
        assert [s["op"] for s in record["steps"]][:4] == ["blur", "resize", "noise", "jpeg"]
        hr, lr = read_bgr(tmp_path / "ds" / line["hr"]), read_bgr(tmp_path / "ds" / line["lr"])
        assert lr.shape == (34, 40, 3)
        assert np.array_equal(lr, Record.from_json(record).apply(hr))
    assert len({json.dumps(line["degradation"]["steps"]) for line in lines}) == 6  # drawn per image
    settings = json.loads((tmp_path / "ds" / "dataset.json").read_text())["settings"]
    assert settings["degrade"] == "realesrgan" and settings["pipeline"]["sha256"] == sha


def test_same_bytes_for_any_worker_count(tmp_path):
    src = make_raw(tmp_path / "raw", 8)
    for workers, out in ((1, "a"), (2, "b")):
        build_dataset(options(src, tmp_path / out, degrade="anime-video", workers=workers), progress=False)
    assert tree(tmp_path / "a") == tree(tmp_path / "b")


def test_changing_the_pipeline_remakes_only_lrs(tmp_path):
    src = make_raw(tmp_path / "raw", 5)
    pipeline = tmp_path / "mine.yaml"
    pipeline.write_text(PIPELINE)
    out = tmp_path / "ds"
    first = build_dataset(options(src, out, degrade=str(pipeline), val=0, test=0), progress=False)
    assert first.written == 10
    before = tree(out)
    pipeline.write_text("# a comment changes the file, not what is drawn\n" + PIPELINE)
    again = build_dataset(options(src, out, degrade=str(pipeline), val=0, test=0), progress=False)
    assert again.written == 0 and again.decoded == 0
    pipeline.write_text(PIPELINE.replace("quality: [50, 90]", "quality: [20, 30]"))
    changed = build_dataset(options(src, out, degrade=str(pipeline), val=0, test=0), progress=False)
    after = tree(out)
    assert changed.written == 5  # the five LRs; no HR
    hrs = [name for name in before if name.startswith("train/")]
    lrs = [name for name in before if name.startswith("train_X2/")]
    assert all(before[n] == after[n] for n in hrs) and all(before[n] != after[n] for n in lrs)
    assert {s["quality"] for line in manifest(out) for s in line["degradation"]["steps"] if s["op"] == "jpeg"} <= set(
        range(20, 31))


def test_inspect_reapplies_records_and_flags_a_changed_lr(tmp_path):
    src = make_raw(tmp_path / "raw", 5, size=(160, 136))
    out = tmp_path / "ds"
    build_dataset(options(src, out, degrade="realesrgan", scale=4, val=0, test=0), progress=False)
    report, _ = inspect_dataset(out)
    assert [p for p in report.problems if p.kind == "manifest_mismatch"] == []
    line = manifest(out)[0]
    lr = read_bgr(out / line["lr"])
    lr[3, 4] = 255 - lr[3, 4]
    cv2.imwrite(str(out / line["lr"]), lr)
    report, _ = inspect_dataset(out)
    flagged = [p for p in report.problems if p.kind == "manifest_mismatch"]
    assert len(flagged) == 1 and flagged[0].files == [line["hr"], line["lr"]]
    assert "recorded degradation" in flagged[0].detail and "in 1 pixels" in flagged[0].detail


def test_records_from_before_pipelines_are_read_as_the_same_steps():
    """Manifests of the fixed recipe (scale, blur_sigma, ..., seed) re-apply as the shorthand does."""
    record = shorthand_pipeline(1.2, "area", (2.0, 8.0), (40, 80)).draw(source_seed(3, "ab" * 32), 4)
    noise = next(s for s in record.steps if s["op"] == "noise")
    jpeg = next(s for s in record.steps if s["op"] == "jpeg")
    old = {"scale": 4, "blur_sigma": 1.2, "blur_ksize": 9, "filter": "area", "noise_sigma": noise["sigma"],
           "jpeg_quality": jpeg["quality"], "seed": record.seed}
    assert Record.from_json(old).pixels_key() == record.pixels_key()


def test_degrade_and_shorthand_options_exclude_each_other(tmp_path, capsys):
    src = make_raw(tmp_path / "raw", 2)
    args = ["build", "--src", str(src), "--out", str(tmp_path / "ds"), "--degrade", "seed"]
    assert main(args + ["--blur", "1.2"]) == 2
    assert "--degrade seed replaces --blur/--down/--noise/--jpeg" in capsys.readouterr().err
    assert not (tmp_path / "ds").exists()


def test_a_bad_pipeline_file_stops_the_build_before_writing(tmp_path, capsys):
    src = make_raw(tmp_path / "raw", 2)
    bad = tmp_path / "bad.yaml"
    bad.write_text(PIPELINE.replace("p: 0.7", "p: 7"))
    assert main(["build", "--src", str(src), "--out", str(tmp_path / "ds"), "--degrade", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: step 3 (noise): p: 7 is not a probability" in err and err.count("\n") == 1
    assert not (tmp_path / "ds").exists()
