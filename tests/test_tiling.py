"""Tiled upscaling must equal the untiled result (no seams) when the receptive field fits the pad."""

from __future__ import annotations

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F
import pytest

from sr_train.tiling import DEFAULT_PAD, DEFAULT_TILE, upscale

SEAM_FREE = 1e-5  # float rounding only: far stricter than the 1/255 the issue asks for


class ConvNet(nn.Layer):
    """`depth` 3x3 convs (receptive-field radius = depth LR px), pixel shuffle by `scale`, sigmoid.

    The sigmoid keeps outputs inside (0, 1) so upscale's clipping cannot hide a difference.
    """

    def __init__(self, depth: int, scale: int, width: int = 8, seed: int = 0):
        super().__init__()
        paddle.seed(seed)
        chans = [3] + [width] * (depth - 1) + [3 * scale * scale]
        self.convs = nn.LayerList([nn.Conv2D(a, b, 3, padding=1) for a, b in zip(chans[:-1], chans[1:])])
        self.scale = scale

    def forward(self, x):
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if i < len(self.convs) - 1:
                x = F.relu(x)
        return F.sigmoid(4 * F.pixel_shuffle(x, self.scale))


class UnshuffleNet(nn.Layer):
    """A x1 model built like RRDBNet's x1 path: pixel-unshuffle by 4, convs, pixel-shuffle back."""

    input_multiple = 4

    def __init__(self):
        super().__init__()
        paddle.seed(1)
        self.conv1 = nn.Conv2D(48, 16, 3, padding=1)
        self.conv2 = nn.Conv2D(16, 48, 3, padding=1)

    def forward(self, x):
        y = self.conv2(F.relu(self.conv1(F.pixel_unshuffle(x, 4))))
        return F.sigmoid(F.pixel_shuffle(y, 4))


def _image(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((height, width, 3), dtype=np.float32)


def _untiled(model, img, scale):
    with paddle.no_grad():
        out = model(paddle.to_tensor(img.transpose(2, 0, 1)[None].copy()))
    return np.clip(out.numpy()[0].transpose(1, 2, 0), 0, 1)


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("size", [(37, 23), (16, 16), (8, 41), (33, 17)])
def test_tiled_equals_untiled_when_receptive_field_fits_the_pad(scale, size):
    model = ConvNet(depth=4, scale=scale)
    img = _image(*size)
    tiled = upscale(model, img, scale, tile=8, tile_pad=4)
    assert tiled.shape == (size[0] * scale, size[1] * scale, 3)
    assert tiled.dtype == np.float32
    assert np.abs(tiled - _untiled(model, img, scale)).max() <= SEAM_FREE


def test_tile_zero_runs_the_whole_image_once():
    model = ConvNet(depth=3, scale=2)
    img = _image(21, 30)
    calls = []
    out = upscale(model, img, 2, tile=0, tile_pad=4, on_tile=calls.append)
    np.testing.assert_array_equal(out, _untiled(model, img, 2))
    assert calls == [21 * 30]


def test_progress_callback_counts_every_pixel_once():
    calls = []
    upscale(ConvNet(depth=2, scale=2), _image(29, 19), 2, tile=8, tile_pad=2, on_tile=calls.append)
    assert len(calls) == 4 * 3
    assert sum(calls) == 29 * 19


def test_too_small_pad_differs_only_near_the_seams():
    """A model seeing 8 px around each pixel, tiled with only 2 px of context: the error is real
    (> 1/255) and lies within 8 - 2 = 6 px of the tile seams; elsewhere tiling is exact."""
    depth, pad, tile, scale = 8, 2, 24, 2
    model = ConvNet(depth=depth, scale=scale, width=16)
    img = _image(60, 50, seed=3)
    diff = np.abs(upscale(model, img, scale, tile=tile, tile_pad=pad) - _untiled(model, img, scale)).max(axis=2)
    assert diff.max() > 1 / 255

    reach = depth - pad

    def far_from_seams(n):
        pos = np.arange(n)
        in_tile = pos % tile
        tile_end = np.minimum((pos // tile + 1) * tile, n)
        left_ok = (pos < tile) | (in_tile >= reach)  # first tile has the image border on its left
        right_ok = (tile_end == n) | (tile_end - 1 - pos >= reach)
        return np.repeat(left_ok & right_ok, scale)

    far = far_from_seams(img.shape[0])[:, None] & far_from_seams(img.shape[1])[None, :]
    assert far.any() and (~far).any()
    assert diff[far].max() <= SEAM_FREE
    assert diff[~far].max() > 1 / 255
    # ...and a pad as wide as the receptive field removes it.
    wide = upscale(model, img, scale, tile=tile, tile_pad=depth)
    assert np.abs(wide - _untiled(model, img, scale)).max() <= SEAM_FREE


def test_unshuffle_model_gets_inputs_padded_to_a_multiple_of_four():
    """x1 models (pixel-unshuffle by 4) get odd-sized images: padded, tiled on the 4 px grid, cropped back."""
    model = UnshuffleNet()
    img = _image(37, 29, seed=5)
    whole = upscale(model, img, 1, tile=0)
    assert whole.shape == (37, 29, 3)
    # Reference: pad to 40 x 32 by reflection by hand, run once, crop.
    padded = np.pad(img, ((0, 3), (0, 3), (0, 0)), mode="reflect")
    np.testing.assert_allclose(whole, _untiled(model, padded, 1)[:37, :29], atol=SEAM_FREE)
    # Tile 10 and pad 6 are rounded up to 12 and 8 so the unshuffle grid stays aligned.
    tiled = upscale(model, img, 1, tile=10, tile_pad=6)
    assert np.abs(tiled - whole).max() <= SEAM_FREE


def test_any_numpy_callable_works_as_a_model():
    """An ONNX Runtime session wrapper is a plain callable on NCHW float32 arrays."""
    img = _image(13, 22)
    nearest = lambda batch: batch.repeat(3, axis=2).repeat(3, axis=3)  # noqa: E731
    out = upscale(nearest, img, 3, tile=5, tile_pad=2)
    np.testing.assert_array_equal(out, img.repeat(3, axis=0).repeat(3, axis=1))


def test_wrong_scale_is_reported_in_words():
    with pytest.raises(ValueError, match="not x4"):
        upscale(ConvNet(depth=2, scale=2), _image(16, 16), 4, tile=0)


def test_default_tile_and_pad_run_an_rrdbnet_without_seams():
    """upscale's defaults on an image spanning 2 x 2 default tiles: a small RRDBNet (receptive field
    wider than the pad) comes out equal to the untiled run within 1/255, and it really was tiled."""
    model = _srkit_model({"arch": "rrdbnet", "nf": 8, "nb": 1, "gc": 4, "scale": 2})
    img = _image(DEFAULT_TILE + 9, DEFAULT_TILE + 5, seed=4)
    calls = []
    tiled = upscale(model, img, 2, on_tile=calls.append)
    assert len(calls) == 4 and sum(calls) == img.shape[0] * img.shape[1]
    assert np.abs(tiled - upscale(model, img, 2, tile=0)).max() <= 1 / 255


@pytest.mark.parametrize(
    "arch",
    [
        {"arch": "compact", "nf": 8, "nc": 4, "scale": 4},
        {"arch": "rrdbnet", "nf": 8, "nb": 1, "gc": 4, "scale": 4},
        {"arch": "rrdbnet", "nf": 8, "nb": 1, "gc": 4, "scale": 2},
        {"arch": "rrdbnet", "nf": 8, "nb": 1, "gc": 4, "scale": 1},
    ],
    ids=lambda a: f"{a['arch']}-x{a['scale']}",
)
def test_srkit_models_tile_without_seams_at_the_default_pad(arch):
    """The issue's promise on srkit's own networks: tiled == untiled within 1/255 at DEFAULT_PAD
    (RRDBNet's receptive field, 18 LR px for one block, is wider than the pad: no longer exact)."""
    model = _srkit_model(arch)
    img = _image(45, 38, seed=2)
    whole = upscale(model, img, arch["scale"], tile=0)
    tiled = upscale(model, img, arch["scale"], tile=16, tile_pad=DEFAULT_PAD)
    assert tiled.shape == whole.shape == (45 * arch["scale"], 38 * arch["scale"], 3)
    assert np.abs(tiled - whole).max() <= 1 / 255


def _srkit_model(arch: dict):
    """srkit's network for `arch` in eval mode, weights jittered so no layer is trivially zero."""
    from sr_train.models import build_model, init_weights

    model = build_model(arch)
    init_weights(model, seed=0)
    rng = np.random.default_rng(7)
    for param in model.parameters():  # Compact's last conv starts at zero: make the network non-trivial
        param.set_value(param.numpy() + rng.normal(0, 0.05, param.shape).astype(np.float32))
    model.eval()
    return model


def test_upscaled_tiles_cover_the_output_once_in_raster_order():
    """predict stores tiles as they come (grey gathers full-width bands): every output pixel exactly
    once, rows of tiles top to bottom and left to right, the padding to the input multiple cut off."""
    from sr_train.tiling import upscaled_tiles

    img = _image(37, 29, seed=3)
    covered = np.zeros((37, 29), int)
    order = []
    for rows, cols, result in upscaled_tiles(UnshuffleNet(), img, 1, tile=12, tile_pad=4):
        assert result.dtype == np.float32 and result.shape == (rows.stop - rows.start, cols.stop - cols.start, 3)
        assert 0 <= result.min() and result.max() <= 1
        covered[rows, cols] += 1
        order.append((rows.start, cols.start))
    assert (covered == 1).all() and order == sorted(order) and len(order) == 4 * 3
