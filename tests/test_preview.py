"""`srdata preview`: the picture of what a pipeline does, and its one-line errors."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from srdata.cli import main
from srdata.degradations.pipeline import load_pipeline
from srdata.degradations.preview import draw_tiles, hr_crop, step_tiles
from srdata.sheet import PAD, TILE
from helpers import SAMPLES

IMAGE = SAMPLES / "oc_sm_012.png"


def test_preview_draws_every_step_and_each_draw(tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["preview", "realesrgan", str(IMAGE), "--out", str(out), "--draws", "3", "--crop", "128"]) == 0
    picture = cv2.imread(str(out))
    columns = 1 + 6  # the HR crop and the six top-level steps of realesrgan
    assert picture.shape[1] == PAD + columns * (TILE + PAD)
    assert "preview of realesrgan (6 steps, 3 draws x 1 image(s))" in capsys.readouterr().out


def test_preview_tiles_show_steps_alone_and_whole_draws():
    pipeline = load_pipeline("realesrgan")
    hr = hr_crop(cv2.imread(str(IMAGE)), 4, 128)
    steps = step_tiles(pipeline, hr, 4, 0, "x")
    assert [t.lines[0] for t in steps] == ["HR crop 128x128", "1: blur", "2: resize", "3: noise", "4: jpeg",
                                           "5: second_order", "6: one_of"]
    assert np.array_equal(steps[0].pixels, hr)
    assert steps[4].lines[1].startswith("jpeg q") and steps[4].pixels.shape == hr.shape
    draws = draw_tiles(pipeline, hr, 4, 0, "x", 3)
    assert [t.pixels.shape for t in draws] == [(32, 32, 3)] * 3
    assert all(t.lines[0].startswith(f"draw {i + 1}: LR 32x32") for i, t in enumerate(draws))
    assert len({t.pixels.tobytes() for t in draws}) == 3


def test_preview_is_deterministic(tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    for out in (a, b):
        assert main(["preview", "anime-video", str(IMAGE), "--out", str(out), "--seed", "3", "--crop", "64"]) == 0
    assert np.array_equal(cv2.imread(str(a)), cv2.imread(str(b)))


def test_hr_crop_is_a_multiple_of_the_scale():
    img = np.random.default_rng(0).integers(0, 255, (70, 53, 3), dtype=np.uint8)
    crop = hr_crop(img, 4, 256)
    assert crop.shape[0] == crop.shape[1] and crop.shape[0] % 4 == 0 and crop.shape[0] <= 52


@pytest.mark.parametrize("args, message", [
    (["nope", str(IMAGE)], "'nope' is not a preset"),
    (["seed", str(SAMPLES / "missing.png")], "missing.png: cannot read"),
    (["seed", str(IMAGE), "--scale", "9"], "--scale 9: must be between 2 and 8"),
    (["seed", str(SAMPLES / "LICENSE.md")], "LICENSE.md: not a usable image"),
])
def test_preview_errors_exit_2_with_one_line(tmp_path, capsys, args, message):
    assert main(["preview", *args, "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "x.png").exists()


def test_preview_bad_pipeline_file_names_file_step_and_key(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps:\n  - {op: resize, to: lr}\n  - {op: jpeg, quality: [95, 30]}\n")
    assert main(["preview", str(bad), str(IMAGE), "--out", str(tmp_path / "x.png")]) == 2
    assert f"{bad}: step 2 (jpeg): quality: [95, 30] is out of bounds" in capsys.readouterr().err
