"""`sr-train convert` reads the ESRGAN and Real-ESRGAN Compact files spandrel (chaiNNer) reads: every
key layout and wrapper, written here by torch.save itself, and checked to be a layout spandrel
detects before srkit is asked to convert it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sr_train.cli import main
from sr_train.weights.load import load_model, model_state
from sr_train.weights.srkit import read_weights_file
from helpers import COMPACT_ARCH, basicsr_names, import_spandrel, make_model, old_esrgan_names, predict

RRDB = {"arch": "rrdbnet", "in_nc": 3, "out_nc": 3, "nf": 8, "nb": 2, "gc": 32, "scale": 4}  # spandrel: gc 32


@pytest.fixture(scope="module")
def spandrel():
    return import_spandrel()


@pytest.fixture(scope="module")
def rrdb():
    return make_model(RRDB, seed=5)


@pytest.fixture(scope="module")
def compact():
    return make_model(COMPACT_ARCH, seed=6)


def _tensors(tree):
    if isinstance(tree, dict):
        return {k: _tensors(v) for k, v in tree.items()}
    return torch.from_numpy(np.array(tree)) if isinstance(tree, np.ndarray) else tree


def _save(path, tree, legacy: bool = False):
    torch.save(_tensors(tree), path, _use_new_zipfile_serialization=not legacy)
    return path


def _prefixed(prefix: str, state: dict) -> dict:
    return {prefix + k: v for k, v in state.items()}


RRDB_LAYOUTS = {
    # name: (file name, tree from the srkit state)
    "esrgan-old-arch": ("4x_old.pth", old_esrgan_names),
    "basicsr-params_ema": ("RealESRGAN_x4plus_like.pth", lambda s: {"params_ema": basicsr_names(s)}),
    "basicsr-params-ema": ("x4.pth", lambda s: {"params-ema": basicsr_names(s)}),
    "realsr-bsrgan": ("BSRGAN_like.pth", lambda s: dict(s)),  # RRDB_trunk / trunk_conv / upconv / HRconv
    "lightning-ckpt": ("last.ckpt", lambda s: {"state_dict": basicsr_names(s), "epoch": 3, "global_step": 1200}),
    "model-wrapper-module-prefix": ("net.pt", lambda s: {"model": _prefixed("module.", basicsr_names(s))}),
    "state_dict-netG-prefix": ("netG.pth", lambda s: {"state_dict": _prefixed("netG.", old_esrgan_names(s))}),
    "one-key-wrapper": ("wrapped.pth", lambda s: {"generator_ema_weights": basicsr_names(s)}),
    "legacy-torch-format": ("legacy.pth", lambda s: {"params": basicsr_names(s)}),
}


@pytest.mark.parametrize("layout", list(RRDB_LAYOUTS))
def test_every_esrgan_layout_spandrel_reads_converts_exactly(layout, tmp_path, capsys, rrdb, spandrel):
    name, make_tree = RRDB_LAYOUTS[layout]
    src = _save(tmp_path / name, make_tree(model_state(rrdb)), legacy=layout.startswith("legacy"))
    found = spandrel.ModelLoader().load_from_file(src)  # the fixture is a layout spandrel detects
    assert found.architecture.id == "ESRGAN" and found.scale == 4
    dst = tmp_path / "converted.safetensors"
    assert main(["convert", str(src), str(dst)]) == 0, capsys.readouterr().err
    saved = read_weights_file(dst)
    assert saved.arch == RRDB
    assert saved.state.keys() == model_state(rrdb).keys()
    assert all(np.array_equal(saved.state[k], v) for k, v in model_state(rrdb).items())
    np.testing.assert_array_equal(predict(load_model(dst)), predict(rrdb))


@pytest.mark.parametrize("layout", ["bare", "params", "module-prefix"])
def test_real_esrgan_compact_layouts_convert_exactly(layout, tmp_path, capsys, compact, spandrel):
    state = model_state(compact)
    tree = {"bare": state, "params": {"params": state}, "module-prefix": _prefixed("module.", state)}[layout]
    src = _save(tmp_path / "realesr-general-x4v3_like.pth", tree)
    assert spandrel.ModelLoader().load_from_file(src).architecture.id == "Compact"
    dst = tmp_path / "c.safetensors"
    assert main(["convert", str(src), str(dst)]) == 0, capsys.readouterr().err
    assert read_weights_file(dst).arch == COMPACT_ARCH
    np.testing.assert_array_equal(predict(load_model(dst)), predict(compact))


def _refused(tmp_path, capsys, src) -> str:
    dst = tmp_path / "out.safetensors"
    assert main(["convert", str(src), str(dst)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sr-train: error: ") and err.count("\n") == 1 and not dst.exists()
    return err


def test_old_arch_x2_is_refused_though_spandrel_reads_it(tmp_path, capsys, rrdb, spandrel):
    """The original ESRGAN's x2 layout has one upsampling stage (model.3, then HRconv model.5 and the
    last conv model.7); srkit's RRDBNet always has two."""
    old = old_esrgan_names(model_state(rrdb))
    renumber = {"model.6": None, "model.8": "model.5", "model.10": "model.7"}
    x2 = {}
    for name, value in old.items():
        layer, _, param = name.rpartition(".")
        if layer in renumber:
            if renumber[layer] is not None:
                x2[f"{renumber[layer]}.{param}"] = value
        else:
            x2[name] = value
    src = _save(tmp_path / "2x_old.pth", x2)
    assert spandrel.ModelLoader().load_from_file(src).scale == 2
    assert "1 upsampling stage(s) (x2)" in _refused(tmp_path, capsys, src)


def test_esrgan_plus_is_refused(tmp_path, capsys, rrdb):
    state = old_esrgan_names(model_state(rrdb))
    state["model.1.sub.0.RDB1.conv1x1.weight"] = np.zeros((32, 8, 1, 1), np.float32)
    assert "ESRGAN+" in _refused(tmp_path, capsys, _save(tmp_path / "plus.pth", state))


def test_other_architectures_are_refused_naming_the_keys_found(tmp_path, capsys):
    swinir_like = {"conv_first.weight": np.zeros((8, 3, 3, 3), np.float32),
                   "layers.0.residual_group.blocks.0.attn.qkv.weight": np.zeros((24, 8), np.float32),
                   "upsample.0.weight": np.zeros((32, 8, 3, 3), np.float32)}
    err = _refused(tmp_path, capsys, _save(tmp_path / "swinir.pth", {"params": swinir_like}))
    assert "cannot tell the architecture" in err and "layers.0.residual_group.blocks.0.attn.qkv.weight" in err


def test_torchscript_is_refused_as_such(tmp_path, capsys):
    scripted = torch.jit.script(torch.nn.Conv2d(3, 3, 3))
    src = tmp_path / "model.pt"
    torch.jit.save(scripted, str(src))
    assert "TorchScript" in _refused(tmp_path, capsys, src)
