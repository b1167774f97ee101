"""`srdata inspect`: stats, each problem kind planted and found with the right files, the
bicubic baseline, scale inference, JSON, contact sheet, exit codes."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from srdata.cli import main
from srdata.errors import UserError
from srdata.imageio import read_png_rgb
from srdata.inspect import PROBLEM_KINDS
from srdata.layout import resolve_layout
from srdata.metrics import psnr, ssim
from srdata.sheet import choose_rows, sheet_size
from helpers import inspect_dataset

SCALE = 4


# ----------------------------------------------------------------------------- helpers


def _picture(seed: int, w: int = 96, h: int = 64) -> np.ndarray:
    """A small cartoon-like RGB image (flat fills, outlines, a little texture); distinct per seed."""
    rng = np.random.default_rng(seed)
    img = np.empty((h, w, 3), np.uint8)
    img[:] = rng.integers(60, 200, 3)
    for _ in range(6):
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        x0, y0 = int(rng.integers(0, w - 8)), int(rng.integers(0, h - 8))
        x1, y1 = x0 + int(rng.integers(8, w // 2)), y0 + int(rng.integers(8, h // 2))
        if rng.random() < 0.5:
            cv2.rectangle(img, (x0, y0), (x1, y1), color, -1)
        else:
            cv2.circle(img, (x0, y0), int(rng.integers(4, h // 3)), color, -1)
        cv2.line(img, (x0, y1), (x1, y0), (0, 0, 0), 2)
    noise = rng.integers(-12, 13, img.shape)
    return np.clip(img.astype(int) + noise, 0, 255).astype(np.uint8)


def _save(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)


def _lr_of(hr: np.ndarray, scale: int = SCALE) -> np.ndarray:
    return cv2.resize(hr, (hr.shape[1] // scale, hr.shape[0] // scale), interpolation=cv2.INTER_AREA)


def _add_pair(ds: Path, split: str, name: str, hr: np.ndarray, scale: int = SCALE) -> None:
    _save(ds / split / f"{name}.png", hr)
    _save(ds / f"{split}_X{scale}" / f"{name}.png", _lr_of(hr, scale))


def _clean_ds(root: Path, scale: int = SCALE) -> Path:
    """train: 5 pairs, val: 2, test: 2 -- PaddleGAN layout, all distinct, no problems."""
    ds = root / "ds"
    seed = 0
    for split, count in (("train", 5), ("val", 2), ("test", 2)):
        for i in range(count):
            seed += 1
            _add_pair(ds, split, f"{split}{i}", _picture(seed), scale)
    return ds


def _problems(report, kind: str) -> list[list[str]]:
    return sorted(sorted(p.files) for p in report.problems if p.kind == kind)


def _run(capsys, *args) -> tuple[int, str, str]:
    code = main(["inspect", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


# ----------------------------------------------------------------------------- clean dataset


def test_clean_dataset_has_no_problems_and_right_stats(tmp_path):
    ds = _clean_ds(tmp_path)
    report, _ = inspect_dataset(ds, workers=1)
    assert report.problems == []
    assert report.scale == SCALE and report.scale_source == "folder names"
    assert [s.name for s in report.splits] == ["train", "val", "test"]
    train = report.splits[0]
    assert (train.pairs, train.hr_files, train.lr_files) == (5, 5, 5)
    assert train.hr_megapixels == pytest.approx(5 * 96 * 64 / 1e6, abs=1e-3)
    assert train.hr_size.min == train.hr_size.max == (96, 64)
    assert train.lr_size.median == (24, 16)
    assert train.formats == {"PNG": 10} and train.modes == {"RGB": 10}
    assert train.baseline_pairs == 5


def test_clean_dataset_strict_exits_0_and_prints_tables(tmp_path, capsys):
    ds = _clean_ds(tmp_path)
    code, out, err = _run(capsys, ds, "--strict", "--workers", 1)
    assert code == 0, err
    assert "No problems found" in out
    assert "bicubic baseline" in out and "INTER_CUBIC" in out and "Y channel" in out


def test_bicubic_baseline_is_mean_of_per_image_scores(tmp_path):
    ds = _clean_ds(tmp_path)
    report, _ = inspect_dataset(ds, workers=1)
    val = next(s for s in report.splits if s.name == "val")
    scores = []
    for name in ("val0", "val1"):
        hr = np.asarray(Image.open(ds / "val" / f"{name}.png"))
        lr = np.asarray(Image.open(ds / "val_X4" / f"{name}.png"))
        up = cv2.resize(lr, (hr.shape[1], hr.shape[0]), interpolation=cv2.INTER_CUBIC)
        scores.append((psnr(up, hr, SCALE, True), ssim(up, hr, SCALE, True)))
    assert val.bicubic_psnr_y == pytest.approx(np.mean([s[0] for s in scores]), abs=1e-9)
    assert val.bicubic_ssim_y == pytest.approx(np.mean([s[1] for s in scores]), abs=1e-9)
    assert 10 < val.bicubic_psnr_y < 40


def test_identical_hr_and_upscaled_lr_gives_inf_psnr_written_as_null(tmp_path, capsys):
    """A flat HR whose bicubic upscale is exact: PSNR is inf in the report and null in --json (the one
    rule for non-finite numbers in srkit's JSON), not a crash and not the non-standard `Infinity`."""
    ds = tmp_path / "ds"
    flat = np.full((64, 64, 3), 128, np.uint8)
    _add_pair(ds, "train", "flat", flat)
    report, _ = inspect_dataset(ds, workers=1)
    assert math.isinf(report.splits[0].bicubic_psnr_y)
    assert main(["inspect", str(ds), "--json", str(tmp_path / "r.json")]) == 0
    text = (tmp_path / "r.json").read_text()
    assert "Infinity" not in text and json.loads(text)["splits"][0]["bicubic_psnr_y"] is None


# ----------------------------------------------------------------------------- planted problems


@pytest.fixture
def broken_ds(tmp_path) -> Path:
    ds = _clean_ds(tmp_path)
    # missing_pair: an HR without LR and an LR without HR
    _save(ds / "train" / "lonely_hr.png", _picture(101))
    _save(ds / "val_X4" / "lonely_lr.png", _lr_of(_picture(102)))
    # scale_mismatch: LR one pixel too narrow
    hr = _picture(103)
    _save(ds / "train" / "wrongsize.png", hr)
    _save(ds / "train_X4" / "wrongsize.png", _lr_of(hr)[:, :-1])
    # unreadable: garbage bytes (header fails) and a truncated PNG (header fine, pixels not)
    (ds / "train" / "garbage.png").write_bytes(b"this is not an image")
    _save(ds / "train_X4" / "garbage.png", _lr_of(_picture(104)))
    good = ds / "test" / "truncated.png"
    _add_pair(ds, "test", "truncated", _picture(105))
    good.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    # exact_duplicate within train: a byte-for-byte copy under another name
    shutil.copy(ds / "train" / "train0.png", ds / "train" / "copy_of_train0.png")
    shutil.copy(ds / "train_X4" / "train0.png", ds / "train_X4" / "copy_of_train0.png")
    # cross_split_duplicate: train1 re-encoded slightly darker in test (near, not exact)
    near = np.clip(np.asarray(Image.open(ds / "train" / "train1.png")).astype(int) - 3, 0, 255).astype(np.uint8)
    _add_pair(ds, "test", "leak", near)
    # near_constant: a grey frame with a faint noise and a tiny dark logo
    rng = np.random.default_rng(7)
    blank = np.clip(128 + rng.integers(-2, 3, (64, 96, 1)), 0, 255).astype(np.uint8).repeat(3, axis=2)
    blank[30:33, 40:43] = 0
    _add_pair(ds, "val", "blank", blank)
    return ds


def test_each_planted_problem_is_reported_with_its_files(broken_ds):
    report, _ = inspect_dataset(broken_ds, workers=2)
    assert _problems(report, "missing_pair") == [["train/lonely_hr.png"], ["val_X4/lonely_lr.png"]]
    assert _problems(report, "scale_mismatch") == [["train/wrongsize.png", "train_X4/wrongsize.png"]]
    assert _problems(report, "unreadable") == [["test/truncated.png"], ["train/garbage.png"]]
    assert _problems(report, "exact_duplicate") == [["train/copy_of_train0.png", "train/train0.png"]]
    assert _problems(report, "cross_split_duplicate") == [["test/leak.png", "train/train1.png"]]
    assert _problems(report, "near_constant") == [["val/blank.png"]]
    assert _problems(report, "manifest_mismatch") == []  # no manifest: nothing to compare
    assert {p.kind for p in report.problems} <= set(PROBLEM_KINDS)
    detail = next(p.detail for p in report.problems if p.kind == "scale_mismatch")
    assert "96x64" in detail and "23x16" in detail


def test_exact_copy_across_splits_is_both_exact_and_cross_split(tmp_path):
    ds = _clean_ds(tmp_path)
    shutil.copy(ds / "train" / "train2.png", ds / "val" / "again.png")
    shutil.copy(ds / "train_X4" / "train2.png", ds / "val_X4" / "again.png")
    report, _ = inspect_dataset(ds, workers=1)
    assert _problems(report, "exact_duplicate") == [["train/train2.png", "val/again.png"]]
    assert _problems(report, "cross_split_duplicate") == [["train/train2.png", "val/again.png"]]


def test_strict_exits_1_on_problems_and_json_lists_them(broken_ds, tmp_path, capsys):
    out_json = tmp_path / "report" / "inspect.json"
    code, out, err = _run(capsys, broken_ds, "--strict", "--json", out_json, "--workers", 1)
    assert code == 1
    assert "Problems" in out and "near_constant" in out
    data = json.loads(out_json.read_text())
    assert set(data) >= {"splits", "problems", "scale"}
    assert {s["name"] for s in data["splits"]} == {"train", "val", "test"}
    for problem in data["problems"]:
        assert set(problem) == {"kind", "files", "detail"}
        assert problem["kind"] in PROBLEM_KINDS
        assert isinstance(problem["files"], list) and all(isinstance(f, str) for f in problem["files"])
    assert {p["kind"] for p in data["problems"]} == set(PROBLEM_KINDS) - {"manifest_mismatch"}
    assert not [p for p in out_json.parent.iterdir() if p.name.endswith(".tmp")]
    # Without --strict, problems are reported but the exit code is 0.
    assert _run(capsys, broken_ds, "--workers", 1)[0] == 0


def test_report_is_the_same_for_any_worker_count(broken_ds):
    one, _ = inspect_dataset(broken_ds, workers=1)
    two, _ = inspect_dataset(broken_ds, workers=2)
    a, b = one.to_json(), two.to_json()
    a.pop("seconds"), b.pop("seconds")
    assert a == b


# ----------------------------------------------------------------------------- manifest


def test_manifest_mismatch_size_missing_and_unlisted(tmp_path):
    ds = _clean_ds(tmp_path)
    rows = []
    for split, names in (("train", [f"train{i}" for i in range(5)]), ("val", ["val0", "val1"]), ("test", ["test0", "test1"])):
        for name in names:
            rows.append({"id": name, "split": split, "hr": f"{split}/{name}.png", "lr": f"{split}_X4/{name}.png",
                         "hr_size": [96, 64], "lr_size": [24, 16]})
    rows.append({"id": "dup", "split": None, "hr": None, "lr": None, "dup_of": "train0"})
    (ds / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (ds / "dataset.json").write_text(json.dumps({"scale": SCALE, "settings": {"dedup_threshold": 3}}))
    report, _ = inspect_dataset(ds, workers=1)
    assert report.problems == []
    assert report.layout == "srdata" and report.scale_source == "dataset.json" and report.dedup_threshold == 3
    # Now break it: a file replaced by another image of another size, and a pair nobody listed.
    _save(ds / "train" / "train3.png", _picture(55, w=100, h=64))
    _save(ds / "test" / "extra.png", _picture(56))
    _save(ds / "test_X4" / "extra.png", _lr_of(_picture(56)))
    report, _ = inspect_dataset(ds, workers=1)
    found = _problems(report, "manifest_mismatch")
    assert found == [["test/extra.png"], ["test_X4/extra.png"], ["train/train3.png"]]
    detail = next(p.detail for p in report.problems if p.files == ["train/train3.png"] and p.kind == "manifest_mismatch")
    assert "100x64" in detail and "96x64" in detail


def test_manifest_listing_a_missing_file(tmp_path):
    ds = _clean_ds(tmp_path)
    rows = [{"id": "g", "split": "val", "hr": "val/gone.png", "lr": "val_X4/gone.png"}]
    (ds / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    report, _ = inspect_dataset(ds, workers=1)
    missing = [p for p in report.problems if p.kind == "manifest_mismatch" and "missing" in p.detail]
    assert sorted(p.files[0] for p in missing) == ["val/gone.png", "val_X4/gone.png"]


def test_manifest_with_per_file_sha256_detects_changed_bytes(tmp_path):
    """If the manifest records each output's sha256, a file whose bytes changed is reported."""
    import hashlib

    ds = tmp_path / "ds"
    _add_pair(ds, "train", "a", _picture(1))
    _add_pair(ds, "train", "b", _picture(2))
    rows = []
    for name in ("a", "b"):
        hr, lr = ds / "train" / f"{name}.png", ds / "train_X4" / f"{name}.png"
        rows.append({"id": name, "hr": f"train/{name}.png", "lr": f"train_X4/{name}.png",
                     "hr_sha256": hashlib.sha256(hr.read_bytes()).hexdigest(),
                     "lr_sha256": hashlib.sha256(lr.read_bytes()).hexdigest()})
    (ds / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert inspect_dataset(ds, workers=1)[0].problems == []
    Image.open(ds / "train" / "b.png").save(ds / "train" / "b.png", compress_level=0)  # same pixels, new bytes
    report, _ = inspect_dataset(ds, workers=1)
    assert _problems(report, "manifest_mismatch") == [["train/b.png"]]


# ----------------------------------------------------------------------------- scale and layout


def test_scale_from_dataset_json_wins_and_conflicting_option_is_an_error(tmp_path, capsys):
    ds = _clean_ds(tmp_path)
    (ds / "dataset.json").write_text(json.dumps({"scale": 4, "settings": {}}))
    assert resolve_layout(ds).scale_source == "dataset.json"
    code, _, err = _run(capsys, ds, "--scale", 2)
    assert code == 2 and err.count("\n") == 1 and "--scale" in err and "dataset.json" in err


def test_scale_from_folder_names_and_from_option(tmp_path, capsys):
    ds = _clean_ds(tmp_path, scale=2)
    layout = resolve_layout(ds)
    assert (layout.scale, layout.scale_source) == (2, "folder names")
    # A second scale's folders make the name ambiguous: --scale picks one.
    _add_pair(ds, "train", "train0", _picture(1), scale=3)  # writes train_X3 (HR overwritten identically-sized)
    with pytest.raises(UserError, match="several scales"):
        resolve_layout(ds)
    assert resolve_layout(ds, scale=3).scale == 3
    code, _, err = _run(capsys, ds)
    assert code == 2 and "--scale" in err


def test_hr_lr_folders_need_a_scale_unless_named(tmp_path, capsys):
    hr_dir, lr_dir = tmp_path / "hr", tmp_path / "lr"
    for i in range(3):
        hr = _picture(i)
        _save(hr_dir / f"{i}.png", hr)
        _save(lr_dir / f"{i}.png", _lr_of(hr))
    code, _, err = _run(capsys, "--hr", hr_dir, "--lr", lr_dir)
    assert code == 2 and "--scale" in err
    report, _ = inspect_dataset(None, hr_dir, lr_dir, scale=4, workers=1)
    assert report.layout == "hr-lr" and report.splits[0].pairs == 3 and report.problems == []
    named = tmp_path / "pairs_X4"
    shutil.copytree(lr_dir, named)
    assert resolve_layout(None, hr_dir, named).scale == 4


def test_div2k_lr_names_pair_up(tmp_path):
    ds = tmp_path / "ds"
    hr = _picture(9)
    _save(ds / "train" / "0001.png", hr)
    _save(ds / "train_X4" / "0001x4.png", _lr_of(hr))
    report, _ = inspect_dataset(ds, workers=1)
    assert report.splits[0].pairs == 1 and report.problems == []


@pytest.mark.parametrize(
    "args, needle",
    [
        (["{missing}"], "not a folder"),
        (["{empty}"], "no HR/LR folder pair"),
        (["{ds}", "--hr", "{ds}/train", "--lr", "{ds}/train_X4", "--scale", "4"], "not both"),
        (["--hr", "{ds}/train"], "--hr and --lr"),
        (["{ds}", "--workers", "0"], "--workers"),
        (["{ds}", "--sheet", "{tmp}/sheet.jpg"], ".png"),
        (["{ds}", "--scale", "1"], "--scale"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, args, needle):
    ds = _clean_ds(tmp_path)
    (tmp_path / "empty").mkdir()
    fill = {"missing": tmp_path / "nope", "empty": tmp_path / "empty", "ds": ds, "tmp": tmp_path}
    code, _, err = _run(capsys, *[a.format(**fill) for a in args])
    assert code == 2
    assert err.startswith("srdata: error: ") and err.count("\n") == 1 and needle in err
    assert not (tmp_path / "sheet.jpg").exists()


def test_bad_dataset_json_is_exit_2(tmp_path, capsys):
    ds = _clean_ds(tmp_path)
    (ds / "dataset.json").write_text("{not json")
    code, _, err = _run(capsys, ds)
    assert code == 2 and "dataset.json" in err and err.count("\n") == 1


# ----------------------------------------------------------------------------- contact sheet


def test_sheet_is_a_png_of_the_expected_size_and_seeded(tmp_path, capsys):
    ds = _clean_ds(tmp_path)
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    assert _run(capsys, ds, "--sheet", a, "--sheet-rows", 3, "--seed", 5, "--workers", 1)[0] == 0
    assert _run(capsys, ds, "--sheet", b, "--sheet-rows", 3, "--seed", 5, "--workers", 2)[0] == 0
    with Image.open(a) as image:
        assert image.format == "PNG" and image.mode == "RGB"
        assert image.size == sheet_size(3)
        pixels = np.asarray(image)
    assert pixels.std() > 10  # something was drawn
    assert a.read_bytes() == b.read_bytes()  # same seed -> same sample -> same bytes
    c = tmp_path / "c.png"
    _run(capsys, ds, "--sheet", c, "--sheet-rows", 3, "--seed", 6, "--workers", 1)
    assert c.read_bytes() != a.read_bytes()


def test_sheet_with_fewer_pairs_than_rows_shows_all(tmp_path, capsys):
    ds = tmp_path / "ds"
    _add_pair(ds, "train", "only", _picture(3, w=400, h=300))
    sheet = tmp_path / "s.png"
    assert _run(capsys, ds, "--sheet", sheet)[0] == 0
    with Image.open(sheet) as image:
        assert image.size == sheet_size(1)


# ----------------------------------------------------------------------------- a real `srdata build` output


def test_dataset_built_by_srdata_build(tmp_path, samples_dir, capsys):
    from srdata.build import build_dataset
    from srdata.build_options import BuildOptions

    src = tmp_path / "raw"
    src.mkdir()
    for path in sorted(samples_dir.glob("*.png"))[:6]:
        shutil.copy(path, src / path.name)
    ds = tmp_path / "ds"
    build_dataset(
        BuildOptions(
            src=src, out=ds, scale=4, blur=1.0, noise=(1.0, 4.0), jpeg=(70, 95), hr_max_side=256,
            val=1, test=1, workers=1,
        ),
        progress=False,
    )
    report, _ = inspect_dataset(ds, workers=1)
    assert (report.layout, report.scale, report.scale_source) == ("srdata", 4, "dataset.json")
    assert report.problems == []
    manifest = [json.loads(line) for line in (ds / "manifest.jsonl").read_text().splitlines()]
    kept = [m for m in manifest if m["hr"]]
    assert sum(s.pairs for s in report.splits) == len(kept)
    assert _run(capsys, ds, "--strict", "--workers", 1)[0] == 0

    # Tamper: one HR replaced by a picture of another size, one LR deleted, and one pixel
    # changed in an HR and in an LR of two other pairs (same sizes: only the pixels tell).
    victim, gone, hr_edit, lr_edit = kept[:4]
    _save(ds / victim["hr"], _picture(77, w=120, h=80))
    (ds / gone["lr"]).unlink()
    for rel in (hr_edit["hr"], lr_edit["lr"]):
        pixels = np.asarray(Image.open(ds / rel).convert("RGB")).copy()
        pixels[5, 7] = 255 - pixels[5, 7]
        _save(ds / rel, pixels)
    report, _ = inspect_dataset(ds, workers=1)
    mismatch = _problems(report, "manifest_mismatch")
    assert mismatch == sorted(
        [[victim["hr"]], [gone["lr"]], sorted([hr_edit["hr"], hr_edit["lr"]]), sorted([lr_edit["hr"], lr_edit["lr"]])]
    )
    assert _problems(report, "missing_pair") == [[gone["hr"]]]
    assert _problems(report, "scale_mismatch") == [sorted([victim["hr"], victim["lr"]])]
    assert _run(capsys, ds, "--strict", "--workers", 1)[0] == 1


def test_pairs_too_small_to_score_are_counted_but_not_scored(tmp_path):
    ds = tmp_path / "ds"
    tiny = np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    _add_pair(ds, "train", "tiny", tiny)  # 16x16 minus 4 px each side: 8x8, smaller than SSIM's 11x11
    _add_pair(ds, "train", "fine", _picture(2))
    report, _ = inspect_dataset(ds, workers=1)
    assert report.splits[0].pairs == 2 and report.splits[0].baseline_pairs == 1
    assert report.problems == []


def test_unwritable_json_path_is_exit_2(tmp_path, capsys):
    ds = _clean_ds(tmp_path)
    (tmp_path / "taken").mkdir()
    code, _, err = _run(capsys, ds, "--json", tmp_path / "taken", "--workers", 1)
    assert code == 2 and "--json" in err and err.count("\n") == 1


def test_sheet_sample_covers_every_split_and_is_seeded():
    splits = ["train"] * 20 + ["val"] * 2 + ["test"] * 2
    for seed in range(5):
        rows = choose_rows(splits, 4, seed)
        assert len(rows) == 4 and rows == sorted(set(rows))
        assert {splits[i] for i in rows} == {"train", "val", "test"}
        assert rows == choose_rows(splits, 4, seed)
    assert choose_rows(splits, 50, 0) == list(range(len(splits)))
    assert len(choose_rows(splits, 2, 0)) == 2
    assert {tuple(choose_rows(splits, 4, s)) for s in range(5)} != {tuple(choose_rows(splits, 4, 0))}


# ----------------------------------------------------------------------------- EXIF orientation


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_exif_rotated_hr_decodes_at_header_size_in_inspect_and_the_loader(tmp_path, capsys, ext):
    """An HR 128x64 tagged "rotate 90" (orientation 6) beside an untagged 32x16 LR.

    Headers say 128x64 = 4 x 32x16, so inspect and the trainer's pairing accept the pair; the
    pixels every dataset reader decodes must then be 128x64 too (not 64x128), or the trainer
    would cut HR patches that do not match the LR ones.
    """
    hr = _picture(7, w=128, h=64)
    ds = tmp_path / "ds"
    hr_path = ds / "train" / f"tagged{ext}"
    hr_path.parent.mkdir(parents=True)
    img = Image.fromarray(hr)
    exif = img.getexif()
    exif[0x0112] = 6
    img.save(hr_path, exif=exif.tobytes(), **({"quality": 95} if ext == ".jpg" else {}))
    _save(ds / "train_X4" / "tagged.png", _lr_of(hr))
    with Image.open(hr_path) as header:
        assert header.size == (128, 64) and header.getexif()[0x0112] == 6

    loaded = read_png_rgb(hr_path)
    assert loaded.shape == (64, 128, 3)
    if ext == ".png":
        assert np.array_equal(loaded, hr)
    report, scan = inspect_dataset(ds, workers=1)
    (facts,) = scan.facts
    assert facts.hr.error is None and facts.hr.size == (128, 64)
    assert facts.psnr_y is not None and facts.psnr_y > 20  # scored: decoded sizes matched 4 x LR
    assert report.problems == []
    assert _run(capsys, ds, "--strict", "--workers", 1)[0] == 0
