"""`sr-train export --format basicsr`: files that spandrel (chaiNNer's loader) and torch load and that
compute what srkit computes; the torch zip writer behind `model.pth`; the way back through `convert`."""

from __future__ import annotations

import struct
import zipfile

import numpy as np
import paddle
import pytest
import torch

from sr_train.cli import main
from sr_train.weights.load import load_model, model_state
from sr_train.weights.srkit import read_weights_file, save_weights
from sr_train.weights.torch_zip import ALIGNMENT, write_torch_zip
from helpers import basicsr_names, import_spandrel, make_model

TOLERANCE = 1e-4  # max abs difference allowed between spandrel (torch) and srkit (Paddle)
ARCHS = [
    {"arch": "rrdbnet", "in_nc": 3, "out_nc": 3, "nf": 8, "nb": 2, "gc": 32, "scale": 4},
    {"arch": "rrdbnet", "in_nc": 3, "out_nc": 3, "nf": 8, "nb": 1, "gc": 32, "scale": 2},
    {"arch": "rrdbnet", "in_nc": 3, "out_nc": 3, "nf": 8, "nb": 1, "gc": 32, "scale": 1},
    {"arch": "compact", "in_nc": 3, "out_nc": 3, "nf": 8, "nc": 3, "scale": 4, "skip": "nearest", "act": "prelu"},
    {"arch": "compact", "in_nc": 3, "out_nc": 3, "nf": 8, "nc": 2, "scale": 3, "skip": "nearest", "act": "prelu"},
]
SPANDREL_IDS = {"rrdbnet": "ESRGAN", "compact": "Compact"}


@pytest.fixture(scope="module")
def spandrel():
    return import_spandrel()


def _arch_id(arch: dict) -> str:
    return f"{arch['arch']}-x{arch['scale']}"


def _paddle(model, x: np.ndarray) -> np.ndarray:
    with paddle.no_grad():
        return model(paddle.to_tensor(x)).numpy()


def _torch(model, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def _export(tmp_path, weights, *extra) -> int:
    return main(["export", "--weights", str(weights), "--format", "basicsr", "--out", str(tmp_path / "export"),
                 *extra])


@pytest.mark.parametrize("arch", ARCHS, ids=_arch_id)
def test_spandrel_loads_both_files_and_computes_what_srkit_computes(arch, tmp_path, capsys, spandrel):
    raw, ema = make_model(arch, seed=1), make_model(arch, seed=2)
    weights = tmp_path / "run" / "best.safetensors"
    save_weights(weights, model_state(raw), arch, ema=model_state(ema))
    assert _export(tmp_path, weights) == 0, capsys.readouterr().err
    out = tmp_path / "export"
    x = np.random.default_rng(0).random((2, 3, 12, 16), dtype=np.float32)  # sides: multiples of 4 (x1 unshuffle)
    expected = _paddle(ema, x)  # the EMA is what gets exported
    for name in ("model.pth", "model.safetensors"):
        found = spandrel.ModelLoader().load_from_file(out / name)
        assert found.architecture.id == SPANDREL_IDS[arch["arch"]]
        assert (found.scale, found.input_channels, found.output_channels) == (arch["scale"], 3, 3)
        assert sum(p.numel() for p in found.model.parameters()) == sum(v.size for v in model_state(ema).values())
        got = _torch(found.model, x)
        assert got.shape == expected.shape == (2, 3, 12 * arch["scale"], 16 * arch["scale"])
        assert np.abs(got - expected).max() <= TOLERANCE, name

    # torch's own restricted unpickler reads the file; BasicSR's names, the EMA under params_ema
    tree = torch.load(out / "model.pth", weights_only=True)
    want = basicsr_names(model_state(ema)) if arch["arch"] == "rrdbnet" else model_state(ema)
    assert list(tree) == ["params_ema"] and list(tree["params_ema"]) == list(want)
    assert all(np.array_equal(tree["params_ema"][k].numpy(), v) for k, v in want.items())

    # and back: `sr-train convert` returns the exported weights bit for bit, with the same architecture
    for name in ("model.pth", "model.safetensors"):
        back = tmp_path / f"back-{name}.safetensors"
        assert main(["convert", str(out / name), str(back)]) == 0
        saved = read_weights_file(back)
        assert saved.arch == arch
        assert saved.state.keys() == model_state(ema).keys()
        assert all(np.array_equal(saved.state[k], v) for k, v in model_state(ema).items())
    # srkit reads the BasicSR-named .safetensors directly too (predict, eval, init_from)
    np.testing.assert_array_equal(_paddle(load_model(out / "model.safetensors"), x), expected)


def test_weights_without_ema_go_under_params(tmp_path, capsys, spandrel):
    arch = ARCHS[3]
    model = make_model(arch, seed=3)
    weights = tmp_path / "w.safetensors"
    save_weights(weights, model_state(model), arch)
    assert _export(tmp_path, weights) == 0
    assert list(torch.load(tmp_path / "export" / "model.pth", weights_only=True)) == ["params"]
    found = spandrel.ModelLoader().load_from_file(tmp_path / "export" / "model.pth")
    x = np.random.default_rng(1).random((1, 3, 8, 8), dtype=np.float32)
    assert np.abs(_torch(found.model, x) - _paddle(model, x)).max() <= TOLERANCE


@pytest.mark.parametrize("arch, message", [
    ({"arch": "compact", "nf": 8, "nc": 1, "scale": 4, "skip": "bicubic"}, "model.skip=nearest"),
    ({"arch": "compact", "nf": 8, "nc": 1, "scale": 4, "skip": "nearest", "act": "relu"}, "model.act=prelu"),
    ({"arch": "rrdbnet", "nf": 8, "nb": 1, "gc": 4, "scale": 4}, "model.gc=32"),
], ids=["bicubic-skip", "relu", "gc4"])
def test_networks_the_other_projects_would_build_differently_are_refused(arch, message, tmp_path, capsys):
    model = make_model(arch)
    weights = tmp_path / "w.safetensors"
    save_weights(weights, model_state(model), dict(model.arch))
    assert _export(tmp_path, weights) == 2
    err = capsys.readouterr().err
    assert err.startswith("sr-train: error: ") and err.count("\n") == 1 and message in err
    assert not (tmp_path / "export").exists()  # refused before anything is written


def test_export_folder_without_a_paddle_or_onnx_model_says_to_pass_a_file(tmp_path, capsys):
    arch = ARCHS[3]
    weights = tmp_path / "w.safetensors"
    save_weights(weights, model_state(make_model(arch)), arch)
    assert _export(tmp_path, weights) == 0
    assert main(["predict", "--weights", str(tmp_path / "export"), str(weights), "--out", str(tmp_path / "o")]) == 2
    assert "pass one of its weights files" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# The torch zip writer


def _tree() -> dict:
    rng = np.random.default_rng(0)
    return {"params_ema": {"conv.weight": rng.random((4, 3, 3, 3), dtype=np.float32),
                           "conv.bias": rng.random(4, dtype=np.float32),
                           "scalar": np.array(2.5, np.float32), "empty": np.zeros((0, 3), np.float32),
                           "half": rng.random(5).astype(np.float16), "double": rng.random((2, 2)),
                           "long": np.arange(70_000, dtype=np.int64)},
            "note": "written by srkit", "count": 3}


@pytest.mark.parametrize("mmap", [False, True])
def test_torch_reads_the_written_zip_with_weights_only(tmp_path, mmap):
    tree = _tree()
    write_torch_zip(tmp_path / "w.pth", tree)
    loaded = torch.load(tmp_path / "w.pth", weights_only=True, mmap=mmap)
    assert loaded["note"] == tree["note"] and loaded["count"] == 3
    for name, value in tree["params_ema"].items():
        tensor = loaded["params_ema"][name]
        assert tuple(tensor.shape) == value.shape and tensor.numpy().dtype == value.dtype, name
        np.testing.assert_array_equal(tensor.numpy(), value)


def test_spandrels_restricted_unpickler_reads_it(tmp_path, spandrel):
    from spandrel.__helpers.unpickler import RestrictedUnpickle

    tree = {"params": _tree()["params_ema"]}
    write_torch_zip(tmp_path / "w.pth", tree)
    loaded = torch.load(tmp_path / "w.pth", pickle_module=RestrictedUnpickle)
    assert all(np.array_equal(loaded["params"][k].numpy(), v) for k, v in tree["params"].items())


def test_same_tree_same_bytes_and_storages_are_64_byte_aligned(tmp_path):
    write_torch_zip(tmp_path / "a.pth", _tree())
    write_torch_zip(tmp_path / "b.pth", _tree())
    data = (tmp_path / "a.pth").read_bytes()
    assert data == (tmp_path / "b.pth").read_bytes()
    with zipfile.ZipFile(tmp_path / "a.pth") as archive:
        records = archive.infolist()
        assert {r.filename.split("/")[0] for r in records} == {"archive"}
        storages = [r for r in records if r.filename.startswith("archive/data/")]
        assert len(storages) == 7
        for record in storages:
            name_len, extra_len = struct.unpack("<HH", data[record.header_offset + 26:record.header_offset + 30])
            assert (record.header_offset + 30 + name_len + extra_len) % ALIGNMENT == 0, record.filename


def test_unsupported_values_are_refused():
    with pytest.raises(TypeError, match="bool"):
        write_torch_zip("/nonexistent/never-written.pth", {"flag": np.ones(2, bool)})
