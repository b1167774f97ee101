"""The generators: PaddleGAN's parameter names/shapes, output sizes, the compact skip, weights files."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import paddle
import pytest

from sr_train.models import Compact, RRDBNet, build_model, init_weights
from sr_train.models.ops import bicubic_upsample, cubic_kernel, nearest_upsample, pixel_unshuffle, unshuffle_kernel
from sr_train.weights.load import load_model, read_weights, model_state
from sr_train.weights.srkit import read_weights_file, save_weights
from helpers import run_python
from srdata.errors import UserError


def paddlegan_rrdbnet_shapes(in_nc: int, nf: int, nb: int, gc: int) -> dict[str, tuple]:
    """The state dict PaddleGAN's RRDBNet(in_nc, 3, nf, nb, gc) has, written out from its source."""
    shapes = {"conv_first.weight": (nf, in_nc, 3, 3), "conv_first.bias": (nf,)}
    for i in range(nb):
        for r in (1, 2, 3):
            for c, (cin, cout) in enumerate([(nf, gc), (nf + gc, gc), (nf + 2 * gc, gc), (nf + 3 * gc, gc),
                                             (nf + 4 * gc, nf)], start=1):
                shapes[f"RRDB_trunk.{i}.RDB{r}.conv{c}.weight"] = (cout, cin, 3, 3)
                shapes[f"RRDB_trunk.{i}.RDB{r}.conv{c}.bias"] = (cout,)
    for name in ("trunk_conv", "upconv1", "upconv2", "HRconv"):
        shapes[f"{name}.weight"] = (nf, nf, 3, 3)
        shapes[f"{name}.bias"] = (nf,)
    shapes["conv_last.weight"] = (3, nf, 3, 3)
    shapes["conv_last.bias"] = (3,)
    return shapes


def shapes_of(model) -> dict[str, tuple]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.parametrize("scale,in_nc", [(4, 3), (2, 12), (1, 48)])
def test_rrdbnet_has_paddlegan_names_and_shapes(scale, in_nc):
    model = RRDBNet(nf=8, nb=2, gc=4, scale=scale)
    assert shapes_of(model) == paddlegan_rrdbnet_shapes(in_nc, 8, 2, 4)
    assert list(model.state_dict()) == list(paddlegan_rrdbnet_shapes(in_nc, 8, 2, 4))


@pytest.mark.parametrize("scale", [4, 2, 1])
def test_rrdbnet_output_shape(scale):
    model = RRDBNet(nf=8, nb=1, gc=4, scale=scale)
    out = model(paddle.rand([2, 3, 8, 12]))
    assert out.shape == [2, 3, 8 * scale, 12 * scale]


def test_rrdbnet_x2_unshuffles_like_paddlegan():
    """PaddleGAN's ×2 reshapes (b, c, h/2, 2, w/2, 2) and moves the two 2s next to c."""
    x = np.random.default_rng(0).random((1, 3, 6, 8)).astype(np.float32)
    expected = x.reshape(1, 3, 3, 2, 4, 2).transpose(0, 1, 3, 5, 2, 4).reshape(1, 12, 3, 4)
    got = pixel_unshuffle(paddle.to_tensor(x), paddle.to_tensor(unshuffle_kernel(3, 2)), 2).numpy()
    np.testing.assert_array_equal(got, expected)


def test_compact_parameters_and_shapes():
    model = Compact(nf=32, nc=8, scale=4)
    assert sum(int(np.prod(p.shape)) for p in model.parameters()) == 89040  # the issue's ~89k
    names = list(model.state_dict())
    assert names[:5] == ["body.0.weight", "body.0.bias", "body.1.weight", "body.2.weight", "body.2.bias"]
    assert names[-2:] == ["body.18.weight", "body.18.bias"]
    assert tuple(model.state_dict()["body.18.weight"].shape) == (48, 32, 3, 3)
    assert "cubic_kernel" not in names  # fixed buffer, not a weight


@pytest.mark.parametrize("scale", [1, 2, 3, 4])
def test_compact_output_shape(scale):
    assert Compact(nf=8, nc=1, scale=scale)(paddle.rand([1, 3, 7, 5])).shape == [1, 3, 7 * scale, 5 * scale]


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_upsample_equals_opencv(scale):
    img = np.random.default_rng(scale).random((11, 14, 3)).astype(np.float32)
    ref = cv2.resize(img, (14 * scale, 11 * scale), interpolation=cv2.INTER_CUBIC)
    x = paddle.to_tensor(img.transpose(2, 0, 1)[None])
    out = bicubic_upsample(x, paddle.to_tensor(cubic_kernel(3, scale)), scale).numpy()[0].transpose(1, 2, 0)
    np.testing.assert_allclose(out, ref, atol=2e-6)


def test_nearest_upsample_equals_opencv():
    img = np.random.default_rng(1).random((5, 7, 3)).astype(np.float32)
    out = nearest_upsample(paddle.to_tensor(img.transpose(2, 0, 1)[None]), 3).numpy()[0].transpose(1, 2, 0)
    np.testing.assert_array_equal(out, cv2.resize(img, (21, 15), interpolation=cv2.INTER_NEAREST))


@pytest.mark.parametrize("skip,interp", [("bicubic", cv2.INTER_CUBIC), ("nearest", cv2.INTER_NEAREST)])
def test_compact_starts_exactly_at_upsampled_input(skip, interp):
    model = Compact(nf=8, nc=2, scale=4, skip=skip)
    init_weights(model, 3)
    img = np.random.default_rng(2).random((9, 10, 3)).astype(np.float32)
    out = model(paddle.to_tensor(img.transpose(2, 0, 1)[None])).numpy()[0].transpose(1, 2, 0)
    np.testing.assert_allclose(out, cv2.resize(img, (40, 36), interpolation=interp), atol=2e-6)


def test_init_weights_is_deterministic_and_seeded():
    a, b, c = (RRDBNet(nf=8, nb=1, gc=4) for _ in range(3))
    init_weights(a, 5), init_weights(b, 5), init_weights(c, 6)
    sa, sb, sc = model_state(a), model_state(b), model_state(c)
    assert all(np.array_equal(sa[k], sb[k]) for k in sa)
    assert not np.array_equal(sa["conv_first.weight"], sc["conv_first.weight"])


def test_build_model_and_arch_round_trip():
    model = build_model({"arch": "compact", "nf": 8, "nc": 2, "scale": 2})
    arch = dict(model.arch)
    assert arch == {"arch": "compact", "in_nc": 3, "out_nc": 3, "nf": 8, "nc": 2, "scale": 2, "skip": "bicubic",
                    "act": "prelu"}
    assert json.loads(json.dumps(arch)) == arch
    assert build_model(dict(RRDBNet(nf=8, nb=1, gc=4).arch)).arch["nb"] == 1


@pytest.mark.parametrize("arch,word", [({"arch": "srcnn"}, "srcnn"), ({"arch": "compact", "blocks": 3}, "blocks"),
                                       ({"arch": "compact", "skip": "lanczos"}, "skip")])
def test_build_model_rejects_bad_arch(arch, word):
    with pytest.raises(UserError, match=word):
        build_model(arch)


def test_save_load_round_trip_prefers_ema(tmp_path):
    model = Compact(nf=8, nc=1, scale=2)
    init_weights(model, 0)
    state = model_state(model)
    ema = {k: v + 1.0 for k, v in state.items()}
    path = tmp_path / "w.safetensors"
    save_weights(path, state, dict(model.arch), meta={"iter": 7}, ema=ema)
    file = read_weights_file(path)
    assert file.arch == dict(model.arch) and file.meta == {"iter": 7}
    assert all(np.array_equal(file.state[k], state[k]) for k in state)
    arch, preferred = read_weights(path)
    assert all(np.array_equal(preferred[k], ema[k]) for k in state)
    save_weights(path, state, dict(model.arch))
    loaded = load_model(path)
    x = paddle.rand([1, 3, 6, 6])
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())
    assert not loaded.training
    assert not [name for name in path.parent.iterdir() if name.name.startswith(".")]  # no temp files left


def test_load_model_reports_arch_and_state_mismatches(tmp_path):
    model = RRDBNet(nf=8, nb=1, gc=4)
    path = tmp_path / "r.safetensors"
    save_weights(path, model_state(model), dict(model.arch))
    with pytest.raises(UserError, match=r"nb: file 1, wanted 2"):
        load_model(path, arch_override={"arch": "rrdbnet", "nb": 2})
    state = model_state(model)
    del state["HRconv.bias"]
    save_weights(path, state, dict(model.arch))
    with pytest.raises(UserError, match="missing HRconv.bias"):
        load_model(path)


def test_truncated_weights_file_is_a_user_error(tmp_path):
    model = Compact(nf=8, nc=1)
    path = tmp_path / "t.safetensors"
    save_weights(path, model_state(model), dict(model.arch))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(UserError, match="t.safetensors"):
        read_weights(path)


@pytest.mark.parametrize("damage", ["header_only", "garbage", "empty", "bad_arch_json"])
def test_damaged_weights_file_is_a_one_line_user_error(tmp_path, damage):
    from safetensors.numpy import save

    model = Compact(nf=8, nc=1)
    path = tmp_path / "d.safetensors"
    save_weights(path, model_state(model), dict(model.arch), meta={"iteration": 5})
    data = path.read_bytes()
    path.write_bytes({"header_only": data[:len(data) - 4], "garbage": b"\x80\x04junk" * 50, "empty": b"",
                      "bad_arch_json": save({"w": np.zeros(2, np.float32)}, metadata={"arch": "{not json"})}[damage])
    with pytest.raises(UserError, match="d.safetensors") as caught:
        read_weights(path)
    assert "\n" not in str(caught.value)


def test_weights_metadata_and_ema_round_trip(tmp_path):
    from sr_train.weights.srkit import read_safetensors

    model = Compact(nf=8, nc=1)
    state = model_state(model)
    ema = {k: v + 1 for k, v in state.items()}
    save_weights(tmp_path / "w.safetensors", state, dict(model.arch), meta={"iteration": 5}, ema=ema)
    tensors, metadata = read_safetensors(tmp_path / "w.safetensors")
    assert metadata["format"] == "srkit" and set(tensors) == set(state) | {"ema." + k for k in ema}
    weights = read_weights_file(tmp_path / "w.safetensors")
    assert weights.arch == dict(model.arch) and weights.meta == {"iteration": 5}
    for k in state:
        np.testing.assert_array_equal(weights.state[k], state[k])
        np.testing.assert_array_equal(weights.preferred()[k], ema[k])


@pytest.mark.parametrize("arch", [{"arch": "rrdbnet", "nf": 8, "nb": 1, "gc": 4, "scale": 2},
                                  {"arch": "compact", "nf": 8, "nc": 1, "act": "leakyrelu"}])
def test_models_export_to_onnx_with_dynamic_size(tmp_path, arch):
    """No F.interpolate, no leaky_relu op, no F.pixel_unshuffle: paddle2onnx 2.1 mishandles each."""
    paddle2onnx = pytest.importorskip("paddle2onnx")
    ort = pytest.importorskip("onnxruntime")
    model = build_model(arch)
    init_weights(model, 1)
    last = model.state_dict().get("body.4.weight")
    if last is not None:  # make the compact's zero-initialised last conv do something
        last.set_value(np.random.default_rng(0).standard_normal(last.shape).astype(np.float32) * 0.1)
    model.eval()
    prefix = str(tmp_path / "m")
    paddle.jit.save(model, prefix, input_spec=[paddle.static.InputSpec([None, 3, None, None], "float32", "x")])
    program = prefix + ".json" if (tmp_path / "m.json").exists() else prefix + ".pdmodel"
    paddle2onnx.export(program, prefix + ".pdiparams", str(tmp_path / "m.onnx"))
    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    x = np.random.default_rng(1).random((1, 3, 10, 14)).astype(np.float32)
    out = session.run(None, {session.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(out, model(paddle.to_tensor(x)).numpy(), atol=1e-5)


def test_weights_and_states_are_the_same_bytes_from_every_process(tmp_path):
    """safetensors orders its header from a hash map seeded per process; srkit's files must not vary."""
    code = (
        "import sys, numpy as np\n"
        "from sr_train.checkpoint import TrainState, save_state\n"
        "from sr_train.weights.srkit import save_weights\n"
        "state = {'b.weight': np.ones((2, 3), np.float32), 'a.bias': np.zeros(2, np.float32)}\n"
        "arch = {'arch': 'compact', 'nf': 8, 'nc': 1, 'scale': 2}\n"
        "save_weights(sys.argv[1] + '.safetensors', state, arch, meta={'iteration': 3, 'z': 1, 'a': 2}, ema=state)\n"
        "save_state(sys.argv[1] + '.state', TrainState(3, state, {'a.bias.moment1': np.ones(2, np.float32)}, None,\n"
        "           {'recipe': {}, 'arch': arch, 'data_order': {}, 'b': 1, 'a': 2}))\n"
    )
    files = []
    for i in range(4):
        prefix = str(tmp_path / f"run{i}")
        done = run_python(code, prefix)
        assert done.returncode == 0, done.stderr[-3000:]
        files.append((Path(prefix + ".safetensors").read_bytes(), Path(prefix + ".state").read_bytes()))
    assert all(f == files[0] for f in files)
    weights = read_weights_file(tmp_path / "run0.safetensors")
    assert weights.meta == {"iteration": 3, "z": 1, "a": 2} and weights.arch["nf"] == 8
