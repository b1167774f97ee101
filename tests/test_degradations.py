"""srdata.degradations: parsing with located errors, drawing, recording and re-applying pipelines."""

from __future__ import annotations

import json
import os
import random
from collections import Counter

import cv2
import numpy as np
import pytest
import yaml
from scipy import special

from helpers import SAMPLES, run_python

from srdata.degradations.kernels import shaped_kernel, sinc_kernel
from srdata.degradations.ops import ApplyContext, Noise, Quantize, convolve, gaussian_blur, poisson_noise
from srdata.degradations.pipeline import (PRESETS, Record, load_pipeline, parse_pipeline, shorthand_pipeline,
                                          source_seed)
from srdata.errors import UserError



@pytest.fixture(scope="module")
def hr() -> np.ndarray:
    """A 148 x 116 BGR crop of a sample (both sides multiples of 4, not of 8 or 16)."""
    bgr = cv2.imread(str(SAMPLES / "oc_blueman_303_01.png"), cv2.IMREAD_COLOR)
    return np.ascontiguousarray(bgr[300:416, 250:398])


def parse(text: str):
    return parse_pipeline(yaml.safe_load(text), "my.yaml", "my.yaml", "0" * 64)


# ---------------------------------------------------------------------------------------------
# Presets: they load, end at the LR size, and are deterministic


@pytest.mark.parametrize("name", PRESETS)
def test_presets_end_at_the_lr_size_and_repeat_exactly(name, hr):
    pipeline = load_pipeline(name)
    for i in range(12):
        record = pipeline.draw(source_seed(i, "ab"), 4)
        lr = record.apply(hr)
        assert lr.shape == (29, 37, 3) and lr.dtype == np.uint8
        again = Record.from_json(json.loads(json.dumps(record.to_json()))).apply(hr)
        assert np.array_equal(lr, again)


def test_record_is_plain_json_and_depends_on_the_seed():
    pipeline = load_pipeline("realesrgan")
    a, b = pipeline.draw(1, 4), pipeline.draw(2, 4)
    assert a == pipeline.draw(1, 4)
    assert a.pixels_key() != b.pixels_key()
    data = a.to_json()
    assert data["pipeline"] == "realesrgan" and len(data["pipeline_sha256"]) == 64
    for step in data["steps"]:
        assert all(isinstance(v, (int, float, str, bool)) for v in step.values()), step


def test_seed_preset_is_the_blur_shorthand(hr):
    """`--degrade seed` and `--blur 1.2 --down bicubic` record the same steps and make the same LR."""
    preset = load_pipeline("seed").draw(5, 4)
    short = shorthand_pipeline(1.2, "bicubic", None, None).draw(5, 4)
    assert preset.pixels_key() == short.pixels_key()
    assert np.array_equal(preset.apply(hr), short.apply(hr))


def test_applying_a_record_draws_nothing_from_global_generators(hr):
    """Only the record's values and seed matter: no op draws from numpy's, Python's or albumentations'
    own generators."""
    text = """
steps:
  - {op: blur, kernels: [aniso], sigma: [0.5, 2]}
  - {op: sharpen, sigma: 1, amount: [0.2, 1]}
  - {op: iso_noise}
  - {op: resize, to: lr, filters: [area]}
  - {op: noise, kinds: [poisson], poisson_scale: 2, grey_prob: 0.5}
  - {op: quantize, colors: [16, 64], dither: 0.5}
  - {op: webp, quality: [40, 60]}
"""
    record = parse(text).draw(11, 4)
    np.random.seed(1)
    random.seed(1)
    first = record.apply(hr)
    np.random.seed(2)
    random.seed(2)
    assert np.array_equal(first, record.apply(hr))


def test_realesrgan_draws_follow_the_cited_probabilities():
    """Frequencies over 3000 draws match train_realesrgan_x4plus.yml and Real-ESRGAN's code."""
    pipeline = load_pipeline("realesrgan")
    n = 3000
    first_kernels, first_modes, kinds, greys, orders = Counter(), Counter(), Counter(), Counter(), Counter()
    second_blurs = final_sincs = 0
    for i in range(n):
        steps = pipeline.draw(i, 4).steps
        ops = [s["op"] for s in steps]
        first_kernels[steps[0]["kernel"]] += 1
        first_modes[steps[1]["mode"]] += 1
        kinds[steps[2]["kind"]] += 1
        greys[steps[2]["grey"]] += 1
        assert 30 <= steps[3]["quality"] <= 95
        second_blurs += ops[4] == "blur"
        final_sincs += "sinc" in ops
        orders[ops[-1] == "jpeg"] += 1
        for s in steps:
            if s["op"] in ("blur", "sinc"):
                assert s["ksize"] in range(7, 22, 2)
            if s["op"] == "resize" and "scale" in s:
                low, high = (0.15, 1.5) if s["of"] == "image" else (0.3, 1.2)
                assert low <= s["scale"] <= high and (s["scale"] >= 1) == (s["mode"] == "up")
    expected = {"sinc": 0.1, "iso": 0.405, "aniso": 0.225, "generalized_iso": 0.108, "generalized_aniso": 0.027,
                "plateau_iso": 0.108, "plateau_aniso": 0.027}
    tolerance = 4 * np.sqrt(0.25 / n)
    for kind, p in expected.items():
        assert abs(first_kernels[kind] / n - p) < tolerance, (kind, first_kernels)
    for mode, p in {"up": 0.2, "down": 0.7, "keep": 0.1}.items():
        assert abs(first_modes[mode] / n - p) < tolerance, first_modes
    assert abs(kinds["gaussian"] / n - 0.5) < tolerance
    assert abs(greys[True] / n - 0.4) < tolerance
    assert abs(second_blurs / n - 0.8) < tolerance
    assert abs(final_sincs / n - 0.8) < tolerance
    assert abs(orders[True] / n - 0.5) < tolerance


def test_beta_is_split_at_one_as_basicsr_does():
    pipeline = parse("steps:\n  - {op: blur, kernels: [plateau_iso], sigma: 1, beta_p: [1, 2]}\n"
                     "  - {op: resize, to: lr}\n")
    betas = np.array([pipeline.draw(i, 2).steps[0]["beta"] for i in range(2000)])
    assert 0.45 < np.mean(betas == 1.0) < 0.55 and betas.max() <= 2


# ---------------------------------------------------------------------------------------------
# Kernels and convolution


def test_isotropic_blur_is_the_2d_gaussian_kernel(hr):
    separable = gaussian_blur(hr, 1.7, 13)
    full = cv2.filter2D(hr.astype(np.float32), -1, shaped_kernel("iso", 13, 1.7, 0, 0))
    assert np.abs(separable - full).max() < 1e-3


def test_kernel_shapes():
    gauss = shaped_kernel("aniso", 15, 3.0, 1.0, 30.0)
    assert np.allclose(shaped_kernel("generalized_aniso", 15, 3.0, 1.0, 30.0, beta=1.0), gauss)
    turned = shaped_kernel("aniso", 15, 3.0, 1.0, 90.0)
    assert np.allclose(turned, shaped_kernel("aniso", 15, 1.0, 3.0, 0.0), atol=1e-7)
    assert turned[7, 0] < turned[0, 7]  # sigma_x 3 turned by 90 degrees runs along y
    plateau = shaped_kernel("plateau_iso", 9, 2.0, 0, 0, beta=2.0).astype(np.float64)
    d2 = lambda x, y: (x * x + y * y) / 4.0  # noqa: E731 - distance to the centre in sigmas, squared
    assert plateau[4, 7] / plateau[4, 4] == pytest.approx(1 / (1 + d2(3, 0) ** 2), rel=1e-5)
    sinc = sinc_kernel(11, 1.5).astype(np.float64)
    assert sinc.sum() == pytest.approx(1.0, abs=1e-6)
    raw_centre, raw_offset = 1.5**2 / (4 * np.pi), 1.5 * special.j1(1.5 * 3) / (2 * np.pi * 3)
    assert sinc[5, 8] / sinc[5, 5] == pytest.approx(raw_offset / raw_centre, rel=1e-5)
    assert sinc.min() < 0  # the negative lobes that make ringing


@pytest.mark.parametrize("side", [7, 11, 13, 21])
def test_convolve_is_filter2d(side, hr):
    kernel = shaped_kernel("generalized_aniso", side, 2.5, 0.7, 40.0, beta=0.6)
    img = hr[:50, :61].astype(np.float32)
    assert np.abs(convolve(img, kernel) - cv2.filter2D(img, -1, kernel)).max() < 2e-3


# ---------------------------------------------------------------------------------------------
# Noise, quantization


def test_poisson_noise_is_basicsr_formula(hr):
    """Against BasicSR's definition written with np.unique: same generator, same field."""
    img = hr.astype(np.float32) + 0.3
    field = poisson_noise(img, False, np.random.default_rng([3, 1]))
    unit = np.clip(np.round(img), 0, 255) / 255.0
    values = 2 ** np.ceil(np.log2(len(np.unique(unit))))
    expected = (np.random.default_rng([3, 1]).poisson(unit * values) / values - unit) * 255
    assert np.abs(field - expected).max() < 1e-3


def test_noise_fields_come_from_the_record_seed_and_stream(hr):
    noisy = lambda seed, stream: Noise.apply(hr, {"kind": "gaussian", "sigma": 10.0, "grey": False, "stream": stream},  # noqa: E731
                                             ApplyContext((0, 0), seed))
    assert np.array_equal(noisy(4, 1), noisy(4, 1))
    assert not np.array_equal(noisy(4, 1), noisy(4, 2)) and not np.array_equal(noisy(4, 1), noisy(5, 1))
    grey = Noise.apply(hr, {"kind": "gaussian", "sigma": 10.0, "grey": True, "stream": 1}, ApplyContext((0, 0), 4))
    change = grey - hr.astype(np.float32)
    inside = (hr > 30).all(axis=2) & (hr < 225).all(axis=2)  # not clipped
    assert np.allclose(change[inside][:, 0], change[inside][:, 2])


def test_quantize_limits_the_palette(hr):
    plain = Quantize.apply(hr, {"colors": 8, "dither": False}, ApplyContext((0, 0), None))
    dithered = Quantize.apply(hr, {"colors": 8, "dither": True}, ApplyContext((0, 0), None))
    for out in (plain, dithered):
        assert len(np.unique(out.reshape(-1, 3), axis=0)) <= 8
    assert not np.array_equal(plain, dithered)


# ---------------------------------------------------------------------------------------------
# Blocks


def test_blocks_repeat_choose_and_skip():
    pipeline = parse("""
steps:
  - repeat: {times: 2, steps: [{op: blur, sigma: [0.5, 1]}]}
  - second_order: {p: 0, steps: [{op: jpeg, quality: 50}]}
  - one_of:
      - {weight: 1, steps: [{op: resize, to: lr}]}
      - {weight: 0, steps: [{op: webp, quality: 50}, {op: resize, to: lr}]}
""")
    ops = [s["op"] for s in pipeline.draw(0, 2).steps]
    assert ops == ["blur", "blur", "resize"]
    blurs = [s["sigma"] for s in pipeline.draw(0, 2).steps[:2]]
    assert blurs[0] != blurs[1]  # each repetition draws afresh


# ---------------------------------------------------------------------------------------------
# Errors: one line naming the file, the step and the key


@pytest.mark.parametrize("text, expected", [
    ("steps:\n  - {op: blurr, sigma: 1}\n  - {op: resize, to: lr}\n",
     "my.yaml: step 1 (blurr): op: 'blurr' is not an op (did you mean 'blur'?)"),
    ("steps:\n  - {op: blur, sigmaa: 1}\n", "my.yaml: step 1 (blur): sigmaa: unknown key (did you mean 'sigma'?)"),
    ("steps:\n  - {op: blur, sigma: [3, 1]}\n", "my.yaml: step 1 (blur): sigma: [3, 1] is out of bounds"),
    ("steps:\n  - {op: resize, to: lr}\n  - {op: jpeg, p: 1.5, quality: 50}\n",
     "my.yaml: step 2 (jpeg): p: 1.5 is not a probability"),
    ("steps:\n  - {op: blur, sigma: 1, ksize: 8}\n", "my.yaml: step 1 (blur): ksize: 8 is out of bounds; give an odd"),
    ("steps:\n  - {op: blur, sigma: 1, kernels: {iso: 1, box: 1}}\n",
     "my.yaml: step 1 (blur): kernels: 'box' is not one of iso, aniso"),
    ("steps:\n  - {op: resize, to: lr}\n  - second_order:\n      steps:\n        - {op: noise, sigma: -1}\n",
     "my.yaml: step 2.1 (noise): sigma: -1 is out of bounds"),
    ("steps:\n  - {op: resize, to: lr, scale: 0.5}\n", "my.yaml: step 1 (resize): scale: not used with `to: lr`"),
    ("steps:\n  - {op: blur, sigma: 1}\n", "my.yaml: the steps do not always end at the LR size"),
    ("steps:\n  - {op: resize, to: lr, p: 0.5}\n", "my.yaml: the steps do not always end at the LR size"),
    ("steps:\n  - {op: resize, to: lr}\n  - {op: resize, scale: [0.5, 1]}\n", "do not always end at the LR size"),
    ("steps: []\n", "my.yaml: steps: must be a non-empty list"),
    ("stepz: []\n", "my.yaml: stepz: unknown key (did you mean 'steps'?)"),
    ("name: x\n", "my.yaml: steps: missing; this key is required"),
    ("steps:\n  - {op: jpeg}\n", "my.yaml: step 1 (jpeg): quality: missing"),
])
def test_bad_pipelines_are_one_line_errors(text, expected):
    with pytest.raises(UserError) as err:
        parse(text)
    message = str(err.value)
    assert message.startswith(expected) or expected in message, message
    assert "\n" not in message


def test_load_pipeline_names_presets_and_files(tmp_path):
    with pytest.raises(UserError, match="'realesrgn' is not a preset .seed, realesrgan, anime-video."):
        load_pipeline("realesrgn")
    with pytest.raises(UserError, match="missing.yaml: no such pipeline file"):
        load_pipeline(str(tmp_path / "missing.yaml"))
    broken = tmp_path / "broken.yaml"
    broken.write_text("steps:\n  - {op: resize, to: lr\n")
    with pytest.raises(UserError, match="broken.yaml: line 3 is not valid YAML"):
        load_pipeline(str(broken))
    path = tmp_path / "mine.yaml"
    path.write_text("steps:\n  - {op: resize, to: lr, filters: [area]}\n")
    pipeline = load_pipeline(str(path))
    assert pipeline.name == "mine" and pipeline.draw(0, 2).steps == ({"op": "resize", "to": "lr", "filter": "area"},)


def test_import_makes_no_network_call():
    """albumentations checks PyPI on import unless told not to; srkit's import never connects."""
    code = (
        "import sys\n"
        "calls = []\n"
        "sys.addaudithook(lambda event, args: calls.append(event) if event.startswith('socket.') else None)\n"
        "import srdata.degradations.pipeline\n"
        "import srdata.degradations.ops\n"
        "from srdata.degradations.albu import albumentations\n"
        "assert albumentations().__version__\n"
        "print(calls)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "NO_ALBUMENTATIONS_UPDATE"}
    out = run_python(code, env=env)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr
