"""VGG19 perceptual loss: compare super-resolved and ground-truth images in ImageNet-VGG feature space.

ESRGAN's perceptual term uses VGG19's conv5_4 *before* its ReLU: pre-activation features are
denser (ReLU zeroes most of them at that depth), so they keep brightness and texture information
that post-ReLU features lose. The network only means something with its ImageNet weights, so there
is no silent fallback: without weights the run stops and says how to provide them. A seeded,
narrower random VGG exists for tests only, under the unmistakable name `random-for-tests`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import paddle
import paddle.nn.functional as F
from paddle import nn

from srdata.errors import UserError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# VGG19 ("configuration E"): conv widths per block; a 2×2 max-pool closes each block.
VGG19_BLOCKS = ((64, 64), (128, 128), (256, 256, 256, 256), (512, 512, 512, 512), (512, 512, 512, 512))

IMAGENET = "imagenet"
RANDOM_FOR_TESTS = "random-for-tests"
TEST_WIDTH = 8  # the random test network is VGG19 with 8/64 of the channels: same shape, ~64× cheaper

WEIGHTS_KEY = "loss.perceptual.weights"
HOW_TO_PROVIDE = (
    f"set {WEIGHTS_KEY}: {IMAGENET} (Paddle downloads its ImageNet VGG19, vgg19.pdparams, once into "
    f"~/.cache/paddle/hapi/weights; needs network), or {WEIGHTS_KEY}: PATH to a local .pdparams, "
    ".safetensors or .npz with VGG19's names (features.0.weight, features.0.bias, ..., as saved by "
    "paddle.vision.models.vgg19 or torchvision)"
)


def vgg19_feature_index(layer: str, before_relu: bool) -> int:
    """Index in VGG19's `features` sequence of `convB_K` (or of the ReLU right after it).

    conv5_4 before ReLU is index 34, the number PaddleGAN and BasicSR configs use.
    """
    index = 0
    names = []
    for block, widths in enumerate(VGG19_BLOCKS, start=1):
        for k in range(1, len(widths) + 1):
            names.append(f"conv{block}_{k}")
            if names[-1] == layer:
                return index if before_relu else index + 1
            index += 2  # conv, relu
        index += 1  # max-pool
    raise UserError(f"loss.perceptual.layer is {layer!r}: use one of VGG19's convs: {', '.join(names)}")


def _vgg19_layers(last_index: int, width: int) -> list[nn.Layer]:
    """VGG19's feature layers 0..last_index, with channels scaled by width/64 (64 = the real net)."""
    layers: list[nn.Layer] = []
    cin = 3
    for widths in VGG19_BLOCKS:
        for w in widths:
            cout = w * width // 64
            layers += [nn.Conv2D(cin, cout, 3, padding=1), nn.ReLU()]
            cin = cout
        layers.append(nn.MaxPool2D(kernel_size=2, stride=2))
    return layers[: last_index + 1]


class VGGFeatures(nn.Layer):
    """Frozen VGG19 features of an RGB [0, 1] NCHW batch, up to one chosen layer.

    `weights`: `"imagenet"` (Paddle's own ImageNet vgg19 file, downloaded once), a path to a local
    weights file, or `"random-for-tests"` (narrow, seeded random network; tests only). Anything
    else, including None, is a UserError saying how to provide real weights. The ImageNet mean/std
    normalisation happens inside, so callers pass the images exactly as the generator sees them.
    Parameters never train; gradients still flow to the input, which is what the generator needs.
    """

    def __init__(self, layer: str = "conv5_4", before_relu: bool = True,
                 weights: str | Path | None = None, seed: int = 0):
        super().__init__()
        self.layer, self.before_relu = layer, before_relu
        self.index = vgg19_feature_index(layer, before_relu)
        random = isinstance(weights, str) and weights == RANDOM_FOR_TESTS
        state = None if random else read_vgg19_weights(weights)  # fail fast, before allocating
        self.width = TEST_WIDTH if random else 64
        self.features = nn.Sequential(*_vgg19_layers(self.index, self.width))
        if state is None:
            self._init_random(seed)
        else:
            self._load_state(state)
        self.register_buffer("mean", paddle.to_tensor(IMAGENET_MEAN, dtype="float32").reshape([1, 3, 1, 1]))
        self.register_buffer("std", paddle.to_tensor(IMAGENET_STD, dtype="float32").reshape([1, 3, 1, 1]))
        for param in self.parameters():
            param.stop_gradient = True
        self.eval()

    def _init_random(self, seed: int) -> None:
        """He-normal weights from a private NumPy generator: same seed, same network, global RNGs untouched."""
        rng = np.random.default_rng(seed)
        for name, param in self.features.named_parameters():
            if name.endswith(".bias"):
                param.set_value(np.zeros(param.shape, "float32"))
            else:
                fan_in = int(np.prod(param.shape[1:]))
                param.set_value(rng.normal(0.0, np.sqrt(2.0 / fan_in), param.shape).astype("float32"))

    def _load_state(self, state: tuple[str, dict[str, np.ndarray]]) -> None:
        source, arrays = state
        wanted = {f"features.{name}": p for name, p in self.features.named_parameters()}
        missing = [key for key in wanted if key not in arrays]
        if missing:
            raise UserError(
                f"{WEIGHTS_KEY}: {source} lacks {len(missing)} VGG19 tensors needed up to feature "
                f"{self.index} (first: {', '.join(missing[:3])}); {HOW_TO_PROVIDE}"
            )
        for key, param in wanted.items():
            value = np.asarray(arrays[key], dtype="float32")
            if tuple(value.shape) != tuple(param.shape):
                raise UserError(
                    f"{WEIGHTS_KEY}: {source} has {key} of shape {tuple(value.shape)}, VGG19 needs "
                    f"{tuple(param.shape)}: this is not a VGG19 file; {HOW_TO_PROVIDE}"
                )
            param.set_value(value)

    def forward(self, x):
        return self.features((x - self.mean) / self.std)


def check_weights_setting(weights: str | Path | None) -> None:
    """UserError unless `weights` names VGG19 weights that can be had: "imagenet" (downloaded at
    first use), an existing file, or the tests' random network. Reads and downloads nothing, so a
    run (or `sr-train fit --dry-run`) can check it before it starts."""
    if weights is None or (isinstance(weights, str) and not weights.strip()):
        raise UserError(f"{WEIGHTS_KEY} is not set: the perceptual loss needs ImageNet VGG19 weights; {HOW_TO_PROVIDE}")
    if isinstance(weights, str) and weights in (IMAGENET, RANDOM_FOR_TESTS):
        return
    path = Path(weights).expanduser()
    if not path.is_file():
        raise UserError(f"{WEIGHTS_KEY}: {path} does not exist; {HOW_TO_PROVIDE}")


def read_vgg19_weights(weights: str | Path | None) -> tuple[str, dict[str, np.ndarray]]:
    """(where they came from, name → array) for `weights` = "imagenet" or a local file path."""
    check_weights_setting(weights)
    if isinstance(weights, str) and weights == IMAGENET:
        path = _download_imagenet_vgg19()
    else:
        path = Path(weights).expanduser()
    return str(path), _read_arrays(path)


def _download_imagenet_vgg19() -> Path:
    """The file `paddle.vision.models.vgg19(pretrained=True)` uses, fetched (once) by Paddle itself.

    Going through Paddle's URL/MD5 table rather than building `vgg19(pretrained=True)` avoids
    allocating its 120-million-parameter classifier, which the perceptual loss never runs.
    """
    from paddle.utils.download import get_weights_path_from_url
    from paddle.vision.models.vgg import model_urls

    url, md5 = model_urls["vgg19"]
    try:
        return Path(get_weights_path_from_url(url, md5))
    except Exception as exc:  # Paddle raises RuntimeError after its retries; DNS/SSL errors vary
        raise UserError(
            f"{WEIGHTS_KEY}: {IMAGENET}: could not download Paddle's VGG19 ({exc}); either give this "
            f"machine network access, or fetch {url} on another machine and set {WEIGHTS_KEY}: PATH"
        ) from None


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    suffix = path.suffix.lower()
    try:
        if suffix == ".safetensors":
            from safetensors.numpy import load_file

            return load_file(str(path))
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                return {key: data[key] for key in data.files}
        if suffix in (".pdparams", ".pdparam"):
            state = paddle.load(str(path), return_numpy=True)
            return {key: np.asarray(value) for key, value in state.items() if hasattr(value, "shape")}
    except UserError:
        raise
    except Exception as exc:  # a truncated or foreign file: say which one and what to do
        raise UserError(f"{WEIGHTS_KEY}: cannot read {path} ({type(exc).__name__}: {exc}); {HOW_TO_PROVIDE}") from None
    raise UserError(f"{WEIGHTS_KEY}: {path} has suffix {suffix or '(none)'!r}; {HOW_TO_PROVIDE}")


class PerceptualLoss(nn.Layer):
    """`weight` × distance between VGG features of the output and of the (constant) ground truth.

    `criterion`: "l1" (ESRGAN, PaddleGAN) or "l2" (mean squared error, as in SRGAN).
    """

    def __init__(self, features: VGGFeatures, weight: float = 1.0, criterion: Literal["l1", "l2"] = "l1"):
        super().__init__()
        if criterion not in ("l1", "l2"):
            raise UserError(f"loss.perceptual.criterion is {criterion!r}: use l1 or l2")
        self.features, self.weight, self.criterion = features, weight, criterion

    def forward(self, sr, gt):
        sr_feat = self.features(sr)
        with paddle.no_grad():
            gt_feat = self.features(gt)
        distance = F.l1_loss if self.criterion == "l1" else F.mse_loss
        return distance(sr_feat, gt_feat) * self.weight
