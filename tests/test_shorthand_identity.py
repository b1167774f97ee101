"""The --blur/--down/--noise/--jpeg shorthand keeps making the same LR pixels, byte for byte.

tests/data/shorthand_lr_sha256.json holds the SHA-256 of the LR pixels that srdata's original
fixed recipe (srdata.degrade.Degradation, before degradation pipelines existed; computed in the
commit that added this test) made for every case below, from centre crops of three bundled
samples. The shorthand pipeline (srdata.degradations.pipeline.shorthand_pipeline) must reproduce
them all.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from srdata.degradations.pipeline import shorthand_pipeline, source_seed
from helpers import SAMPLES

REFERENCE = Path(__file__).resolve().parent / "data" / "shorthand_lr_sha256.json"
IMAGES = ("oc_base.png", "oc_blueman_303_01.png", "oc_sheep-md-v0.1.png")
CROP = (240, 192)  # width, height: a multiple of every scale used below
FILTERS = ("bicubic", "area", "bilinear", "nearest", "lanczos", "matlab")


def cases() -> list[tuple]:
    """(image, scale, blur, down, noise, jpeg, seed): every filter x scale x blur without noise or
    JPEG, then every noise x JPEG x seed combination with the two filters the benchmarks use."""
    out = []
    for image in IMAGES:
        for down in FILTERS:
            for scale in (2, 3, 4):
                for blur in (0.0, 0.6, 1.2, 2.5):
                    out.append((image, scale, blur, down, None, None, 0))
        for down in ("bicubic", "matlab"):
            for noise in (None, (3.0, 3.0), (0.0, 10.0)):
                for jpeg in (None, (75, 75), (30, 95)):
                    for seed in (0, 7):
                        out.append((image, 4, 1.2, down, noise, jpeg, seed))
    return out


def case_id(case: tuple) -> str:
    image, scale, blur, down, noise, jpeg, seed = case
    return f"{image}|x{scale}|blur{blur}|{down}|noise{noise}|jpeg{jpeg}|seed{seed}"


def source(image: str) -> tuple[np.ndarray, str]:
    """The centre crop (BGR uint8, as build holds images) and the source file's SHA-256."""
    path = SAMPLES / image
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    height, width = bgr.shape[:2]
    top, left = (height - CROP[1]) // 2, (width - CROP[0]) // 2
    crop = np.ascontiguousarray(bgr[top:top + CROP[1], left:left + CROP[0]])
    return crop, hashlib.sha256(path.read_bytes()).hexdigest()


def shorthand_lr(case: tuple, hr: np.ndarray, sha256: str) -> np.ndarray:
    _, scale, blur, down, noise, jpeg, seed = case
    record = shorthand_pipeline(blur, down, noise, jpeg).draw(source_seed(seed, sha256), scale)
    return record.apply(hr)


def pixels_sha256(img: np.ndarray) -> str:
    return hashlib.sha256(f"{img.shape}|{img.dtype}".encode() + img.tobytes()).hexdigest()


def test_shorthand_makes_the_reference_pixels():
    reference = json.loads(REFERENCE.read_text())
    all_cases = cases()
    assert set(reference) == {case_id(c) for c in all_cases}
    sources = {image: source(image) for image in IMAGES}
    wrong = [case_id(c) for c in all_cases if pixels_sha256(shorthand_lr(c, *sources[c[0]])) != reference[case_id(c)]]
    assert not wrong, f"{len(wrong)} of {len(all_cases)} LRs changed, first: {wrong[0]}"


@pytest.mark.parametrize("case", [c for c in cases() if c[4] is not None][:1])
def test_reference_depends_on_the_noise(case):
    """The pin can fail: the same case without noise hashes differently."""
    hr, sha256 = source(case[0])
    quiet = (*case[:4], None, *case[5:])
    assert pixels_sha256(shorthand_lr(case, hr, sha256)) != pixels_sha256(shorthand_lr(quiet, hr, sha256))
