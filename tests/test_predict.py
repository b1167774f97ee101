"""`sr-train predict`: kinds of images in = kinds out, names, tiling, skipping, engines, errors."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from sr_train.cli import main
from sr_train.predict import PredictOptions, collect_jobs, predict
from sr_train.tiling import upscale, upscaled_tiles

SCALE = 2


def _tiny_model():
    """Compact x2, 8 features, 2 body convs: receptive field 4 + 2 (bicubic skip) LR px."""
    from sr_train.models import build_model, init_weights

    model = build_model({"arch": "compact", "nf": 8, "nc": 2, "scale": SCALE})
    init_weights(model, seed=0)
    rng = np.random.default_rng(3)
    for param in model.parameters():  # the last conv starts at zero: make the output differ from bicubic
        param.set_value(param.numpy() + rng.normal(0, 0.1, param.shape).astype(np.float32))
    model.eval()
    return model


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    from sr_train.weights.load import model_state
    from sr_train.weights.srkit import save_weights

    model = _tiny_model()
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_weights(path, model_state(model), model.arch)
    return path


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SRKIT_CACHE", str(tmp_path / "cache"))


def _rgb(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth colour image with an edge (uint8 RGB), more like a drawing than noise."""
    yy, xx = np.mgrid[0:height, 0:width]
    rng = np.random.default_rng(seed)
    img = np.stack([xx * 255 / width, yy * 255 / height, ((xx + yy) % 9 < 4) * 200.0], axis=2)
    return np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)


def _save(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path) if mode else Image.fromarray(array).save(path)
    return path


def _run(weights, *args) -> int:
    return main(["predict", "--weights", str(weights), "--no-progress", "--engine", "paddle", *map(str, args)])


def _expected_rgb(img_rgb_float: np.ndarray, **kwargs) -> np.ndarray:
    return upscale(_tiny_model(), img_rgb_float, SCALE, **kwargs)


def test_rgb_output_is_the_model_output_rounded(weights, tmp_path):
    src = _save(tmp_path / "in" / "a.png", _rgb(19, 26))
    assert _run(weights, src, "--out", tmp_path / "out") == 0
    got = np.asarray(Image.open(tmp_path / "out" / "a.png"))
    expected = np.rint(_expected_rgb(_rgb(19, 26).astype(np.float32) / 255) * 255)
    assert got.shape == (38, 52, 3) and got.dtype == np.uint8
    assert np.abs(got.astype(int) - expected).max() <= 1


def test_alpha_is_upscaled_separately_and_kept(weights, tmp_path):
    rgba = np.dstack([_rgb(15, 20), np.tile(np.linspace(0, 255, 20).astype(np.uint8), (15, 1))])
    src = _save(tmp_path / "in" / "t.png", rgba, "RGBA")
    assert _run(weights, src, "--out", tmp_path / "bic") == 0
    out = Image.open(tmp_path / "bic" / "t.png")
    assert out.mode == "RGBA" and out.size == (40, 30)
    alpha = np.asarray(out)[:, :, 3].astype(int)
    bicubic = cv2.resize(rgba[:, :, 3].astype(np.float32) / 255, (40, 30), interpolation=cv2.INTER_CUBIC)
    assert np.abs(alpha - np.rint(np.clip(bicubic, 0, 1) * 255)).max() <= 1
    # The colour channels are not disturbed by the alpha.
    colour = np.asarray(out)[:, :, :3].astype(int)
    assert np.abs(colour - np.rint(_expected_rgb(rgba[:, :, :3].astype(np.float32) / 255) * 255)).max() <= 1

    assert _run(weights, src, "--out", tmp_path / "mod", "--alpha", "model") == 0
    by_model = np.asarray(Image.open(tmp_path / "mod" / "t.png"))[:, :, 3].astype(int)
    grey = np.repeat(rgba[:, :, 3:4].astype(np.float32) / 255, 3, axis=2)
    assert np.abs(by_model - np.rint(_expected_rgb(grey).mean(axis=2) * 255)).max() <= 1
    assert np.abs(by_model - alpha).max() > 2  # the option really changes what upscales the alpha


def test_16_bit_input_gives_16_bit_output_with_16_bit_precision(weights, tmp_path):
    rgb16 = (_rgb(14, 17).astype(np.uint16) * 257 + np.random.default_rng(1).integers(0, 200, (14, 17, 3))).astype(np.uint16)
    src = tmp_path / "in" / "deep.png"
    src.parent.mkdir()
    cv2.imwrite(str(src), cv2.cvtColor(rgb16, cv2.COLOR_RGB2BGR))
    assert _run(weights, src, "--out", tmp_path / "out") == 0
    got = cv2.imread(str(tmp_path / "out" / "deep.png"), cv2.IMREAD_UNCHANGED)
    assert got.dtype == np.uint16 and got.shape == (28, 34, 3)
    expected = np.rint(_expected_rgb(rgb16.astype(np.float32) / 65535) * 65535)
    assert np.abs(cv2.cvtColor(got, cv2.COLOR_BGR2RGB).astype(np.int64) - expected).max() <= 2
    assert (got % 257 != 0).mean() > 0.5  # not 8-bit values stretched to 16 bits


def test_grey_stays_grey_with_and_without_alpha(weights, tmp_path):
    grey = _rgb(16, 12)[:, :, 0]
    _save(tmp_path / "in" / "g.png", grey, "L")
    _save(tmp_path / "in" / "ga.png", np.dstack([grey, np.full_like(grey, 128)]), "LA")
    grey16 = tmp_path / "in" / "g16.png"
    cv2.imwrite(str(grey16), grey.astype(np.uint16) * 257 + 3)
    assert _run(weights, tmp_path / "in", "--out", tmp_path / "out") == 0
    out = Image.open(tmp_path / "out" / "g.png")
    assert out.mode == "L" and out.size == (24, 32)
    expected = _expected_rgb(np.repeat(grey[:, :, None].astype(np.float32) / 255, 3, axis=2))
    expected_grey = cv2.cvtColor(expected, cv2.COLOR_RGB2GRAY)
    assert np.abs(np.asarray(out).astype(int) - np.rint(expected_grey * 255)).max() <= 1
    assert Image.open(tmp_path / "out" / "ga.png").mode == "LA"
    g16 = cv2.imread(str(tmp_path / "out" / "g16.png"), cv2.IMREAD_UNCHANGED)
    assert g16.dtype == np.uint16 and g16.ndim == 2


def test_relative_names_and_folder_recursion(weights, tmp_path):
    _save(tmp_path / "in" / "sub" / "deep" / "a.jpg", _rgb(8, 8))
    _save(tmp_path / "in" / "b.png", _rgb(8, 9))
    (tmp_path / "in" / "notes.txt").write_text("not an image")
    _save(tmp_path / "in" / ".thumbnails" / "b.png", _rgb(8, 9))  # hidden: an app's cache, not the user's
    single = _save(tmp_path / "elsewhere" / "c.webp", _rgb(9, 8))
    out = tmp_path / "out"
    assert _run(weights, tmp_path / "in", single, "--out", out) == 0
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["b.png", "c.png", "sub/deep/a.png"]


def test_outscale_resizes_to_f_times_the_input(weights, tmp_path):
    src = _save(tmp_path / "in" / "o.png", _rgb(15, 21))
    for factor, size in [("1.5", (32, 23)), ("1", (21, 15)), ("3", (63, 45))]:
        assert _run(weights, src, "--out", tmp_path / factor, "--outscale", factor) == 0
        assert Image.open(tmp_path / factor / "o.png").size == size


def test_tiled_equals_untiled_through_the_cli(weights, tmp_path):
    src = _save(tmp_path / "in" / "big.png", _rgb(37, 29))
    assert _run(weights, src, "--out", tmp_path / "whole", "--tile", "0") == 0
    assert _run(weights, src, "--out", tmp_path / "tiled", "--tile", "8", "--tile-pad", "8") == 0
    whole = np.asarray(Image.open(tmp_path / "whole" / "big.png")).astype(int)
    tiled = np.asarray(Image.open(tmp_path / "tiled" / "big.png")).astype(int)
    assert np.abs(whole - tiled).max() <= 1
    # With no context the seams show, so the comparison above is not vacuous.
    assert _run(weights, src, "--out", tmp_path / "seams", "--tile", "8", "--tile-pad", "0") == 0
    assert np.abs(np.asarray(Image.open(tmp_path / "seams" / "big.png")).astype(int) - whole).max() > 1


def test_bad_inputs_are_skipped_with_a_reason_and_exit_1(weights, tmp_path, capsys):
    good = _save(tmp_path / "in" / "good.png", _rgb(10, 10))
    buffer = io.BytesIO()
    Image.fromarray(_rgb(40, 40)).save(buffer, format="PNG")
    (tmp_path / "in" / "truncated.png").write_bytes(buffer.getvalue()[:60])
    (tmp_path / "in" / "text.jpg").write_text("hello")
    buffer = io.BytesIO()
    Image.fromarray(_rgb(40, 40)).save(buffer, format="JPEG")
    (tmp_path / "in" / "cut.jpeg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])  # OpenCV decodes this
    code = _run(weights, tmp_path / "in", "--out", tmp_path / "out")
    err = capsys.readouterr().err
    assert code == 1
    assert (tmp_path / "out" / "good.png").is_file()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.png"]  # no partial output, no temp files
    lines = [line for line in err.splitlines() if "skipped" in line]
    assert len(lines) == 3 and all("not a readable image" in line for line in lines)
    assert "Traceback" not in err
    assert good.is_file()
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temp files left


@pytest.mark.parametrize(
    "args, message",
    [
        (["--tile", "-1"], "--tile"),
        (["--tile-pad", "-3"], "--tile-pad"),
        (["--outscale", "0"], "--outscale"),
        (["--alpha", "magic"], "--alpha"),
        (["--engine", "tensorflow"], "--engine"),
    ],
)
def test_bad_options_exit_2_with_one_line(weights, tmp_path, capsys, args, message):
    src = _save(tmp_path / "a.png", _rgb(8, 8))
    assert _run(weights, src, "--out", tmp_path / "out", *args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sr-train: error:") and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_missing_input_or_weights_exit_2(weights, tmp_path, capsys):
    assert _run(weights, tmp_path / "nope.png", "--out", tmp_path / "out") == 2
    assert "nope.png" in capsys.readouterr().err
    src = _save(tmp_path / "a.png", _rgb(8, 8))
    assert _run(tmp_path / "missing.safetensors", src, "--out", tmp_path / "out") == 2
    assert "missing.safetensors" in capsys.readouterr().err


def test_two_inputs_with_the_same_output_name_are_refused(weights, tmp_path, capsys):
    _save(tmp_path / "in" / "x.png", _rgb(8, 8))
    _save(tmp_path / "in" / "x.jpg", _rgb(8, 8))
    assert _run(weights, tmp_path / "in", "--out", tmp_path / "out") == 2
    assert "x.png" in capsys.readouterr().err


def test_output_folder_inside_the_input_folder_is_not_read_back(tmp_path):
    _save(tmp_path / "in" / "a.png", _rgb(8, 8))
    _save(tmp_path / "in" / "up" / "a.png", _rgb(8, 8))  # a previous run's output
    jobs, problems = collect_jobs([tmp_path / "in"], tmp_path / "in" / "up")
    assert problems == []
    assert [job.relative.as_posix() for job in jobs] == ["a.png"]


def test_onnx_engine_matches_paddle_and_caches_its_export(weights, tmp_path, capsys):
    src = _save(tmp_path / "in" / "a.png", _rgb(23, 18))
    base = ["predict", "--weights", str(weights), "--no-progress", str(src)]
    assert main([*base, "--out", str(tmp_path / "paddle"), "--engine", "paddle"]) == 0
    assert main([*base, "--out", str(tmp_path / "onnx"), "--engine", "onnx"]) == 0
    cached = list((tmp_path / "cache" / "onnx").glob("*/model.onnx"))
    assert len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns
    assert main([*base, "--out", str(tmp_path / "onnx2"), "--engine", "onnx"]) == 0
    assert cached[0].stat().st_mtime_ns == stamp  # exported once, reused
    paddle_out = np.asarray(Image.open(tmp_path / "paddle" / "a.png")).astype(int)
    onnx_out = np.asarray(Image.open(tmp_path / "onnx" / "a.png")).astype(int)
    assert np.abs(paddle_out - onnx_out).max() <= 1


def test_export_folder_runs_with_both_engines(weights, tmp_path):
    assert main(["export", "--weights", str(weights), "--format", "onnx", "--out", str(tmp_path / "exp")]) == 0
    src = _save(tmp_path / "in" / "a.png", _rgb(12, 15))
    opts = PredictOptions(weights=tmp_path / "exp", inputs=[src], out=tmp_path / "o1", engine="onnx")
    assert len(predict(opts, progress=False).written) == 1
    # Only ONNX was exported: asking for Paddle says how to get it.
    opts.engine, opts.out = "paddle", tmp_path / "o2"
    with pytest.raises(Exception, match="export --format paddle"):
        predict(opts, progress=False)
    assert main(["export", "--weights", str(weights), "--format", "paddle", "--out", str(tmp_path / "exp")]) == 0
    assert len(predict(opts, progress=False).written) == 1
    a = np.asarray(Image.open(tmp_path / "o1" / "a.png")).astype(int)
    b = np.asarray(Image.open(tmp_path / "o2" / "a.png")).astype(int)
    assert np.abs(a - b).max() <= 1


def test_side_by_side_sheet_has_labelled_panels_in_a_row(tmp_path, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("side_by_side", Path(__file__).resolve().parents[1] / "scripts" / "side_by_side.py")
    side_by_side = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(side_by_side)
    lr = _save(tmp_path / "lr.png", _rgb(20, 30))
    sr = _save(tmp_path / "sr.png", cv2.resize(_rgb(20, 30), (60, 40), interpolation=cv2.INTER_CUBIC))
    hr = _save(tmp_path / "hr.png", _rgb(40, 60))
    assert side_by_side.main(["--lr", str(lr), "--sr", str(sr), "--hr", str(hr), "--out", str(tmp_path / "s.png")]) == 0
    sheet = np.asarray(Image.open(tmp_path / "s.png"))
    assert sheet.shape == (40 + side_by_side.LABEL_HEIGHT, 4 * 60 + 3 * side_by_side.GAP, 3)
    assert (sheet[: side_by_side.LABEL_HEIGHT] < 128).any()  # labels drawn
    first = sheet[side_by_side.LABEL_HEIGHT:, :60]
    np.testing.assert_array_equal(first, cv2.resize(_rgb(20, 30), (60, 40), interpolation=cv2.INTER_NEAREST))
    assert side_by_side.main(["--lr", str(lr), "--sr", str(sr), "--crop", "5,5,10,8", "--out", str(tmp_path / "c.png")]) == 0
    assert Image.open(tmp_path / "c.png").size == (3 * 20 + 2 * side_by_side.GAP, 16 + side_by_side.LABEL_HEIGHT)
    for folder, name, img in [("LR", "b.png", _rgb(20, 30)), ("SR", "b.png", _rgb(40, 60)), ("LR", "c.png", _rgb(2, 2))]:
        _save(tmp_path / folder / name, img)
    assert side_by_side.main(["--lr", str(tmp_path / "LR"), "--sr", str(tmp_path / "SR"), "--out", str(tmp_path / "f.png")]) == 0
    assert Image.open(tmp_path / "f.png").size == (3 * 60 + 2 * side_by_side.GAP, 40 + side_by_side.LABEL_HEIGHT)
    assert side_by_side.main(["--lr", str(hr), "--sr", str(lr), "--out", str(tmp_path / "bad.png")]) == 2
    assert "not an integer multiple" in capsys.readouterr().err


def test_paddle_engine_turns_onednn_off(weights, tmp_path):
    """oneDNN makes Paddle's inference path segfault on this CPU: an environment that enables it is overridden."""
    import paddle

    from sr_train.engines import open_engine

    paddle.set_flags({"FLAGS_use_mkldnn": True})
    try:
        open_engine(weights, "paddle")
        assert paddle.get_flags(["FLAGS_use_mkldnn"])["FLAGS_use_mkldnn"] is False
        assert paddle.get_flags(["FLAGS_use_onednn"])["FLAGS_use_onednn"] is False
    finally:
        paddle.set_flags({"FLAGS_use_mkldnn": False})


def test_decompression_bomb_is_skipped_before_decoding(weights, tmp_path, capsys, monkeypatch):
    import srdata.imageio
    from srdata.build_options import BuildOptions
    from sr_train.predict import MAX_PIXELS

    assert MAX_PIXELS == BuildOptions.max_pixels  # one bomb limit: srdata build's default
    monkeypatch.setattr(srdata.imageio, "_decode_with_pillow", lambda *a: pytest.fail("decoded a bomb"))
    monkeypatch.setattr(cv2, "imdecode", lambda *a: pytest.fail("decoded a bomb"))
    _save(tmp_path / "in" / "big.png", _rgb(10, 10))
    _save(tmp_path / "in" / "photo.jpg", _rgb(10, 10))
    assert _run(weights, tmp_path / "in", "--out", tmp_path / "out", "--max-pixels", "50") == 1
    err = capsys.readouterr().err
    assert err.count("too many pixels (10x10 = 100 > --max-pixels 50)") == 2
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_default_tile_follows_the_engine(weights, tmp_path, monkeypatch):
    """Without --tile each runner gets the tile its memory measurement allows (sr_train.engines)."""
    import sr_train.predict as predict_module
    from sr_train.engines import ONNX_TILE, PADDLE_EXPORT_TILE
    from sr_train.tiling import DEFAULT_TILE

    used = []

    def recording_tiles(model, lr, scale, tile, tile_pad, on_tile=None):
        used.append(tile)
        return upscaled_tiles(model, lr, scale, tile, tile_pad, on_tile)

    monkeypatch.setattr(predict_module, "upscaled_tiles", recording_tiles)
    src = _save(tmp_path / "a.png", _rgb(8, 8))
    assert main(["export", "--weights", str(weights), "--format", "paddle", "--out", str(tmp_path / "exp")]) == 0
    for source, engine in [(weights, "paddle"), (weights, "onnx"), (tmp_path / "exp", "paddle")]:
        predict(PredictOptions(weights=source, inputs=[src], out=tmp_path / engine, engine=engine), progress=False)
    predict(PredictOptions(weights=weights, inputs=[src], out=tmp_path / "x", engine="onnx", tile=40), progress=False)
    assert used == [DEFAULT_TILE, ONNX_TILE, PADDLE_EXPORT_TILE, 40]


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_like_pillow_does(tmp_path, orientation):
    from PIL import ImageOps

    from sr_train.predict import read_image

    img = Image.fromarray(_rgb(10, 16))
    exif = img.getexif()
    exif[0x0112] = orientation
    path = tmp_path / "o.png"
    img.save(path, exif=exif)
    pixels, grey = read_image(path)
    upright = np.asarray(ImageOps.exif_transpose(Image.open(path)))
    np.testing.assert_array_equal(cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB), upright)
    assert not grey


def test_outputs_never_replace_inputs(weights, tmp_path, capsys):
    src = _save(tmp_path / "in" / "a.png", _rgb(8, 8))
    before = src.read_bytes()
    assert _run(weights, tmp_path / "in", "--out", tmp_path / "in") == 2
    assert "input folder" in capsys.readouterr().err
    assert _run(weights, src, "--out", tmp_path / "in") == 2
    assert "overwritten by its own output" in capsys.readouterr().err
    assert src.read_bytes() == before
    (tmp_path / "empty").mkdir()
    assert _run(weights, tmp_path / "empty", "--out", tmp_path / "out") == 2
    assert "no image files" in capsys.readouterr().err


def test_progress_bar_goes_to_stderr_and_stdout_holds_only_the_result_line(weights, tmp_path, capsys):
    src = _save(tmp_path / "in" / "a.png", _rgb(10, 12))
    code = main(["predict", "--weights", str(weights), "--engine", "paddle", str(src), "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 0
    lines = captured.out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("wrote 1 image(s)")  # no bar text mixed into the result
    assert "upscaling" in captured.err and "MP/s" in captured.err  # the bar is still drawn, on stderr


@pytest.mark.parametrize("orientation", [1, 6, 8])
def test_jpeg_is_decoded_once_by_srdata_upright_and_grey_stays_grey(tmp_path, monkeypatch, orientation):
    """JPEGs go through srdata's decoder alone (no second OpenCV decode), EXIF orientation applied."""
    from PIL import ImageOps

    from sr_train.predict import read_image

    monkeypatch.setattr(cv2, "imdecode", lambda *a: pytest.fail("JPEG decoded a second time by OpenCV"))
    monkeypatch.setattr(cv2, "imread", lambda *a: pytest.fail("JPEG decoded a second time by OpenCV"))
    for name, array in [("c.jpg", _rgb(10, 16)), ("g.jpg", _rgb(10, 16)[:, :, 1])]:
        img = Image.fromarray(array)
        exif = img.getexif()
        exif[0x0112] = orientation
        img.save(tmp_path / name, exif=exif, quality=95)
        pixels, grey = read_image(tmp_path / name)
        upright = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / name)).convert("RGB"))
        assert pixels.dtype == np.uint8
        np.testing.assert_array_equal(cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB), upright)
        assert grey == (array.ndim == 2)


def test_16_bit_tiff_and_webp_alpha_are_kept(weights, tmp_path):
    rgb16 = (np.random.default_rng(2).integers(0, 65536, (9, 11, 3))).astype(np.uint16)
    (tmp_path / "in").mkdir()
    cv2.imwrite(str(tmp_path / "in" / "deep.tif"), rgb16)
    rgba = np.dstack([_rgb(9, 11), np.tile(np.linspace(0, 255, 11).astype(np.uint8), (9, 1))])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "in" / "t.webp", lossless=True)
    assert _run(weights, tmp_path / "in", "--out", tmp_path / "out") == 0
    deep = cv2.imread(str(tmp_path / "out" / "deep.png"), cv2.IMREAD_UNCHANGED)
    assert deep.dtype == np.uint16 and deep.shape == (18, 22, 3) and (deep % 257 != 0).mean() > 0.5
    assert Image.open(tmp_path / "out" / "t.png").mode == "RGBA"


def test_tile_help_states_the_engines_default_tiles(capsys, monkeypatch):
    """The --tile help is built from sr_train.engines' constants, so it cannot drift from them."""
    from sr_train.engines import DYGRAPH_TILE, ONNX_TILE, PADDLE_EXPORT_TILE

    monkeypatch.setenv("COLUMNS", "400")
    assert main(["predict", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.replace("│", " ").split())
    assert f"Default: {ONNX_TILE} (onnx), {DYGRAPH_TILE} (paddle), {PADDLE_EXPORT_TILE} (paddle on an export" in text


def _old_predict_pixels(img: np.ndarray, grey: bool, engine, opts) -> np.ndarray:
    """What predict wrote before it filled the final array tile by tile (frozen copy of that code):
    the whole float result, alpha and --outscale on whole float images, then scaled and np.rint-ed."""
    from sr_train.predict import outscale_size, split_channels

    rgb, alpha = split_channels(img, grey)
    tile = engine.default_tile if opts.tile is None else opts.tile
    out = upscale(engine.model, rgb, engine.scale, tile, opts.tile_pad)
    out_alpha = None
    if alpha is not None and opts.alpha == "model":
        out_alpha = upscale(engine.model, np.repeat(alpha[:, :, None], 3, axis=2), engine.scale, tile,
                            opts.tile_pad).mean(axis=2)
    elif alpha is not None:
        size = (alpha.shape[1] * engine.scale, alpha.shape[0] * engine.scale)
        out_alpha = np.clip(cv2.resize(alpha, size, interpolation=cv2.INTER_CUBIC), 0, 1)
    if opts.outscale is not None:
        size = outscale_size(rgb.shape[:2], opts.outscale)
        out = np.clip(cv2.resize(out, size, interpolation=cv2.INTER_LANCZOS4), 0, 1)
        if out_alpha is not None:
            out_alpha = np.clip(cv2.resize(out_alpha, size, interpolation=cv2.INTER_LANCZOS4), 0, 1)
    data = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY) if grey else out[:, :, ::-1]
    if out_alpha is not None:
        data = np.dstack([data, out_alpha])
    peak = 65535.0 if img.dtype == np.uint16 else 255.0
    data = data * peak
    np.rint(data, out=data)
    np.clip(data, 0, peak, out=data)
    return np.ascontiguousarray(data.astype(img.dtype))


def _kind(name: str) -> tuple[np.ndarray, bool]:
    """An OpenCV image of the named kind (as read_image returns it) and its greyness; 37 x 53 LR px."""
    base = cv2.cvtColor(_rgb(37, 53, seed=5), cv2.COLOR_RGB2BGR)
    deep = base.astype(np.uint16) * 257 + np.random.default_rng(6).integers(0, 257, base.shape).astype(np.uint16)
    pixels = deep if "16" in name else base
    alpha = np.tile(np.linspace(0, pixels.max(), 53).astype(pixels.dtype), (37, 1))
    if name.startswith("grey"):
        grey = pixels[:, :, 1]
        return (np.dstack([grey, grey, grey, alpha]) if "alpha" in name else grey), True
    return (np.dstack([pixels, alpha]) if "alpha" in name else pixels), False


@pytest.mark.parametrize("tile", [0, 9], ids=["untiled", "tiled"])
@pytest.mark.parametrize("kind,alpha,outscale", [
    ("rgb8", "bicubic", None), ("rgb16", "bicubic", None), ("grey8", "bicubic", None), ("grey16", "bicubic", None),
    ("rgb8-alpha", "bicubic", None), ("rgb16-alpha", "model", None), ("grey8-alpha", "model", None),
    ("grey16-alpha", "bicubic", None), ("rgb8-alpha", "bicubic", 1.5), ("grey16-alpha", "model", 3.0),
])
def test_pixels_written_tile_by_tile_equal_the_whole_float_path(tile, kind, alpha, outscale):
    """Filling the final 8/16-bit array tile by tile (never the whole float image) gives exactly the
    bytes of the old path: whole float result, then scaled and rounded. Grey matters most: OpenCV's
    RGB2GRAY rounds its SIMD body and tail differently, so per-tile conversion would not match."""
    from sr_train.engines import Engine
    from sr_train.predict import upscale_image

    img, grey = _kind(kind)
    engine = Engine("paddle", _tiny_model(), SCALE, 3, default_tile=0)
    opts = PredictOptions(weights=Path("unused"), inputs=[], out=Path("unused"), tile=tile, tile_pad=3,
                          alpha=alpha, outscale=outscale)
    got = upscale_image(img, grey, engine, opts)
    expected = _old_predict_pixels(img, grey, engine, opts)
    assert got.dtype == img.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("grey", [True, False], ids=["grey", "bgr"])
def test_sample_writer_fed_tile_by_tile_equals_converting_the_whole_image(grey):
    """Many random floats at 16 bits: enough pixels that converting grey tile by tile (where OpenCV's
    RGB2GRAY SIMD body and scalar tail fall elsewhere) would flip some roundings."""
    from sr_train.predict import SampleWriter

    rng = np.random.default_rng(8)
    rgb = rng.random((300, 700, 3), dtype=np.float32)
    alpha = rng.random((300, 700), dtype=np.float32)
    writer = SampleWriter((300, 700), grey, True, np.uint16)
    for y0 in range(0, 300, 64):  # raster order, as sr_train.tiling.upscaled_tiles yields tiles
        for x0 in range(0, 700, 45):
            rows, cols = slice(y0, min(y0 + 64, 300)), slice(x0, min(x0 + 45, 700))
            writer.put_colour(rows, cols, rgb[rows, cols])
            writer.put_alpha(rows, cols, alpha[rows, cols])
    colour = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[:, :, None] if grey else rgb[:, :, ::-1]
    expected = np.clip(np.rint(np.dstack([colour, alpha]) * 65535.0), 0, 65535).astype(np.uint16)
    np.testing.assert_array_equal(writer.image(), expected)
