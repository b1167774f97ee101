"""Foreign weights (PaddleGAN .pdparams, BasicSR/Real-ESRGAN .pth) run exactly like the originals.

Each test builds a tiny srkit network, writes its weights the way the other project would (its
names, its containers, its file format), reads them back through `read_foreign`/`load_model`, and
compares predictions with the original network.
"""

from __future__ import annotations

import collections
import pickle
import re
from pathlib import Path

import numpy as np
import paddle
import pytest

from sr_train.models import infer_arch, to_srkit_names
from sr_train.weights.foreign import read_foreign, read_foreign_detailed
from sr_train.models import build_model
from sr_train.weights.load import load_model, model_state, read_weights
from srdata.errors import UserError
from helpers import COMPACT_ARCH, RRDB_ARCH, basicsr_names, make_model, payloads, predict, weights_with, write_torch_legacy, write_torch_zip

@pytest.fixture(scope="module")
def rrdb():
    return make_model(RRDB_ARCH)


@pytest.fixture(scope="module")
def compact():
    return make_model(COMPACT_ARCH)


def _assert_same_predictions(path: Path, reference: paddle.nn.Layer, arch: dict) -> None:
    loaded_arch, _ = read_weights(path)
    assert loaded_arch == arch
    np.testing.assert_array_equal(predict(load_model(path)), predict(reference))


# ---------------------------------------------------------------------------------------------
# BasicSR / Real-ESRGAN .pth


@pytest.mark.parametrize("container", ["params_ema", "params", None])
@pytest.mark.parametrize("legacy", [False, True])
def test_basicsr_rrdbnet_pth_predicts_like_the_original(tmp_path, rrdb, container, legacy):
    state = basicsr_names(model_state(rrdb))
    if container is None:
        tree = state
    else:
        tree = {container: state}
        if container == "params_ema":  # EMA preferred over raw weights when both are present
            tree["params"] = basicsr_names(model_state(make_model(RRDB_ARCH, seed=9)))
    writer = write_torch_legacy if legacy else write_torch_zip
    path = writer(tmp_path / "RealESRGAN_like.pth", tree)
    _assert_same_predictions(path, rrdb, RRDB_ARCH)
    assert read_foreign_detailed(path).container == container


def test_real_esrgan_compact_pth_predicts_like_the_original(tmp_path, compact):
    state = collections.OrderedDict(model_state(compact))
    assert "body.1.weight" in state and state["body.1.weight"].ndim == 1  # Real-ESRGAN's PReLU name
    path = write_torch_zip(tmp_path / "realesr-animevideov3.pth", {"params": state})
    _assert_same_predictions(path, compact, COMPACT_ARCH)


def test_dataparallel_module_prefix_is_removed(tmp_path, compact):
    state = {f"module.{k}": v for k, v in model_state(compact).items()}
    path = write_torch_zip(tmp_path / "dp.pth", {"params": state})
    _assert_same_predictions(path, compact, COMPACT_ARCH)


def test_half_precision_pth_is_widened_to_float32(tmp_path, compact):
    state = {k: v.astype(np.float16) for k, v in model_state(compact).items()}
    path = write_torch_zip(tmp_path / "half.pth", {"params_ema": state})
    _, loaded = read_foreign(path)
    assert all(v.dtype == np.float32 for v in loaded.values())
    assert all(np.array_equal(loaded[k], v.astype(np.float32)) for k, v in state.items())


# ---------------------------------------------------------------------------------------------
# PaddleGAN .pdparams


@pytest.mark.parametrize("protocol", [2, 4])
def test_pdparams_flat_with_paddle_name_table(tmp_path, rrdb, protocol):
    state = model_state(rrdb)
    tree = dict(state, **{"StructuredToParameterName@@": {k: f"conv2d_{i}.w_0" for i, k in enumerate(state)}})
    path = tmp_path / "esrgan_psnr_x4.pdparams"
    path.write_bytes(pickle.dumps(tree, protocol=protocol))
    _assert_same_predictions(path, rrdb, RRDB_ARCH)


@pytest.mark.parametrize("tensor_as_tuple", [False, True])
def test_pdparams_nested_generator_discriminator(tmp_path, rrdb, tensor_as_tuple):
    """PaddleGAN's iter_N_weight.pdparams; newer Paddle pickles each tensor as (name, array)."""
    state = model_state(rrdb)
    if tensor_as_tuple:
        state = {k: (f"param_{i}", v) for i, (k, v) in enumerate(state.items())}
    tree = {"generator": state, "discriminator": {"conv0_0.weight": np.ones((4, 3, 3, 3), np.float32)}}
    path = tmp_path / "iter_100_weight.pdparams"
    path.write_bytes(pickle.dumps(tree, protocol=2))
    _assert_same_predictions(path, rrdb, RRDB_ARCH)
    assert read_foreign_detailed(path).container == "generator"


def test_pdparams_written_by_paddle_save_itself(tmp_path, rrdb, compact):
    """The real thing: paddle.save of a state dict (flat) and of PaddleGAN's nested dict."""
    flat = tmp_path / "flat.pdparams"
    paddle.save(rrdb.state_dict(), str(flat))
    _assert_same_predictions(flat, rrdb, RRDB_ARCH)
    nested = tmp_path / "nested.pdparams"
    paddle.save({"generator": compact.state_dict(), "discriminator": rrdb.state_dict()}, str(nested))
    _assert_same_predictions(nested, compact, COMPACT_ARCH)


def test_paddle_split_big_arrays_are_joined(tmp_path, compact):
    """paddle.save with protocol 2/3 splits >1 GiB arrays into NAME@@.i slices plus a table."""
    state = model_state(compact)
    name = "body.2.weight"
    whole = state.pop(name)
    halves = np.array_split(whole.ravel(), 2)
    state.update({f"{name}@@.0": halves[0], f"{name}@@.1": halves[1]})
    state["UnpackBigParamInfor@@"] = {name: {"OriginShape": whole.shape, "slices": [f"{name}@@.0", f"{name}@@.1"]}}
    path = tmp_path / "split.pdparams"
    path.write_bytes(pickle.dumps(state, protocol=2))
    _assert_same_predictions(path, compact, COMPACT_ARCH)


def test_safetensors_content_under_pdparams_name(tmp_path, compact):
    """paddle.save(..., safetensors=True) writes safetensors whatever the extension."""
    from safetensors.numpy import save_file

    path = tmp_path / "model.pdparams"
    save_file(model_state(compact), str(path))
    _assert_same_predictions(path, compact, COMPACT_ARCH)


# ---------------------------------------------------------------------------------------------
# Architecture inference


@pytest.mark.parametrize("arch", [
    dict(RRDB_ARCH, scale=2), dict(RRDB_ARCH, scale=1), dict(RRDB_ARCH, nb=3, nf=6, gc=2),
    dict(COMPACT_ARCH, scale=2), dict(COMPACT_ARCH, scale=3, nc=1, nf=4), dict(COMPACT_ARCH, act="relu"),
    dict(COMPACT_ARCH, in_nc=1, out_nc=1),
])
def test_infer_arch_recovers_every_setting(arch):
    assert infer_arch(model_state(build_model(arch))) == arch


def test_rrdbnet_x2_from_basicsr_predicts_like_the_original(tmp_path):
    """Real-ESRGAN's x2 model pixel-unshuffles its input: conv_first takes 12 channels."""
    arch = dict(RRDB_ARCH, scale=2)
    model = make_model(arch)
    path = write_torch_zip(tmp_path / "RealESRGAN_x2plus.pth", {"params_ema": basicsr_names(model_state(model))})
    _assert_same_predictions(path, model, arch)


def test_to_srkit_names_maps_every_basicsr_rrdb_key(rrdb):
    state = model_state(rrdb)
    assert to_srkit_names(basicsr_names(state)).keys() == state.keys()
    assert to_srkit_names(state).keys() == state.keys()  # PaddleGAN names pass through


def test_unknown_parameter_names_are_a_user_error(tmp_path):
    path = tmp_path / "other.pdparams"
    path.write_bytes(pickle.dumps({"encoder.layer1.weight": np.ones((2, 2), np.float32)}))
    with pytest.raises(UserError, match="cannot tell the architecture.*encoder.layer1.weight"):
        read_foreign(path)


def test_arch_mismatch_with_the_recipe_lists_the_differing_keys(tmp_path, rrdb):
    path = write_torch_zip(tmp_path / "w.pth", {"params_ema": basicsr_names(model_state(rrdb))})
    with pytest.raises(UserError) as info:
        load_model(path, arch_override={"arch": "rrdbnet", "nb": 23, "nf": 8})
    message = str(info.value)
    assert re.search(r"\bnb\b.*\b23\b", message) and not re.search(r"\bnf\b", message)  # only what differs


def test_incomplete_state_fails_naming_the_missing_key(tmp_path, rrdb):
    state = basicsr_names(model_state(rrdb))
    del state["body.1.rdb2.conv3.bias"]
    path = write_torch_zip(tmp_path / "w.pth", {"params_ema": state})
    with pytest.raises(UserError, match=r"RRDB_trunk\.1\.RDB2\.conv3\.bias"):
        load_model(path)


def test_no_generator_inside_is_a_user_error(tmp_path):
    path = tmp_path / "optimizer.pdparams"
    path.write_bytes(pickle.dumps({"optimizer": {"lr": 0.1}, "epoch": 3}))
    with pytest.raises(UserError, match="no generator weights found.*'optimizer'"):
        read_foreign(path)


def test_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no such weights file"):
        read_foreign(tmp_path / "nope.pth")


# ---------------------------------------------------------------------------------------------
# Safety through the public entry points


@pytest.mark.parametrize("name", ["os.system", "builtins.eval", "subprocess.Popen"])
@pytest.mark.parametrize("fmt", ["pdparams", "pth"])
def test_load_model_refuses_malicious_files(tmp_path, name, fmt):
    marker = tmp_path / "pwned"
    evil = pickle.dumps(weights_with(payloads(marker)[name]), protocol=2)
    if fmt == "pdparams":
        path = tmp_path / "evil.pdparams"
        path.write_bytes(evil)
    else:
        path = write_torch_zip(tmp_path / "evil.pth", {"w": np.ones(1, np.float32)}, data_pkl=evil)
    with pytest.raises(UserError, match="refused to load"):
        load_model(path)
    assert not marker.exists()
