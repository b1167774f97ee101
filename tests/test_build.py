"""srdata build: outputs, degradations, dedup, split, names, bad files and CLI errors.

Incremental rebuilds and kill safety are in test_build_incremental.py. Sources are small
images made here (smooth random blobs: every seed has its own pHash).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from srdata.build import build_dataset
from srdata.build_plan import assign_ids
from srdata.cli import main
from srdata.degradations.kernels import gaussian_ksize
from srdata.degradations.ops import gaussian_blur
from srdata.degradations.pipeline import Record, shorthand_pipeline, source_seed
from srdata.resize import CV2_FILTERS
from srdata.dedup import DEFAULT_THRESHOLD, phash_hex, phash_u64
from srdata.imageio import decode_source, read_output_key
from srdata.resize import imresize_matlab
from srdata.split import assign_splits
from helpers import blob_image, make_raw, manifest, options, png_chunks, png_filter_bytes, tree, write_image
from helpers import inspect_dataset


def read_bgr(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_COLOR)


# --- layout, manifest, determinism ---------------------------------------------------------------


def test_layout_manifest_and_dataset_json(tmp_path):
    src = make_raw(tmp_path / "raw", 6)
    report = build_dataset(options(src, tmp_path / "ds", val=1, test=1), progress=False)
    out = tmp_path / "ds"
    assert report.counts == {"sources": 6, "train": 4, "val": 1, "test": 1, "duplicates": 0, "rejected": 0}
    lines = manifest(out)
    assert [line["source"] for line in lines] == sorted(f"img{i:03d}.png" for i in range(6))
    required = {"id", "source", "sha256", "phash", "split", "group", "dup_of", "hr", "lr", "hr_size",
                "lr_size", "crop", "degradation"}
    for line in lines:
        assert required <= set(line)
        assert line["hr"] == f"{line['split']}/{line['id']}.png"
        assert line["lr"] == f"{line['split']}_X2/{line['id']}.png"
        assert line["group"] == line["id"] and line["dup_of"] is None
        hr, lr = read_bgr(out / line["hr"]), read_bgr(out / line["lr"])
        assert read_output_key(out / line["hr"]) != read_output_key(out / line["lr"])  # both carry a key
        assert line["sha256"] == hashlib.sha256((src / line["source"]).read_bytes()).hexdigest()
        assert line["phash"] == phash_hex(phash_u64(decode_source(src / line["source"])))
        assert [hr.shape[1], hr.shape[0]] == line["hr_size"]
        assert [lr.shape[1], lr.shape[0]] == line["lr_size"]
    dataset = json.loads((out / "dataset.json").read_text())
    assert dataset["scale"] == 2 and dataset["version"] and dataset["counts"] == report.counts
    assert dataset["settings"]["blur"] == 0.0 and "workers" not in dataset["settings"]
    assert (out / "rejected.jsonl").read_text() == ""
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["dataset.json", "duplicates.json", "manifest.jsonl", "rejected.jsonl", "train", "train_X2",
         "val", "val_X2", "test", "test_X2"]
    )


def test_whole_rgb_png_sources_are_reused_as_hr_and_other_pngs_encoded_fast(tmp_path):
    src = tmp_path / "raw"
    write_image(src / "whole.png", blob_image(1, 96, 80))  # a multiple of the scale: the HR is the source
    write_image(src / "cropped.png", blob_image(2, 97, 81))
    build_dataset(options(src, tmp_path / "ds", val=0, test=0), progress=False)
    ds = tmp_path / "ds"
    idat = lambda png: [body for kind, body in png_chunks(png) if kind == b"IDAT"]  # noqa: E731
    reused = (ds / "train" / "whole.png").read_bytes()
    assert idat(reused) == idat((src / "whole.png").read_bytes())
    assert np.array_equal(read_bgr(ds / "train" / "whole.png"), blob_image(1, 96, 80))
    assert read_output_key(ds / "train" / "whole.png") is not None
    for rel, width in (("train/cropped.png", 96), ("train_X2/cropped.png", 48), ("train_X2/whole.png", 48)):
        assert png_filter_bytes((ds / rel).read_bytes(), width) == {2}, rel  # Up on every row: the fast encoder


def test_same_bytes_with_one_or_two_workers(tmp_path):
    src = make_raw(tmp_path / "raw", 8)
    write_image(src / "sub" / "deep.jpg", blob_image(50))
    kw = dict(scale=2, blur=0.8, noise=(1.0, 4.0), jpeg=(60, 90), seed=7)
    build_dataset(options(src, tmp_path / "w1", workers=1, **kw), progress=False)
    build_dataset(options(src, tmp_path / "w2", workers=2, **kw), progress=False)
    one, two = tree(tmp_path / "w1"), tree(tmp_path / "w2")
    assert one == two and len(one) == 4 + 2 * 9


@pytest.mark.parametrize("scale,size", [(2, (97, 71)), (3, (131, 101)), (4, (203, 157))])
def test_hr_is_exactly_scale_times_lr_for_odd_sizes(tmp_path, scale, size):
    src = tmp_path / "raw"
    write_image(src / "odd.png", blob_image(1, *size))
    build_dataset(options(src, tmp_path / "ds", scale=scale, val=0, test=0), progress=False)
    (line,) = manifest(tmp_path / "ds")
    hr, lr = read_bgr(tmp_path / "ds" / line["hr"]), read_bgr(tmp_path / "ds" / line["lr"])
    assert hr.shape[0] == lr.shape[0] * scale and hr.shape[1] == lr.shape[1] * scale
    assert hr.shape[:2] == (size[1] - size[1] % scale, size[0] - size[0] % scale)
    assert line["crop"] == [0, 0, hr.shape[1], hr.shape[0]]
    assert np.array_equal(hr, blob_image(1, *size)[: hr.shape[0], : hr.shape[1]])


def step(line: dict, op: str) -> dict | None:
    """The first recorded step of this op in a manifest line's degradation, or None."""
    return next((s for s in line["degradation"]["steps"] if s["op"] == op), None)


def expected_lr(hr: np.ndarray, scale: int, sigma: float, down: str) -> np.ndarray:
    """The issue's recipe written out with OpenCV, independently of srdata.degradations (the blur as
    GaussianBlur's own kernel applied separably from uint8 to float32, which the next test
    pins to cv2.GaussianBlur on float32)."""
    img = hr.astype(np.float32)
    if sigma > 0:
        k = 2 * math.ceil(3 * sigma) + 1
        kernel = cv2.getGaussianKernel(k, sigma, cv2.CV_32F)
        img = cv2.sepFilter2D(hr, cv2.CV_32F, kernel, kernel, borderType=cv2.BORDER_REFLECT_101)
    size = (hr.shape[1] // scale, hr.shape[0] // scale)
    img = cv2.resize(img, size, interpolation=CV2_FILTERS[down])
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("sigma", [0.0, 0.5, 1.2, 2.0])
def test_blur_sigma_and_kernel_size(tmp_path, sigma):
    src = tmp_path / "raw"
    write_image(src / "a.png", blob_image(2, 120, 100))
    build_dataset(options(src, tmp_path / "ds", scale=2, blur=sigma, val=0, test=0), progress=False)
    (line,) = manifest(tmp_path / "ds")
    blur = step(line, "blur")
    if sigma:
        assert blur == {"op": "blur", "kernel": "iso", "sigma": sigma, "ksize": 2 * math.ceil(3 * sigma) + 1}
    else:
        assert blur is None
    hr = read_bgr(tmp_path / "ds" / line["hr"])
    lr = read_bgr(tmp_path / "ds" / line["lr"])
    assert np.array_equal(lr, expected_lr(hr, 2, sigma, "bicubic"))


@pytest.mark.parametrize("sigma", [0.5, 1.2, 3.0])
def test_blur_is_opencv_gaussian_blur(sigma):
    img = blob_image(11, 90, 70)
    k = gaussian_ksize(sigma)
    reference = cv2.GaussianBlur(img.astype(np.float32), (k, k), sigma, sigmaY=sigma)
    assert np.abs(gaussian_blur(img, sigma, k) - reference).max() < 1e-3


def test_kernel_size_formula():
    assert [gaussian_ksize(s) for s in (0.3, 1.0, 1.2, 2.5)] == [3, 7, 9, 17]


@pytest.mark.parametrize("down", sorted(CV2_FILTERS))
def test_each_opencv_down_filter(tmp_path, down):
    src = tmp_path / "raw"
    write_image(src / "a.png", blob_image(3, 138, 133))
    build_dataset(options(src, tmp_path / "ds", scale=4, down=down, val=0, test=0), progress=False)
    (line,) = manifest(tmp_path / "ds")
    assert step(line, "resize") == {"op": "resize", "to": "lr", "filter": down}
    hr, lr = read_bgr(tmp_path / "ds" / line["hr"]), read_bgr(tmp_path / "ds" / line["lr"])
    assert np.array_equal(lr, expected_lr(hr, 4, 0.0, down))


def test_filters_really_differ(tmp_path):
    """Guards the test above against a build that ignored --down (at x3 bicubic, bilinear and
    lanczos all sample pixel centres, at x2 bilinear is area: only x4 tells all five apart)."""
    hr = blob_image(3, 136, 132)
    outs = {down: expected_lr(hr, 4, 0.0, down).tobytes() for down in CV2_FILTERS}
    assert len(set(outs.values())) == len(outs)


def test_matlab_down_filter(tmp_path):
    src = tmp_path / "raw"
    write_image(src / "a.png", blob_image(4, 138, 133))
    build_dataset(options(src, tmp_path / "ds", scale=4, down="matlab", blur=0.7, val=0, test=0), progress=False)
    (line,) = manifest(tmp_path / "ds")
    hr, lr = read_bgr(tmp_path / "ds" / line["hr"]), read_bgr(tmp_path / "ds" / line["lr"])
    kernel = cv2.getGaussianKernel(gaussian_ksize(0.7), 0.7, cv2.CV_32F)
    blurred = cv2.sepFilter2D(hr, cv2.CV_32F, kernel, kernel)
    expected = imresize_matlab(blurred, (34, 33))
    assert np.array_equal(lr, np.clip(np.rint(expected), 0, 255).astype(np.uint8))
    assert not np.array_equal(lr, expected_lr(hr, 4, 0.7, "bicubic"))  # not OpenCV's bicubic


def test_noise_and_jpeg_are_recorded_and_reproducible(tmp_path):
    src = make_raw(tmp_path / "raw", 6)
    build_dataset(options(src, tmp_path / "ds", noise=(2.0, 8.0), jpeg=(40, 80), seed=3), progress=False)
    lines = manifest(tmp_path / "ds")
    sigmas = {step(line, "noise")["sigma"] for line in lines}
    qualities = {step(line, "jpeg")["quality"] for line in lines}
    assert all(2.0 <= s <= 8.0 for s in sigmas) and len(sigmas) == 6
    assert all(40 <= q <= 80 for q in qualities) and len(qualities) > 1
    pipeline = shorthand_pipeline(0.0, "bicubic", (2.0, 8.0), (40, 80))
    for line in lines:
        hr = read_bgr(tmp_path / "ds" / line["hr"])
        lr = read_bgr(tmp_path / "ds" / line["lr"])
        assert pipeline.draw(source_seed(3, line["sha256"]), 2).to_json() == line["degradation"]
        assert np.array_equal(lr, Record.from_json(line["degradation"]).apply(hr))
        clean = expected_lr(hr, 2, 0.0, "bicubic")
        assert np.abs(lr.astype(int) - clean).mean() > 1  # noise and JPEG really happened


def test_fixed_noise_and_quality_and_seed_change(tmp_path):
    src = make_raw(tmp_path / "raw", 2)
    build_dataset(options(src, tmp_path / "a", noise=(5.0, 5.0), jpeg=(70, 70), val=0, test=0), progress=False)
    build_dataset(options(src, tmp_path / "b", noise=(5.0, 5.0), jpeg=(70, 70), val=0, test=0, seed=1), progress=False)
    la, lb = manifest(tmp_path / "a"), manifest(tmp_path / "b")
    assert {step(line, "noise")["sigma"] for line in la} == {5.0}
    assert {step(line, "jpeg")["quality"] for line in la} == {70}
    assert read_bgr(tmp_path / "a" / la[0]["lr"]).tobytes() != read_bgr(tmp_path / "b" / lb[0]["lr"]).tobytes()


def test_hr_resize_nearest_and_max_side(tmp_path):
    src = tmp_path / "raw"
    source = blob_image(5, 200, 120)
    write_image(src / "a.png", source)
    build_dataset(options(src, tmp_path / "s", hr_size=(150, 90), val=0, test=0), progress=False)
    (line,) = manifest(tmp_path / "s")
    assert line["hr_size"] == [150, 90] and line["hr_resize"] == {"from": [200, 120], "to": [150, 90], "filter": "nearest"}
    hr = read_bgr(tmp_path / "s" / line["hr"])
    assert np.array_equal(hr, cv2.resize(source, (150, 90), interpolation=cv2.INTER_NEAREST))
    build_dataset(options(src, tmp_path / "m", hr_max_side=139, val=0, test=0), progress=False)
    (line,) = manifest(tmp_path / "m")
    assert line["hr_resize"]["to"] == [139, 83]  # 120 * 139 / 200 = 83.4
    assert line["hr_size"] == [138, 82] and line["lr_size"] == [69, 41] and line["crop"] == [0, 0, 138, 82]
    build_dataset(options(src, tmp_path / "n", hr_max_side=500, val=0, test=0), progress=False)
    assert manifest(tmp_path / "n")[0]["hr_resize"] is None  # never enlarges


# --- dedup ---------------------------------------------------------------------------------------


def test_near_duplicates_are_dropped_and_grouped(tmp_path):
    src = make_raw(tmp_path / "raw", 5)
    base = blob_image(1)
    write_image(src / "copies" / "exact.png", base)
    big = cv2.resize(base, (192, 160), interpolation=cv2.INTER_CUBIC)  # more pixels: kept
    write_image(src / "copies" / "bigger.png", big)
    ok, jpg = cv2.imencode(".jpg", base, [cv2.IMWRITE_JPEG_QUALITY, 85])
    (src / "img001_again.jpg").write_bytes(jpg.tobytes())
    report = build_dataset(options(src, tmp_path / "ds", val=0, test=0), progress=False)
    assert report.counts["duplicates"] == 3 and report.counts["train"] == 5
    lines = {line["source"]: line for line in manifest(tmp_path / "ds")}
    keeper = lines["copies/bigger.png"]
    assert keeper["dup_of"] is None and keeper["split"] == "train"
    for dup in ("img001.png", "copies/exact.png", "img001_again.jpg"):
        line = lines[dup]
        assert line["dup_of"] == keeper["id"] and line["group"] == keeper["id"]
        assert line["split"] is None and line["hr"] is None and line["lr"] is None
    assert all(line["group"] for line in lines.values())
    dups = json.loads((tmp_path / "ds" / "duplicates.json").read_text())
    (group,) = dups["groups"]
    assert group["kept"] == "copies/bigger.png"
    assert sorted(d["source"] for d in group["dropped"]) == ["copies/exact.png", "img001.png", "img001_again.jpg"]
    assert not (tmp_path / "ds" / "train" / "img001.png").exists()
    build_dataset(options(src, tmp_path / "nd", val=0, test=0, dedup=False), progress=False)
    assert len(list((tmp_path / "nd" / "train").iterdir())) == 8


def test_keeper_tie_break_is_shortest_path(tmp_path):
    src = tmp_path / "raw"
    write_image(src / "long" / "name.png", blob_image(9))
    write_image(src / "b.png", blob_image(9))
    build_dataset(options(src, tmp_path / "ds", val=0, test=0), progress=False)
    lines = {line["source"]: line for line in manifest(tmp_path / "ds")}
    assert lines["b.png"]["dup_of"] is None and lines["long/name.png"]["dup_of"] == "b"


# --- split -----------------------------------------------------------------------------------


def test_split_ignores_file_order_and_names(tmp_path):
    keys = [(f"{i:064x}", f"f{i}") for i in range(200)]
    splits = assign_splits(keys, 0.1, 0.1, seed=0)
    shuffled = list(reversed(keys))
    assert list(reversed(assign_splits(shuffled, 0.1, 0.1, seed=0))) == splits
    assert 5 < splits.count("val") < 40 and 5 < splits.count("test") < 40
    assert assign_splits(keys, 0.1, 0.1, seed=1) != splits


def test_fraction_split_is_stable_when_sources_are_added():
    old = [(f"{i:064x}", str(i)) for i in range(300)]
    new = old + [(f"{i:064x}", str(i)) for i in range(1000, 1300)]
    before = assign_splits(old, 0.1, 0.15, seed=5)
    after = assign_splits(new, 0.1, 0.15, seed=5)
    assert after[: len(old)] == before


def test_count_split_never_moves_train_images_when_sources_are_added():
    old = [(f"{i:064x}", str(i)) for i in range(100)]
    new = old + [(f"{i:064x}", str(i)) for i in range(500, 530)]
    before = assign_splits(old, 5, 5, seed=2)
    after = assign_splits(new, 5, 5, seed=2)[: len(old)]
    assert after.count("val") <= 5 and before.count("val") == 5
    for b, a in zip(before, after):
        assert b == a or a == "train"  # only val/test -> train, never train -> val/test or val <-> test


def test_split_of_built_dataset_survives_adding_sources(tmp_path):
    src = make_raw(tmp_path / "raw", 10)
    build_dataset(options(src, tmp_path / "ds", val=0.3, test=0.3), progress=False)
    before = {line["source"]: line["split"] for line in manifest(tmp_path / "ds")}
    make_raw(src, 6, start=100)
    build_dataset(options(src, tmp_path / "ds", val=0.3, test=0.3), progress=False)
    after = {line["source"]: line["split"] for line in manifest(tmp_path / "ds")}
    assert {s: after[s] for s in before} == before
    assert len(set(before.values())) == 3  # the test means something: all splits are used


# --- names -----------------------------------------------------------------------------------


def test_names_are_flattened_and_unique():
    ids = assign_ids(["a/b.png", "a__b.png", "A/B.jpg", "c/d.png", "x.tif"])
    assert ids["c/d.png"] == "c__d" and ids["x.tif"] == "x"
    colliding = [ids["a/b.png"], ids["a__b.png"], ids["A/B.jpg"]]
    assert len({i.casefold() for i in colliding}) == 3
    assert all(i.casefold().startswith("a__b-") for i in colliding)
    reordered = assign_ids(["A/B.jpg", "c/d.png", "a/b.png", "a__b.png"])
    assert all(reordered[k] == ids[k] for k in reordered)  # ids do not depend on order


def test_outputs_named_from_nested_paths(tmp_path):
    src = tmp_path / "raw"
    write_image(src / "a" / "b.png", blob_image(1))
    write_image(src / "a__b.jpg", blob_image(2))
    write_image(src / "c" / "d.bmp", blob_image(3))
    build_dataset(options(src, tmp_path / "ds", val=0, test=0), progress=False)
    names = sorted(p.name for p in (tmp_path / "ds" / "train").iterdir())
    assert "c__d.png" in names and len(names) == 3
    assert sorted(p.name for p in (tmp_path / "ds" / "train_X2").iterdir()) == names
    assert all(read_output_key(tmp_path / "ds" / "train" / n) for n in names)


def test_output_folder_inside_src_is_not_a_source(tmp_path):
    src = make_raw(tmp_path / "raw", 3)
    build_dataset(options(src, src / "ds", val=0, test=0), progress=False)
    report = build_dataset(options(src, src / "ds", val=0, test=0), progress=False)
    assert report.counts["sources"] == 3 and report.decoded == 0


# --- bad files -------------------------------------------------------------------------------


def bad_corpus(src: Path) -> dict[str, str]:
    """Bad files next to good ones; returns source -> expected reason kind."""
    good = cv2.imencode(".png", blob_image(7))[1].tobytes()
    jpeg = cv2.imencode(".jpg", blob_image(8, 200, 160))[1].tobytes()
    (src / "bad").mkdir(parents=True, exist_ok=True)
    (src / "bad" / "empty.png").write_bytes(b"")
    (src / "bad" / "text.png").write_bytes(b"just some text\n" * 20)
    (src / "bad" / "trunc.png").write_bytes(good[: len(good) // 2])
    (src / "bad" / "trunc.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    write_image(src / "bad" / "tiny.png", blob_image(9, 40, 40))
    corrupt = bytearray(good)
    corrupt[len(good) // 2 : len(good) // 2 + 40] = bytes(40)
    (src / "bad" / "corrupt.png").write_bytes(bytes(corrupt))
    (src / "notes.txt").write_text("not an image extension: ignored, not rejected")
    return {
        "bad/empty.png": "empty file", "bad/text.png": "not an image", "bad/trunc.png": "truncated",
        "bad/trunc.jpg": "truncated", "bad/tiny.png": "too small", "bad/corrupt.png": "corrupt",
    }


def test_bad_files_are_skipped_listed_and_counted(tmp_path):
    src = make_raw(tmp_path / "raw", 3)
    expected = bad_corpus(src)
    report = build_dataset(options(src, tmp_path / "ds", val=0, test=0), progress=False)
    assert report.counts["train"] == 3 and report.counts["rejected"] == len(expected)
    rows = [json.loads(line) for line in (tmp_path / "ds" / "rejected.jsonl").read_text().splitlines()]
    got = {row["source"]: row["reason"] for row in rows}
    assert set(got) == set(expected)
    for source, kind in expected.items():
        assert got[source].split(" (")[0] == kind, (source, got[source])
    assert report.rejected_by_reason == Counter(expected.values())


def test_every_supported_kind_of_source_is_used(tmp_path):
    src = tmp_path / "raw"
    for i, ext in enumerate([".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".PNG"]):
        write_image(src / f"f{i}{ext}", blob_image(20 + i))
    write_image(src / "deep" / "er" / "grey.png", blob_image(30)[:, :, 0])
    write_image(src / "sixteen.png", blob_image(31).astype(np.uint16) * 257)
    rgba = np.dstack([blob_image(32), np.full((80, 96), 200, np.uint8)])
    write_image(src / "alpha.png", rgba)
    (src / "readme.md").write_text("ignored")
    report = build_dataset(options(src, tmp_path / "ds", val=0, test=0), progress=False)
    assert report.counts["train"] == 10 and report.counts["rejected"] == 0
    lines = {line["source"]: line for line in manifest(tmp_path / "ds")}
    assert lines["deep/er/grey.png"]["id"] == "deep__er__grey"
    hr16 = read_bgr(tmp_path / "ds" / lines["sixteen.png"]["hr"])
    assert np.array_equal(hr16, blob_image(31))  # 16-bit x*257 rounds back to x exactly


def test_cli_strict_exits_1_on_rejections(tmp_path, capsys):
    src = make_raw(tmp_path / "raw", 2)
    (src / "empty.png").write_bytes(b"")
    args = ["build", "--src", str(src), "--scale", "2", "--workers", "1", "--val", "0", "--test", "0"]
    assert main(args + ["--out", str(tmp_path / "a")]) == 0
    assert main(args + ["--out", str(tmp_path / "b"), "--strict"]) == 1
    captured = capsys.readouterr()
    assert "train pairs" in captured.out and "rejected: empty file" in captured.out
    assert "reading sources" in captured.err and "images/s" in captured.err  # the progress bar
    assert (tmp_path / "b" / "manifest.jsonl").exists()


# --- bad options -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra,needle",
    [
        (["--blur", "-1"], "--blur"),
        (["--scale", "9"], "--scale"),
        (["--scale", "1"], "--scale"),
        (["--hr-size", "12by4"], "--hr-size"),
        (["--hr-size", "0x10"], "--hr-size"),
        (["--hr-size", "64x64", "--hr-max-side", "50"], "--hr-max-side"),
        (["--noise", "5:2"], "--noise"),
        (["--noise", "a"], "--noise"),
        (["--jpeg", "0:50"], "--jpeg"),
        (["--jpeg", "50:101"], "--jpeg"),
        (["--val", "0.6", "--test", "0.5"], "--val"),
        (["--val", "2.5"], "--val"),
        (["--val", "-1"], "--val"),
        (["--down", "cubic"], "--down"),
        (["--png-level", "10"], "--png-level"),
        (["--workers", "0"], "--workers"),
        (["--dedup-threshold", "65"], "--dedup-threshold"),
        (["--max-pixels", "0"], "--max-pixels"),
    ],
)
def test_bad_options_exit_2_and_write_nothing(tmp_path, capsys, extra, needle):
    src = make_raw(tmp_path / "raw", 1)
    out = tmp_path / "ds"
    assert main(["build", "--src", str(src), "--out", str(out)] + extra) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("srdata: error:") and needle in err and "\n" not in err
    assert not out.exists()


def test_missing_src_empty_src_and_foreign_out(tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["build", "--out", str(out)]) == 2
    assert "--src" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    assert main(["build", "--src", str(tmp_path / "empty"), "--out", str(out)]) == 2
    assert "no images" in capsys.readouterr().err
    assert main(["build", "--src", str(tmp_path / "nope"), "--out", str(out)]) == 2
    assert not out.exists()
    src = make_raw(tmp_path / "raw", 1)
    out.mkdir()
    (out / "precious.txt").write_text("user data")
    assert main(["build", "--src", str(src), "--out", str(out)]) == 2
    assert "precious.txt" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["precious.txt"]


def test_too_many_counts_for_the_kept_images(tmp_path, capsys):
    src = make_raw(tmp_path / "raw", 3)
    out = tmp_path / "ds"
    assert main(["build", "--src", str(src), "--out", str(out), "--scale", "2", "--workers", "1",
                 "--val", "2", "--test", "1"]) == 2
    assert "no training image" in capsys.readouterr().err
    assert not out.exists()


def test_default_workers_follows_the_affinity_mask_not_the_core_count(monkeypatch):
    """Under taskset / a cpuset the usable cores are fewer than os.cpu_count()."""
    from srdata import cliutil

    if not hasattr(cliutil.os, "sched_getaffinity"):
        pytest.skip("no affinity mask on this platform")
    monkeypatch.setattr(cliutil.os, "cpu_count", lambda: 64)
    monkeypatch.setattr(cliutil.os, "sched_getaffinity", lambda pid: {3, 5})
    assert cliutil.default_workers() == 2


def test_inspect_uses_the_dedup_threshold_the_build_recorded(tmp_path):
    """dataset.json's settings key and inspect's reader must stay the same name."""
    src = make_raw(tmp_path / "raw", 3)
    build_dataset(options(src, tmp_path / "ds", val=0, test=0, dedup_threshold=DEFAULT_THRESHOLD + 3), progress=False)
    report, _ = inspect_dataset(tmp_path / "ds", workers=1)
    assert report.dedup_threshold == DEFAULT_THRESHOLD + 3
