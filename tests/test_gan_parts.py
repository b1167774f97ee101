"""GAN-stage building blocks: discriminators, VGG perceptual loss, relativistic GAN losses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import paddle
import pytest

from sr_train.gan import (
    PerceptualLoss,
    UNetDiscriminatorSN,
    VGGDiscriminator128,
    VGGFeatures,
    build_discriminator,
    check_patch_size,
    ragan_discriminator_loss,
    ragan_generator_loss,
    set_trainable,
)
from sr_train.gan import perceptual
from srdata.errors import UserError


def _vgg128_expected(nf: int) -> dict[str, tuple[int, ...]]:
    """PaddleGAN's VGGDiscriminator128 state dict, written out by hand (Paddle Linear is [in, out])."""
    expected = {"conv0_0.weight": (nf, 3, 3, 3), "conv0_0.bias": (nf,), "conv0_1.weight": (nf, nf, 4, 4)}
    for stat in ("weight", "bias", "_mean", "_variance"):
        expected[f"bn0_1.{stat}"] = (nf,)
    widths = [nf, 2 * nf, 4 * nf, 8 * nf, 8 * nf]
    for s in range(1, 5):
        cin, cout = widths[s - 1], widths[s]
        expected[f"conv{s}_0.weight"] = (cout, cin, 3, 3)
        expected[f"conv{s}_1.weight"] = (cout, cout, 4, 4)
        for bn in (f"bn{s}_0", f"bn{s}_1"):
            for stat in ("weight", "bias", "_mean", "_variance"):
                expected[f"{bn}.{stat}"] = (cout,)
    expected.update({"linear1.weight": (8 * nf * 16, 100), "linear1.bias": (100,),
                     "linear2.weight": (100, 1), "linear2.bias": (1,)})
    return expected


def _shapes(layer) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in layer.state_dict().items()}


# ---------------------------------------------------------------- discriminators


def test_vgg128_has_paddlegan_names_and_shapes():
    net = VGGDiscriminator128(in_nc=3, nf=64)
    assert _shapes(net) == _vgg128_expected(64)
    assert _shapes(net)["linear1.weight"] == (8192, 100)


def test_vgg128_loads_a_paddlegan_style_state_dict_exactly():
    paddle.seed(0)
    net = VGGDiscriminator128(nf=8)
    rng = np.random.default_rng(1)
    state = {k: rng.normal(size=s).astype("float32") for k, s in _vgg128_expected(8).items()}
    net.set_state_dict(state)
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), state[k])


def test_vgg128_gives_one_logit_per_image_and_refuses_other_sizes():
    paddle.seed(0)
    net = VGGDiscriminator128(nf=8)
    assert net(paddle.rand([2, 3, 128, 128])).shape == [2, 1]
    with pytest.raises(ValueError, match="128×128.*train.patch_size"):
        net(paddle.rand([1, 3, 96, 96]))


def test_unet_names_follow_real_esrgan_with_spectral_norm():
    shapes = _shapes(UNetDiscriminatorSN(in_nc=3, nf=64))
    assert shapes["conv0.weight"] == (64, 3, 3, 3) and shapes["conv0.bias"] == (64,)
    assert shapes["conv9.weight"] == (1, 64, 3, 3) and shapes["conv9.bias"] == (1,)
    sn_convs = {1: (128, 64, 4, 4), 2: (256, 128, 4, 4), 3: (512, 256, 4, 4), 4: (256, 512, 3, 3),
                5: (128, 256, 3, 3), 6: (64, 128, 3, 3), 7: (64, 64, 3, 3), 8: (64, 64, 3, 3)}
    for i, shape in sn_convs.items():
        assert shapes[f"conv{i}.weight_orig"] == shape
        assert shapes[f"conv{i}.weight_u"] == (shape[0],)
        assert shapes[f"conv{i}.weight_v"] == (int(np.prod(shape[1:])),)
        assert f"conv{i}.bias" not in shapes  # SN convs are bias-free, as in Real-ESRGAN
    assert len(shapes) == 2 + 2 + 8 * 3


@pytest.mark.parametrize("skip", [True, False])
def test_unet_outputs_a_map_of_the_input_size(skip):
    paddle.seed(0)
    net = UNetDiscriminatorSN(nf=8, skip_connection=skip)
    assert net(paddle.rand([2, 3, 48, 40])).shape == [2, 1, 48, 40]
    with pytest.raises(ValueError, match="multiples of 8"):
        net(paddle.rand([1, 3, 44, 40]))


def test_unet_spectral_norm_bounds_each_layer_and_freezes_in_eval():
    paddle.seed(0)
    net = UNetDiscriminatorSN(nf=8)
    x = paddle.rand([1, 3, 16, 16])
    for _ in range(30):  # power iteration converges over calls in training mode
        net(x)
    w = net.conv3.weight.numpy().reshape(net.conv3.weight.shape[0], -1)
    assert abs(np.linalg.svd(w, compute_uv=False)[0] - 1.0) < 1e-2
    net.eval()
    u = net.conv3.weight_u.numpy().copy()
    net(x)
    np.testing.assert_array_equal(net.conv3.weight_u.numpy(), u)


def _train_to_tell_flat_from_noisy(net, size: int, steps: int) -> list[float]:
    """Toy task: real = flat colour patches, fake = noise. Returns the discriminator loss per step."""
    opt = paddle.optimizer.Adam(learning_rate=1e-3, parameters=net.parameters())
    rng = np.random.default_rng(0)
    losses = []
    for _ in range(steps):
        real = paddle.to_tensor(np.broadcast_to(rng.random((4, 3, 1, 1)), (4, 3, size, size)).astype("float32"))
        fake = paddle.to_tensor(rng.random((4, 3, size, size)).astype("float32"))
        loss = ragan_discriminator_loss(net(real), net(fake)).total
        opt.clear_grad()
        loss.backward()
        grads = [p.grad.numpy() for p in net.parameters() if p.grad is not None]
        assert grads and all(np.isfinite(g).all() for g in grads)
        assert any(np.abs(g).sum() > 0 for g in grads)
        opt.step()
        losses.append(float(loss))
    return losses


@pytest.mark.parametrize("arch,size,steps", [("vgg128", 128, 12), ("unet", 32, 40)])
def test_discriminators_learn_a_toy_task(arch, size, steps):
    paddle.seed(0)
    losses = _train_to_tell_flat_from_noisy(build_discriminator(arch, nf=8), size, steps)
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5]), losses


def test_patch_size_is_checked_against_the_discriminator():
    check_patch_size("vgg128", 128)
    check_patch_size("unet", 96)
    with pytest.raises(UserError, match="train.patch_size.*128"):
        check_patch_size("vgg128", 96)
    with pytest.raises(UserError, match="multiple of 8"):
        check_patch_size("unet", 100)
    with pytest.raises(UserError, match="discriminator.arch"):
        build_discriminator("patchgan")


def test_set_trainable_keeps_gradients_out_of_a_frozen_net():
    paddle.seed(0)
    net = UNetDiscriminatorSN(nf=8)
    x = paddle.rand([1, 3, 16, 16])
    x.stop_gradient = False
    set_trainable(net, False)
    net(x).mean().backward()
    assert all(p.grad is None for p in net.parameters())
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    set_trainable(net, True)
    net(x).mean().backward()
    assert all(p.grad is not None for p in net.parameters())


# ---------------------------------------------------------------- relativistic GAN losses


def _bce_logits(x: np.ndarray, y: float) -> float:
    """Mean of -[y·log σ(x) + (1-y)·log(1-σ(x))], in the numerically stable form."""
    return float(np.mean(np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))))


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


REAL = np.array([[2.0], [0.5], [-1.0]], dtype="float64")
FAKE = np.array([[-0.5], [1.5], [-2.5]], dtype="float64")


def _t(a, grad=True):
    t = paddle.to_tensor(a.astype("float32"))
    t.stop_gradient = not grad
    return t


def test_ragan_discriminator_loss_matches_hand_computed_values_and_gradients():
    real, fake = _t(REAL), _t(FAKE)
    out = ragan_discriminator_loss(real, fake)
    want_real = 0.5 * _bce_logits(REAL - FAKE.mean(), 1.0)
    want_fake = 0.5 * _bce_logits(FAKE - REAL.mean(), 0.0)
    assert float(out.real) == pytest.approx(want_real, rel=1e-5)
    assert float(out.fake) == pytest.approx(want_fake, rel=1e-5)
    assert float(out.total) == pytest.approx(want_real + want_fake, rel=1e-5)
    out.total.backward()
    # Each term sees the other side's mean as a constant: d/dr_i = 0.5·(σ(r_i − mean f) − 1)/N.
    n = len(REAL)
    np.testing.assert_allclose(real.grad.numpy(), 0.5 * (_sigmoid(REAL - FAKE.mean()) - 1) / n, rtol=1e-5)
    np.testing.assert_allclose(fake.grad.numpy(), 0.5 * _sigmoid(FAKE - REAL.mean()) / n, rtol=1e-5)


def test_ragan_generator_loss_swaps_labels_and_trains_only_through_fakes():
    real, fake = _t(REAL), _t(FAKE)
    loss = ragan_generator_loss(real, fake)
    want = (_bce_logits(REAL - FAKE.mean(), 0.0) + _bce_logits(FAKE - REAL.mean(), 1.0)) / 2
    assert float(loss) == pytest.approx(want, rel=1e-5)
    loss.backward()
    assert real.grad is None
    n = len(REAL)
    # term 1 reaches each fake through the mean; term 2 directly.
    from_mean = -np.sum(_sigmoid(REAL - FAKE.mean())) / n / n
    direct = (_sigmoid(FAKE - REAL.mean()) - 1) / n
    np.testing.assert_allclose(fake.grad.numpy(), (from_mean + direct) / 2, rtol=1e-5)


def test_ragan_losses_accept_per_pixel_maps():
    rng = np.random.default_rng(3)
    r, f = rng.normal(size=(2, 1, 4, 4)), rng.normal(size=(2, 1, 4, 4))
    out = ragan_discriminator_loss(_t(r), _t(f))
    want = 0.5 * _bce_logits(r - f.mean(), 1.0) + 0.5 * _bce_logits(f - r.mean(), 0.0)
    assert float(out.total) == pytest.approx(want, rel=1e-5)


# ---------------------------------------------------------------- VGG perceptual loss


@pytest.fixture(scope="module")
def vgg19_reference():
    """Paddle's own VGG19 feature stack (names from paddle.vision) with seeded random weights."""
    from paddle.vision.models.vgg import cfgs, make_layers

    paddle.seed(7)
    features = make_layers(cfgs["E"])
    state = {f"features.{k}": v.numpy() for k, v in features.state_dict().items()}
    return features, state


def test_feature_index_of_vgg19_layers():
    assert perceptual.vgg19_feature_index("conv5_4", before_relu=True) == 34
    assert perceptual.vgg19_feature_index("conv5_4", before_relu=False) == 35
    assert perceptual.vgg19_feature_index("conv1_1", before_relu=True) == 0
    assert perceptual.vgg19_feature_index("conv3_4", before_relu=True) == 16
    with pytest.raises(UserError, match="loss.perceptual.layer.*conv5_4"):
        perceptual.vgg19_feature_index("conv6_1", before_relu=True)


@pytest.mark.parametrize("suffix", [".pdparams", ".safetensors", ".npz"])
def test_vgg_features_load_a_weights_file_and_equal_paddles_vgg19(tmp_path, vgg19_reference, suffix):
    reference, state = vgg19_reference
    path = tmp_path / f"vgg19{suffix}"
    if suffix == ".pdparams":
        paddle.save({k: paddle.to_tensor(v) for k, v in state.items()}, str(path))
    elif suffix == ".safetensors":
        from safetensors.numpy import save_file

        save_file(state, str(path))
    else:
        np.savez(path, **state)
    features = VGGFeatures(layer="conv5_4", before_relu=True, weights=str(path))
    x = paddle.rand([1, 3, 64, 64])
    got = features(x)
    assert got.shape == [1, 512, 4, 4]
    mean = paddle.to_tensor([0.485, 0.456, 0.406]).reshape([1, 3, 1, 1])
    std = paddle.to_tensor([0.229, 0.224, 0.225]).reshape([1, 3, 1, 1])
    want = paddle.nn.Sequential(*list(reference.children())[:35])((x - mean) / std)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-4)


def test_missing_weights_name_both_ways_to_provide_them(tmp_path):
    for weights in (None, "", str(tmp_path / "nope.pdparams")):
        with pytest.raises(UserError) as err:
            VGGFeatures(weights=weights)
        text = str(err.value)
        assert "loss.perceptual.weights" in text and "imagenet" in text and "PATH" in text


def test_imagenet_weights_come_from_paddles_own_download(monkeypatch, tmp_path, vgg19_reference):
    import paddle.utils.download as download

    _, state = vgg19_reference
    np.savez(tmp_path / "vgg19.npz", **state)
    asked = []

    def offline(url, md5):
        asked.append(url)
        raise RuntimeError("Download failed. Retry limit reached")

    monkeypatch.setattr(download, "get_weights_path_from_url", offline)
    with pytest.raises(UserError, match="could not download.*loss.perceptual.weights: PATH"):
        VGGFeatures(weights="imagenet")
    assert asked and asked[0].endswith("vgg19.pdparams")

    monkeypatch.setattr(download, "get_weights_path_from_url", lambda url, md5: str(tmp_path / "vgg19.npz"))
    features = VGGFeatures(weights="imagenet", layer="conv1_2")
    np.testing.assert_array_equal(features.features[2].weight.numpy(), state["features.2.weight"])


def test_weights_that_are_not_vgg19_are_refused(tmp_path, vgg19_reference):
    _, state = vgg19_reference
    first_block = {k: state[k] for k in ("features.0.weight", "features.0.bias", "features.2.weight")}
    np.savez(tmp_path / "partial.npz", **first_block)
    with pytest.raises(UserError, match="lacks 1 VGG19 tensors.*features.2.bias"):
        VGGFeatures(layer="conv1_2", weights=str(tmp_path / "partial.npz"))
    wrong = dict(first_block, **{"features.0.weight": np.zeros((64, 1, 3, 3), "float32")})
    np.savez(tmp_path / "wrong.npz", **wrong)
    with pytest.raises(UserError, match="features.0.weight of shape"):
        VGGFeatures(layer="conv1_1", weights=str(tmp_path / "wrong.npz"))
    (tmp_path / "garbage.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(UserError, match="cannot read.*garbage.safetensors"):
        VGGFeatures(weights=str(tmp_path / "garbage.safetensors"))
    (tmp_path / "w.bin").write_bytes(b"x")
    with pytest.raises(UserError, match="suffix '.bin'"):
        VGGFeatures(weights=str(tmp_path / "w.bin"))


def test_random_for_tests_network_is_small_seeded_and_frozen():
    a = VGGFeatures(weights="random-for-tests", seed=1)
    b = VGGFeatures(weights="random-for-tests", seed=1)
    c = VGGFeatures(weights="random-for-tests", seed=2)
    x = paddle.rand([2, 3, 32, 32])
    x.stop_gradient = False
    fa = a(x)
    assert fa.shape == [2, 64, 2, 2]  # VGG19 shape at 8/64 width
    np.testing.assert_array_equal(fa.numpy(), b(x).numpy())
    assert not np.allclose(fa.numpy(), c(x).numpy())
    assert all(p.stop_gradient for p in a.parameters())
    fa.abs().mean().backward()
    assert float(x.grad.abs().sum()) > 0  # the generator gets a gradient through the frozen net
    assert all(p.grad is None for p in a.parameters())


def test_perceptual_loss_is_weighted_distance_of_features():
    features = VGGFeatures(layer="conv3_4", weights="random-for-tests")
    rng = np.random.default_rng(0)
    sr, gt = (paddle.to_tensor(rng.random((2, 3, 16, 16)).astype("float32")) for _ in range(2))
    fs, fg = features(sr).numpy(), features(gt).numpy()
    l1 = PerceptualLoss(features, weight=0.5, criterion="l1")
    assert float(l1(sr, gt)) == pytest.approx(0.5 * np.abs(fs - fg).mean(), rel=1e-5)
    l2 = PerceptualLoss(features, weight=2.0, criterion="l2")
    assert float(l2(sr, gt)) == pytest.approx(2.0 * ((fs - fg) ** 2).mean(), rel=1e-5)
    assert float(l1(gt, gt)) == 0.0
    with pytest.raises(UserError, match="loss.perceptual.criterion"):
        PerceptualLoss(features, criterion="fro")


# ---------------------------------------------------------------- one ESRGAN iteration, end to end


def _tiny_gan(arch: str):
    paddle.seed(0)
    gen = paddle.nn.Sequential(paddle.nn.Conv2D(3, 12, 3, padding=1), paddle.nn.PixelShuffle(2))
    disc = build_discriminator(arch, nf=8)
    opt_g = paddle.optimizer.Adam(1e-3, beta1=0.9, beta2=0.99, parameters=gen.parameters())
    opt_d = paddle.optimizer.Adam(1e-3, beta1=0.9, beta2=0.99, parameters=disc.parameters())
    return gen, disc, opt_g, opt_d


def test_one_esrgan_iteration_updates_generator_then_discriminator():
    """G step (pixel + perceptual + RaGAN with D frozen), then D step on detached fakes — the fit.py order."""
    gen, disc, opt_g, opt_d = _tiny_gan("unet")
    percep = PerceptualLoss(VGGFeatures(weights="random-for-tests"), weight=1.0)
    lq, gt = paddle.rand([2, 3, 16, 16]), paddle.rand([2, 3, 32, 32])
    d_before = {k: v.numpy().copy() for k, v in disc.state_dict().items()}
    g_before = {k: v.numpy().copy() for k, v in gen.state_dict().items()}

    set_trainable(disc, False)
    sr = gen(lq)
    l_pix = paddle.nn.functional.l1_loss(sr, gt) * 1e-2
    l_percep = percep(sr, gt)
    l_g_gan = ragan_generator_loss(disc(gt), disc(sr)) * 5e-3
    opt_g.clear_grad()
    (l_pix + l_percep + l_g_gan).backward()
    opt_g.step()
    assert all(p.grad is None for p in disc.parameters())
    # the generator moved; the discriminator's weights did not (its SN vectors may: power iteration)
    assert any(not np.array_equal(v.numpy(), g_before[k]) for k, v in gen.state_dict().items())
    for k, v in disc.state_dict().items():
        if not k.endswith(("_u", "_v")):
            np.testing.assert_array_equal(v.numpy(), d_before[k])

    set_trainable(disc, True)
    g_grads = [p.grad.numpy().copy() for p in gen.parameters()]
    d_loss = ragan_discriminator_loss(disc(gt), disc(sr.detach()))
    opt_d.clear_grad()
    d_loss.total.backward()
    for p, before in zip(gen.parameters(), g_grads):  # the D step never reaches the generator
        np.testing.assert_array_equal(p.grad.numpy(), before)
    assert all(p.grad is not None and np.isfinite(p.grad.numpy()).all() for p in disc.parameters())
    opt_d.step()
    assert all(np.isfinite(float(t)) for t in (l_pix, l_percep, l_g_gan, d_loss.real, d_loss.fake))
    assert not np.array_equal(disc.conv9.weight.numpy(), d_before["conv9.weight"])


# ---------------------------------------------------------------- shipped GAN recipes


@pytest.mark.parametrize("name", ["esrgan-x4.yaml", "anime-esrgan-x4.yaml"])
def test_gan_recipes_name_settings_the_gan_parts_accept(name):
    """The recipes' GAN sections must build: a known discriminator at the recipe's patch size, a VGG layer."""
    import yaml

    recipe = yaml.safe_load((Path(__file__).resolve().parents[1] / "recipes" / name).read_text())
    disc = recipe["discriminator"]
    check_patch_size(disc["arch"], recipe["train"]["patch_size"])
    assert isinstance(build_discriminator(**disc), VGGDiscriminator128)
    p = recipe["loss"]["perceptual"]
    assert perceptual.vgg19_feature_index(p["layer"], p["before_relu"]) == 34
    assert p["weights"] == "imagenet" and p["criterion"] == "l1"
    assert recipe["model"]["init_from"].endswith("best.safetensors")


# ---------------------------------------------------------------- resume exactness with srkit's state format


def _gan_iteration(gen, disc, opt_g, opt_d, percep, it: int, size: int) -> None:
    rng = np.random.default_rng([0, it])
    gt_np = rng.random((2, 3, size, size)).astype("float32")
    lq, gt = paddle.to_tensor(gt_np[:, :, ::2, ::2].copy()), paddle.to_tensor(gt_np)
    sr = gen(lq)
    set_trainable(disc, False)
    with paddle.no_grad():
        real = disc(gt)
    loss = 1e-2 * paddle.nn.functional.l1_loss(sr, gt) + percep(sr, gt) + 5e-3 * ragan_generator_loss(real, disc(sr))
    loss.backward()
    opt_g.step()
    opt_g.clear_grad()
    set_trainable(disc, True)
    ragan_discriminator_loss(disc(gt), disc(sr.detach())).total.backward()
    opt_d.step()
    opt_d.clear_grad()


@pytest.mark.parametrize("arch,size", [("vgg128", 128), ("unet", 32)])
def test_gan_training_resumes_exactly_through_srkit_states(tmp_path, arch, size):
    """3 iterations + save/read state + 3 more == 6 straight, bit for bit: the discriminator's BatchNorm
    statistics, spectral-norm vectors and Adam accumulators all survive sr_train.checkpoint's format."""
    from sr_train.checkpoint import TrainState, load_optimizer_state, optimizer_state, read_state, save_state
    from sr_train.weights.load import model_state, set_state_checked

    percep = PerceptualLoss(VGGFeatures(weights="random-for-tests"))

    def weights(gen, disc):
        return {**{f"g.{k}": v for k, v in model_state(gen).items()}, **{f"d.{k}": v for k, v in model_state(disc).items()}}

    nets = _tiny_gan(arch)
    for it in range(6):
        _gan_iteration(*nets, percep, it, size)
    straight = weights(*nets[:2])

    gen, disc, opt_g, opt_d = _tiny_gan(arch)
    for it in range(3):
        _gan_iteration(gen, disc, opt_g, opt_d, percep, it, size)
    optim = {**{f"g.{k}": v for k, v in optimizer_state(opt_g, dict(gen.named_parameters())).items()},
             **{f"d.{k}": v for k, v in optimizer_state(opt_d, dict(disc.named_parameters())).items()}}
    save_state(tmp_path / "iter_3.state", TrainState(3, weights(gen, disc), optim, None,
                                                     {"recipe": {}, "arch": {}, "data_order": {}}))
    state = read_state(tmp_path / "iter_3.state")

    gen, disc, opt_g, opt_d = _tiny_gan(arch)
    for prefix, net, opt in (("g.", gen, opt_g), ("d.", disc, opt_d)):
        set_state_checked(net, {k[2:]: v for k, v in state.model.items() if k.startswith(prefix)}, "state")
        load_optimizer_state(opt, dict(net.named_parameters()),
                             {k[2:]: v for k, v in state.optimizer.items() if k.startswith(prefix)})
    for it in range(3, 6):
        _gan_iteration(gen, disc, opt_g, opt_d, percep, it, size)
    resumed = weights(gen, disc)
    assert straight.keys() == resumed.keys()
    for key in straight:
        np.testing.assert_array_equal(resumed[key], straight[key], err_msg=key)
