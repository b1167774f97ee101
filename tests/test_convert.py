"""`sr-train convert`: foreign weights become srkit .safetensors that predict exactly the same."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from sr_train.checkpoint import latest_good_state, read_state
from sr_train.cli import main
from sr_train.weights.load import load_model, model_state
from sr_train.weights.srkit import read_weights_file
from srdata.errors import UserError
from helpers import COMPACT_ARCH, RRDB_ARCH, basicsr_names, make_model, payloads, predict, run, tiny_recipe, weights_with, write_torch_zip


@pytest.fixture(scope="module")
def rrdb():
    return make_model(RRDB_ARCH, seed=3)


@pytest.fixture(scope="module")
def compact():
    return make_model(COMPACT_ARCH, seed=4)


def _convert_ok(capsys, src, dst) -> str:
    code = main(["convert", str(src), str(dst)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def test_pth_converted_predicts_like_the_pth_and_the_original(tmp_path, capsys, rrdb):
    src = write_torch_zip(tmp_path / "RealESRGAN_x4plus_anime_6B.pth",
                          {"params_ema": basicsr_names(model_state(rrdb))})
    dst = tmp_path / "anime.safetensors"
    out = _convert_ok(capsys, src, dst)
    assert f"wrote {dst}" in out and "params_ema" in out and '"nb": 2' in out
    direct, converted = predict(load_model(src)), predict(load_model(dst))
    np.testing.assert_array_equal(converted, direct)
    np.testing.assert_array_equal(converted, predict(rrdb))
    saved = read_weights_file(dst)
    assert saved.arch == RRDB_ARCH
    assert saved.meta["converted_from"] == src.name and saved.meta["source_container"] == "params_ema"
    assert all(np.array_equal(saved.state[k], v) for k, v in model_state(rrdb).items())


def test_pdparams_converted_predicts_like_the_pdparams(tmp_path, capsys, compact):
    src = tmp_path / "iter_5000_weight.pdparams"
    src.write_bytes(pickle.dumps({"generator": model_state(compact), "discriminator": {}}, protocol=2))
    dst = tmp_path / "compact.safetensors"
    _convert_ok(capsys, src, dst)
    np.testing.assert_array_equal(predict(load_model(dst)), predict(load_model(src)))
    np.testing.assert_array_equal(predict(load_model(dst)), predict(compact))
    # a srkit file converts to itself (e.g. to refresh an old one)
    again = tmp_path / "again.safetensors"
    _convert_ok(capsys, dst, again)
    np.testing.assert_array_equal(predict(load_model(again)), predict(compact))


@pytest.mark.parametrize("name", ["os.system", "builtins.eval", "subprocess.Popen"])
def test_malicious_input_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, name):
    marker = tmp_path / "pwned"
    src = tmp_path / "evil.pdparams"
    src.write_bytes(pickle.dumps(weights_with(payloads(marker)[name]), protocol=4))
    dst = tmp_path / "out.safetensors"
    assert main(["convert", str(src), str(dst)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sr-train: error: ") and err.count("\n") == 1 and "refused to load" in err
    assert not marker.exists() and not dst.exists()
    assert list(tmp_path.iterdir()) == [src]


def test_output_must_be_safetensors(tmp_path, capsys, compact):
    src = write_torch_zip(tmp_path / "w.pth", {"params": model_state(compact)})
    assert main(["convert", str(src), str(tmp_path / "out.pth")]) == 2
    assert "ending in .safetensors" in capsys.readouterr().err


def test_weights_that_do_not_fit_are_refused_before_writing(tmp_path, capsys, rrdb):
    state = basicsr_names(model_state(rrdb))
    state["body.0.rdb1.conv1.weight"] = state["body.0.rdb1.conv1.weight"][:, :4]  # wrong shape
    src = write_torch_zip(tmp_path / "bad.pth", {"params": state})
    dst = tmp_path / "out.safetensors"
    assert main(["convert", str(src), str(dst)]) == 2
    err = capsys.readouterr().err
    assert "RRDB_trunk.0.RDB1.conv1.weight" in err and not dst.exists()


def test_missing_input_exits_2(tmp_path, capsys):
    assert main(["convert", str(tmp_path / "nope.pth"), str(tmp_path / "o.safetensors")]) == 2
    assert "no such weights file" in capsys.readouterr().err


def test_fit_init_from_pth_equals_init_from_its_conversion(tmp_path, capsys, pairs_dir):
    """`model.init_from` takes the foreign file itself: training from it or from its conversion
    gives the same weights, bit for bit."""
    arch = {"arch": "compact", "in_nc": 3, "out_nc": 3, "nf": 8, "nc": 1, "scale": 2, "skip": "nearest",
            "act": "prelu"}
    pretrained = make_model(arch, seed=11)
    pth = write_torch_zip(tmp_path / "realesr-like.pth", {"params": model_state(pretrained)})
    converted = tmp_path / "realesr-like.safetensors"
    _convert_ok(capsys, pth, converted)
    results = []
    for name, init in (("from_pth", pth), ("from_safetensors", converted)):
        raw = tiny_recipe(pairs_dir, tmp_path / name, model__init_from=str(init), model__skip="nearest",
                          train__iters=2, val__interval=2, checkpoint__interval=2)
        run(raw)
        results.append(read_weights_file(tmp_path / name / "last.safetensors").state)
    assert results[0].keys() == results[1].keys() == model_state(pretrained).keys()
    assert all(np.array_equal(results[0][k], results[1][k]) for k in results[0])
    # and training really started from the pretrained weights (2 small steps stay close to them)
    first = model_state(pretrained)["body.0.weight"]
    assert np.abs(results[0]["body.0.weight"] - first).max() < 0.05


@pytest.mark.parametrize("name", ["os.system", "builtins.eval", "subprocess.Popen"])
def test_resume_state_holding_a_pickle_is_refused_unrun(tmp_path, name):
    """srkit's resume states are safetensors + JSON; a pickle dressed up as one is never unpickled."""
    marker = tmp_path / "pwned"
    state = tmp_path / "run" / "ckpt" / "iter_10.state"
    state.parent.mkdir(parents=True)
    state.write_bytes(pickle.dumps(weights_with(payloads(marker)[name]), protocol=4))
    with pytest.raises(UserError, match="iter_10.state"):
        read_state(state)
    found, skipped = latest_good_state(tmp_path / "run")
    assert found is None and len(skipped) == 1
    assert not marker.exists()
