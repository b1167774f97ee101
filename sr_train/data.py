"""Training and validation pairs: found and checked before training, cropped reproducibly.

Every random choice of the training data (which image, where to crop, which flip, and with
`data.degrade` every value of the degradation that makes the LR) is drawn from numpy generators
seeded by (seed, iteration, sample index). So the data of iteration N does not depend on what came
before it, on the number of DataLoader workers or on the number of data-parallel processes, and
resuming at iteration N needs no saved sampler state.
"""

from __future__ import annotations

import functools
import os
import signal
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import paddle
from PIL import Image
from rich.console import Console

from sr_train.cache import decoded_images
from sr_train.recipe import Recipe
from srdata.degradations.pipeline import Pipeline
from srdata.errors import UserError
from srdata.layout import SplitDirs, list_pairs, lr_dir, resolve_layout
from srdata.metrics import SSIM_MARGIN

FIX = "rebuild the dataset with `srdata build` (or fix the folders)"
_DEGRADE_STREAM = 1 << 21  # tags the degradation's generator apart from the crop's and the image order's


@dataclass(frozen=True)
class Pair:
    name: str
    hr: Path
    lr: Path | None  # None: HR only (the LR is made on the fly, data.degrade)
    hr_size: tuple[int, int]  # (width, height)


@dataclass(frozen=True)
class Splits:
    train: SplitDirs
    val: SplitDirs
    scale: int


def resolve_splits(recipe: Recipe) -> Splits:
    """The train/val folders and the scale the recipe points at (UserError naming the key if absent)."""
    data = recipe.data
    if data.root:
        root = Path(data.root)
        if not root.is_dir():
            raise UserError(f"{recipe.source}: data.root {root} is not a folder: make it with "
                            f"`srdata build --src IMAGES --out {root} --scale 4` or set data.root")
        layout = resolve_layout(root, scale=data.scale)
        found = {split.name: split for split in layout.splits}
        for name in ("train", "val"):
            hr_only = name == "train" and data.degrade is not None  # the LRs are made on the fly
            if name not in found or not found[name].hr.is_dir() or not (hr_only or found[name].lr.is_dir()):
                raise UserError(f"{recipe.source}: data.root {root} has no {name}/ and {lr_dir(name, layout.scale)}/ "
                                f"folders: {FIX} with --val N")
        return Splits(found["train"], found["val"], layout.scale)
    dirs = {}
    for name in ("train", "val"):
        pair = getattr(data, name)
        for side in ("gt", "lq"):
            if not getattr(pair, side):
                continue  # data.train.lq with data.degrade (check_recipe allows only that)
            if not Path(getattr(pair, side)).is_dir():
                raise UserError(f"{recipe.source}: data.{name}.{side} {getattr(pair, side)} is not a folder: "
                                "set it to the folder holding the images")
        dirs[name] = SplitDirs(name, Path(pair.gt), Path(pair.lq) if pair.lq else None)
    scale = data.scale or infer_scale(dirs["train"] if dirs["train"].lr else dirs["val"], recipe.source)
    return Splits(dirs["train"], dirs["val"], scale)


def infer_scale(split: SplitDirs, source: str) -> int:
    """The HR/LR size ratio of the first pair (all pairs are checked against it later)."""
    for job in list_pairs(split, 1):
        if job.hr is not None and job.lr is not None:
            hw, lw = image_size(job.hr)[0], image_size(job.lr)[0]
            if lw and hw % lw == 0:
                return hw // lw
    raise UserError(f"{source}: cannot tell the scale from {split.hr} and {split.lr}: set data.scale")


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file header, without decoding the pixels."""
    try:
        with Image.open(path) as img:
            return img.size
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: not a readable image ({exc}): {FIX}") from None


def find_pairs(split: SplitDirs, scale: int, min_hr: int = 0, console: Console | None = None,
               hr_only: bool = False) -> list[Pair]:
    """All HR/LR pairs of a split, matched by name; every problem is listed before one UserError.

    Problems: a file without its partner, HR size != scale × LR size, an HR side below `min_hr`
    (the training patch size). `hr_only`: the HR images alone (LR files, if any, are not used).
    """
    problems: list[str] = []
    fixes: set[str] = set()
    pairs: list[Pair] = []
    for job in list_pairs(split, scale):
        if hr_only:
            if job.hr is not None:
                (hw, hh) = image_size(job.hr)
                if min(hw, hh) < min_hr:
                    problems.append(f"{job.hr.name}: HR {hw}x{hh} is smaller than train.patch_size {min_hr}")
                    fixes.add(f"lower train.patch_size to at most {min(hw, hh) - min(hw, hh) % scale} or remove "
                              "such images")
                else:
                    pairs.append(Pair(job.key, job.hr, None, (hw, hh)))
            continue
        if job.hr is None or job.lr is None:
            have, missing = (job.hr, split.lr) if job.lr is None else (job.lr, split.hr)
            problems.append(f"{have}: no partner in {missing}")
            fixes.add(FIX)
            continue
        (hw, hh), (lw, lh) = image_size(job.hr), image_size(job.lr)
        if (hw, hh) != (lw * scale, lh * scale):
            problems.append(f"{job.hr.name}: HR {hw}x{hh} is not {scale} x LR {lw}x{lh}")
            fixes.add(FIX)
            continue
        if min(hw, hh) < min_hr:
            problems.append(f"{job.hr.name}: HR {hw}x{hh} is smaller than train.patch_size {min_hr}")
            fixes.add(f"lower train.patch_size to at most {min(hw, hh) - min(hw, hh) % scale} or remove such images")
            continue
        pairs.append(Pair(job.key, job.hr, job.lr, (hw, hh)))
    if problems:
        console = console or Console(stderr=True)
        for problem in problems:
            console.print(f"  {split.name}: {problem}", markup=False, highlight=False, soft_wrap=True)
        raise UserError(f"{len(problems)} problem(s) in the {split.name} pairs of {split.hr} / {split.lr} "
                        f"(listed above, first: {problems[0]}): {'; '.join(sorted(fixes))}")
    if not pairs:
        where = split.hr if hr_only else f"{split.hr} / {split.lr}"
        raise UserError(f"no {'images' if hr_only else 'image pairs'} in {where}: {FIX}")
    return pairs


class ImageStore:
    """The training images, HR (and LR unless the data is HR only), decoded once into the
    decoded-image cache in `cache_dir` (sr_train.cache) and read from it as memory-mapped views:
    a patch costs a slice, not the decode of a whole PNG, and no process holds the images in its
    own memory. `workers` processes decode what the cache lacks."""

    def __init__(self, pairs: list[Pair], scale: int, cache_dir: Path, workers: int = 1, progress: bool = False):
        self.pairs = pairs
        self.scale = scale
        self.hr, wrote_hr = decoded_images([p.hr for p in pairs], [p.hr_size for p in pairs], cache_dir, workers,
                                           progress)
        self.lr, wrote_lr = None, False
        if all(p.lr is not None for p in pairs):
            lr_sizes = [(p.hr_size[0] // scale, p.hr_size[1] // scale) for p in pairs]
            self.lr, wrote_lr = decoded_images([p.lr for p in pairs], lr_sizes, cache_dir, workers, progress)
        self.written = wrote_hr or wrote_lr  # decoded now (False: the cache already held them)
        self.megabytes = (self.hr.nbytes + (self.lr.nbytes if self.lr is not None else 0)) / 2**20

    def get(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        """(HR, LR) uint8 HWC RGB, read-only; LR None for HR-only data."""
        return self.hr[index], None if self.lr is None else self.lr[index]


def sample_rng(seed: int, iteration: int, sample: int) -> np.random.Generator:
    """The generator of one training sample: a pure function of (seed, iteration, sample index)."""
    return np.random.default_rng([seed, iteration, sample])


def degrade_seed(seed: int, iteration: int, sample: int) -> int:
    """The image seed of one training sample's degradation: a pure function of (seed, iteration,
    sample index), independent of the crop's generator."""
    return int(np.random.default_rng([seed, iteration, sample, _DEGRADE_STREAM]).integers(1 << 63))


def degrade_patch(hr: np.ndarray, pipeline: Pipeline, image_seed: int, scale: int) -> np.ndarray:
    """The LR of an RGB HR patch (sides multiples of scale): the pipeline drawn from image_seed.
    Pipelines work in OpenCV's BGR order, so the channels are flipped on the way in and out."""
    record = pipeline.draw(image_seed, scale)
    return record.apply(np.ascontiguousarray(hr[:, :, ::-1]))[:, :, ::-1]


def image_index(seed: int, global_sample: int, count: int) -> int:
    """Which image the n-th training sample uses: epoch-wise permutations, so every image is seen
    once per epoch, each epoch's order drawn from (seed, epoch)."""
    epoch, position = divmod(global_sample, count)
    return int(epoch_order(seed, epoch, count)[position])


@functools.lru_cache(maxsize=4)
def epoch_order(seed: int, epoch: int, count: int) -> np.ndarray:
    """The image order of one epoch, drawn once per process and epoch rather than once per sample
    (a permutation of 100k images costs about 1 ms: seven 128 px patches from the cache)."""
    order = np.random.default_rng([seed, 1 << 20, epoch]).permutation(count)
    order.flags.writeable = False
    return order


def random_crop(hr: np.ndarray, lr: np.ndarray | None, scale: int, patch: int, rng: np.random.Generator,
                flip: bool, transpose: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """An aligned HR/LR patch pair (HR patch × patch), randomly flipped/transposed. Without an LR
    (None) the HR patch is placed on the same grid of scale-pixel steps, as if the LR existed."""
    lp = patch // scale
    rows, cols = lr.shape[:2] if lr is not None else (hr.shape[0] // scale, hr.shape[1] // scale)
    y = int(rng.integers(0, rows - lp + 1))
    x = int(rng.integers(0, cols - lp + 1))
    hr = hr[y * scale:(y + lp) * scale, x * scale:(x + lp) * scale]
    lr = None if lr is None else lr[y:y + lp, x:x + lp]
    hflip, vflip, swap = rng.random(3) < 0.5
    for wanted, turn in ((flip and hflip, lambda a: a[:, ::-1]), (flip and vflip, lambda a: a[::-1]),
                         (transpose and swap, lambda a: a.transpose(1, 0, 2))):
        if wanted:
            hr, lr = turn(hr), None if lr is None else turn(lr)
    return hr, lr


def to_chw_float(batch: list[np.ndarray]) -> np.ndarray:
    """uint8 HWC images -> float32 NCHW in [0, 1]."""
    return np.stack(batch).transpose(0, 3, 1, 2).astype(np.float32) / 255.0


class TrainBatches(paddle.io.Dataset):
    """Item k = this process's share of the batch of iteration `start + k` (LR, HR float32 NCHW).

    The global batch of an iteration has samples 0..batch_size-1; with data parallelism, rank r of
    W processes takes samples r·B/W .. (r+1)·B/W-1 (the distributed sampler), so the union over
    ranks is exactly the single-process batch.
    """

    def __init__(self, store: ImageStore, seed: int, start: int, iters: int, batch_size: int, patch: int,
                 flip: bool, transpose: bool, rank: int = 0, world: int = 1, pipeline: Pipeline | None = None):
        super().__init__()
        if batch_size % world:
            raise UserError(f"train.batch_size {batch_size} is not divisible by the {world} processes: "
                            "change one of them")
        self.store, self.seed, self.start, self.iters = store, seed, start, iters
        self.batch_size, self.patch, self.flip, self.transpose = batch_size, patch, flip, transpose
        self.pipeline = pipeline  # data.degrade: each LR made from its HR patch (the store's LRs unused)
        per = batch_size // world
        self.samples = range(rank * per, (rank + 1) * per)

    def __len__(self) -> int:
        return max(0, self.iters - self.start)

    def batch(self, iteration: int) -> tuple[np.ndarray, np.ndarray]:
        hrs, lrs = [], []
        for j in self.samples:
            index = image_index(self.seed, iteration * self.batch_size + j, len(self.store.pairs))
            hr, lr = self.store.get(index)
            if self.pipeline is not None:
                lr = None
            hr, lr = random_crop(hr, lr, self.store.scale, self.patch, sample_rng(self.seed, iteration, j),
                                 self.flip, self.transpose)
            if self.pipeline is not None:
                lr = degrade_patch(hr, self.pipeline, degrade_seed(self.seed, iteration, j), self.store.scale)
            hrs.append(hr)
            lrs.append(lr)
        return to_chw_float(lrs), to_chw_float(hrs)

    def __getitem__(self, k: int):
        return self.batch(self.start + k)


def train_loader(dataset: TrainBatches, workers: int) -> paddle.io.DataLoader:
    """Batches in iteration order; `workers` processes prepare the next ones while the model trains."""
    return paddle.io.DataLoader(dataset, batch_size=None, shuffle=False, num_workers=workers,
                                use_shared_memory=workers > 0, prefetch_factor=2, worker_init_fn=quiet_worker_signals)


def quiet_worker_signals(worker_id: int) -> None:
    """In a loader worker: ignore Ctrl-C, which the terminal sends to the whole process group (the
    training process decides how to stop: finish the step, save a state, see srdata.stopping), and
    end without a traceback on SIGTERM (sent to the group by systemd or Slurm, and by the training
    process itself when it exits)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_quietly)


def _exit_quietly(signum, frame) -> None:
    os._exit(0)


def check_val_sizes(val_pairs, crop: int, source: str) -> None:
    """UserError before training if a val image is too small to score (from the header sizes).

    SSIM drops a margin of SSIM_MARGIN px on each side after the crop_border: what is left must
    be at least one pixel, else the first validation would fail after all the training before it.
    """
    least = 2 * (crop + SSIM_MARGIN) + 1
    small = [p for p in val_pairs if min(p.hr_size) < least]
    if small:
        w, h = small[0].hr_size
        raise UserError(f"{source}: {len(small)} val image(s) too small to score with val.crop_border {crop} "
                        f"(first: {small[0].hr} is {w}x{h}, needs {least} px a side): remove them or lower "
                        "val.crop_border")


def data_order(recipe: Recipe, pairs, pipeline: Pipeline | None = None) -> dict:
    """What decides the training data of every iteration (compared on resume)."""
    return {"seed": recipe.seed, "batch_size": recipe.train.batch_size, "patch_size": recipe.train.patch_size,
            "images": len(pairs), "names": [p.name for p in pairs][:10000],
            "degrade": None if pipeline is None else {"name": pipeline.name, "sha256": pipeline.sha256},
            "scheme": "image = permutation(seed, epoch)[n mod N], crop/flip = default_rng([seed, iteration, sample]), "
                      "degradation = pipeline drawn from default_rng([seed, iteration, sample, 2**21])"}


def warn_if_data_changed(saved: dict, current: dict, say) -> None:
    keys = ("seed", "batch_size", "patch_size", "images", "names", "degrade")
    changed = [k for k in keys if saved.get(k) != current.get(k)]
    if changed:
        say(f"resume: {', '.join(changed)} changed since the state was written: training continues, but not "
            "exactly as an uninterrupted run would")
