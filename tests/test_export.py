"""`sr-train export`: Paddle inference models and ONNX files that compute what the dygraph model does."""

from __future__ import annotations

import json

import numpy as np
import paddle
import pytest

from sr_train.cli import main
from sr_train.onnx_runner import OnnxRunner
from sr_train.export import ONNX_TOLERANCE, export_model, read_info, reference_output, verify_onnx
from srdata.errors import UserError

ARCHS = [
    {"arch": "rrdbnet", "nf": 8, "nb": 1, "gc": 4, "scale": 4},
    {"arch": "rrdbnet", "nf": 8, "nb": 1, "gc": 4, "scale": 2},
    {"arch": "rrdbnet", "nf": 8, "nb": 1, "gc": 4, "scale": 1},
    {"arch": "compact", "nf": 8, "nc": 2, "scale": 4},
    {"arch": "compact", "nf": 8, "nc": 2, "scale": 3, "skip": "nearest", "act": "leakyrelu"},
]


def _model(arch: dict, seed: int = 0):
    from sr_train.models import build_model, init_weights

    model = build_model(arch)
    init_weights(model, seed=seed)
    rng = np.random.default_rng(seed + 10)
    for param in model.parameters():  # Compact's last conv starts at zero: give every layer a say
        param.set_value(param.numpy() + rng.normal(0, 0.05, param.shape).astype(np.float32))
    model.eval()
    return model


def _batch(n: int, height: int, width: int) -> np.ndarray:
    return np.random.default_rng(height * width).random((n, 3, height, width), dtype=np.float32)


def _dygraph(model, batch: np.ndarray) -> np.ndarray:
    with paddle.no_grad():
        return model(paddle.to_tensor(batch)).numpy()


def _arch_id(arch: dict) -> str:
    return f"{arch['arch']}-x{arch['scale']}"


@pytest.mark.parametrize("arch", ARCHS, ids=_arch_id)
def test_onnx_matches_paddle_with_dynamic_batch_and_size(arch, tmp_path):
    model = _model(arch)
    path = export_model(model, "onnx", tmp_path)
    assert path == tmp_path / "model.onnx"
    runner = OnnxRunner(path)
    for shape in [(1, 24, 32), (2, 36, 20)]:  # batch, height and width all differ from the probe image's
        batch = _batch(*shape)
        expected = _dygraph(model, batch)
        got = runner(batch)
        assert got.shape == expected.shape == (shape[0], 3, shape[1] * arch["scale"], shape[2] * arch["scale"])
        assert np.abs(got - expected).max() <= ONNX_TOLERANCE


@pytest.mark.parametrize("arch", ARCHS[::2], ids=_arch_id)
def test_paddle_inference_model_matches_dygraph(arch, tmp_path):
    model = _model(arch)
    path = export_model(model, "paddle", tmp_path)
    assert path == tmp_path / "model.json" and (tmp_path / "model.pdiparams").is_file()
    loaded = paddle.jit.load(str(tmp_path / "model"))
    loaded.eval()
    for shape in [(1, 16, 28), (3, 20, 12)]:
        batch = _batch(*shape)
        np.testing.assert_allclose(_dygraph(loaded, batch), _dygraph(model, batch), atol=1e-5)


def test_verification_catches_an_onnx_file_that_computes_something_else(tmp_path):
    arch = ARCHS[2]
    export_model(_model(arch, seed=0), "onnx", tmp_path)
    assert verify_onnx(reference_output(_model(arch, seed=0)), tmp_path / "model.onnx") <= ONNX_TOLERANCE
    with pytest.raises(UserError, match="differs from Paddle"):
        verify_onnx(reference_output(_model(arch, seed=1)), tmp_path / "model.onnx")


def test_cli_export_records_what_predict_needs(tmp_path, capsys):
    from sr_train.weights.load import model_state
    from sr_train.weights.srkit import save_weights

    model = _model(ARCHS[1])
    weights = tmp_path / "w.safetensors"
    save_weights(weights, model_state(model), model.arch)
    out = tmp_path / "export"
    assert main(["export", "--weights", str(weights), "--format", "paddle", "--out", str(out)]) == 0
    assert main(["export", "--weights", str(weights), "--format", "onnx", "--out", str(out)]) == 0
    assert "model.onnx" in capsys.readouterr().out
    info = read_info(out)
    assert info.formats == ("onnx", "paddle")
    assert info.scale == 2 and info.input_multiple == 2 and info.in_nc == 3
    assert info.arch == model.arch
    assert json.loads((out / "srkit.json").read_text())["weights_sha256"]
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "model.json", "model.onnx", "model.pdiparams",
                                                     "model_card.json", "srkit.json"]
    card = json.loads((out / "model_card.json").read_text())  # the card lists both exports' files
    assert [f["name"] for f in card["files"]] == ["model.onnx", "model.json", "model.pdiparams"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--format", "tflite"], "--format"),
        (["--format", "onnx", "--weights", "missing.safetensors"], "missing.safetensors"),
    ],
)
def test_cli_export_bad_input_exits_2(tmp_path, capsys, args, message):
    from sr_train.weights.load import model_state
    from sr_train.weights.srkit import save_weights

    model = _model(ARCHS[2])
    weights = tmp_path / "w.safetensors"
    save_weights(weights, model_state(model), model.arch)
    argv = ["export", "--weights", str(weights), "--out", str(tmp_path / "out"), *args]
    if "--weights" in args:
        argv = ["export", "--out", str(tmp_path / "out"), *args]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sr-train: error:") and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out" / "model.onnx").exists()


@pytest.mark.slow
def test_full_size_rrdbnet_exports_and_tiles_without_seams(tmp_path):
    """The shipped esrgan-psnr-x4 generator (23 blocks, nf 64, gc 32; ESRGAN's init): its ONNX export
    passes the 1e-4 check, and tiled at the default pad it equals the untiled result within 1/255."""
    from sr_train.models import build_model, init_weights
    from sr_train.tiling import DEFAULT_PAD, upscale

    model = build_model({"arch": "rrdbnet", "nb": 23, "nf": 64, "gc": 32, "scale": 4})
    init_weights(model, seed=0)
    model.eval()
    runner = OnnxRunner(export_model(model, "onnx", tmp_path))
    img = np.random.default_rng(0).random((56, 72, 3), dtype=np.float32)
    whole = upscale(runner, img, 4, tile=0)
    tiled = upscale(runner, img, 4, tile=24, tile_pad=DEFAULT_PAD)
    assert np.abs(tiled - whole).max() <= 1 / 255
