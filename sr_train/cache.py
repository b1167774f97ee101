"""srkit's cache folder, and the decoded-image cache the training loader cuts its patches from.

The cache folder is `$SRKIT_CACHE`, else `$XDG_CACHE_HOME/srkit`, else `~/.cache/srkit` (the ONNX
exports of `sr-train predict` live there too).

Decoding a whole PNG for every training patch costs a core 20-40 ms per 2K frame, so `sr-train fit`
decodes every training image once into one file of raw uint8 RGB pixels (`decoded/FOLDER/`) and
memory-maps it: a patch is then a slice (`bench/loader.py` measures both). The file is not held in
any process's memory: the OS page cache keeps what fits and is shared by every data-parallel process
and loader worker; what does not fit is read from disk, only the pages a patch touches (and the
kernel's read-ahead around them).

One cache per image folder (FOLDER = a hash of its absolute path): `index.json` lists every image
(name, size and mtime of its file, pixel shape, offset) and names the pixel file, whose name carries a
digest of that list. It is reused while the list matches the files; otherwise it is written again,
copying the images that did not change from the old file and decoding the rest in parallel. Both
files are written under temporary names and renamed, so a killed write leaves nothing that looks
finished.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from srdata.atomic import atomic_open, write_json
from srdata.cliutil import progress_bar
from srdata.errors import UserError
from srdata.executor import LocalExecutor
from srdata.imageio import read_png_rgb
from srdata.jsonio import dumps

FORMAT = "srkit-decoded-images/1"  # change when the pixel file's layout changes
INDEX = "index.json"
DECODED = "decoded"  # the cache folder's subfolder of decoded-image caches
CACHE_KEY = "data.cache_dir"  # the recipe key that moves it (named in errors)
_CHUNK = 4  # images per worker decoded between two writes (bounds the memory of a write)
_POOL_PIXELS = 50_000_000  # decode in this process below this many pixels (PNG decodes at ~50-100 MP/s)


def default_cache_dir() -> Path:
    if os.environ.get("SRKIT_CACHE"):
        return Path(os.environ["SRKIT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "srkit"


@dataclass(frozen=True)
class CachedImage:
    """One image of the cache: its file as it was when decoded, and where its pixels are."""

    name: str  # its path relative to the folder holding all the cached files (the file name when flat)
    bytes: int
    mtime_ns: int
    shape: tuple[int, int, int]  # height, width, 3
    offset: int  # of its first byte in the pixel file

    @property
    def size(self) -> int:
        return self.shape[0] * self.shape[1] * self.shape[2]


class DecodedImages:
    """Read-only uint8 HWC RGB views of the images in a pixel file (memory-mapped).

    Pickles as its path and index, so a loader worker started by any method maps the file itself
    instead of receiving a copy of the pixels."""

    def __init__(self, pixels: Path, images: list[CachedImage]):
        self.pixels, self.images = Path(pixels), images
        self._flat = np.memmap(self.pixels, dtype=np.uint8, mode="r") if self.nbytes else np.zeros(0, np.uint8)

    @property
    def nbytes(self) -> int:
        return sum(image.size for image in self.images)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> np.ndarray:
        image = self.images[index]
        return self._flat[image.offset:image.offset + image.size].reshape(image.shape)

    def __reduce__(self):
        return DecodedImages, (self.pixels, self.images)


def decoded_images(files: list[Path], sizes: list[tuple[int, int]], cache_dir: Path, workers: int,
                   progress: bool = False) -> tuple[DecodedImages, bool]:
    """(the decoded pixels of `files`, whether they were written now). `sizes` are the files' header
    sizes (width, height): the layout is planned before anything is decoded.

    Reused when the cache's index lists exactly these files with the same size and mtime; else
    written (images unchanged since the previous cache are copied from it, the others decoded by
    `workers` processes). A UserError names `data.cache_dir` when the disk lacks the room or the
    folder cannot be written.
    """
    resolved = [f.parent.resolve() / f.name for f in files]
    parents = sorted({str(f.parent) for f in resolved})
    folder = Path(cache_dir) / DECODED / hashlib.sha256("\n".join(parents).encode()).hexdigest()[:16]
    common = os.path.commonpath(parents) if parents else ""
    images, offset = [], 0
    for path, real, (width, height) in zip(files, resolved, sizes):
        stat = _stat(path)
        images.append(CachedImage(os.path.relpath(real, common), stat.st_size, stat.st_mtime_ns, (height, width, 3),
                                  offset))
        offset += height * width * 3
    records = [asdict(image) for image in images]
    digest = hashlib.sha256(dumps([FORMAT, records]).encode()).hexdigest()[:24]
    pixels = folder / f"pixels-{digest}.u8"
    old = _read_index(folder)
    if old.get("pixels") == pixels.name and pixels.is_file() and pixels.stat().st_size == offset:
        return DecodedImages(pixels, images), False
    _write_pixels(files, images, pixels, old, offset, workers, progress, Path(cache_dir))
    write_json(folder / INDEX, {"format": FORMAT, "folders": parents, "pixels": pixels.name, "images": records})
    for stale in folder.glob("pixels-*.u8"):
        if stale != pixels:
            stale.unlink(missing_ok=True)  # a run still reading it keeps its mapping until it ends
    return DecodedImages(pixels, images), True


def _stat(path: Path) -> os.stat_result:
    try:
        return path.stat()
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _read_index(folder: Path) -> dict:
    """The previous index of this folder's cache, or {} (missing, damaged or another format)."""
    try:
        index = json.loads((folder / INDEX).read_text())
        return index if isinstance(index, dict) and index.get("format") == FORMAT else {}
    except (OSError, ValueError):
        return {}


def _write_pixels(files, images: list[CachedImage], pixels: Path, old: dict, total: int, workers: int,
                  progress: bool, cache_dir: Path) -> None:
    """Write the pixel file: unchanged images copied from the old one, the others decoded."""
    try:
        pixels.parent.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(pixels.parent).free
    except OSError as exc:
        raise UserError(f"{CACHE_KEY} {cache_dir}: cannot write the decoded-image cache there "
                        f"({exc.strerror or exc}): set {CACHE_KEY} to a writable folder") from None
    if free < total:
        raise UserError(f"{CACHE_KEY} {cache_dir}: the decoded training images need {_size(total)} and only "
                        f"{_size(free)} are free there: set {CACHE_KEY} to a folder with room")
    previous = _reusable(old, pixels.parent)
    try:
        with atomic_open(pixels, "wb") as out:
            out.truncate(total)
            copied = _copy_unchanged(images, previous, out)
            todo = [(str(path), image) for i, (path, image) in enumerate(zip(files, images)) if i not in copied]
            # a pool takes ~0.7 s to start: worth it only for more than about a second of decoding
            pixels_to_decode = sum(image.size for _, image in todo) // 3
            executor = LocalExecutor(workers if pixels_to_decode > _POOL_PIXELS else 1)
            with progress_bar("images", progress and bool(todo)) as bar:
                task = bar.add_task("decoding training images (once)", total=len(todo))
                step = _CHUNK * max(1, workers)  # decoded images held at once: a few per worker
                for start in range(0, len(todo), step):
                    chunk = todo[start:start + step]
                    decoded = executor.map(_decode, chunk, on_done=lambda n: bar.advance(task, n),
                                           name_of=lambda t: t[0])
                    for (_, image), rgb in zip(chunk, decoded):
                        out.seek(image.offset)
                        out.write(rgb.data)
    except OSError as exc:
        raise UserError(f"{CACHE_KEY} {cache_dir}: writing the decoded-image cache failed "
                        f"({exc.strerror or exc}): set {CACHE_KEY} to a writable folder with room") from None


def _size(count: int) -> str:
    return f"{count / 2**30:.1f} GiB" if count >= 2**30 else f"{count / 2**20:.1f} MiB"


def _reusable(old: dict, folder: Path) -> tuple[Path, dict[tuple, CachedImage]] | None:
    """The previous pixel file and its images by (name, bytes, mtime_ns, shape), if it is whole."""
    try:
        path = folder / old["pixels"]
        listed = [CachedImage(i["name"], i["bytes"], i["mtime_ns"], tuple(i["shape"]), i["offset"])
                  for i in old["images"]]
        if not path.is_file() or path.stat().st_size != sum(image.size for image in listed):
            return None
    except (KeyError, TypeError, OSError):
        return None
    return path, {(i.name, i.bytes, i.mtime_ns, i.shape): i for i in listed}


def _copy_unchanged(images: list[CachedImage], previous, out) -> set[int]:
    """Copy the pixels of images whose file did not change from the previous pixel file into `out`;
    returns their positions."""
    if previous is None:
        return set()
    path, by_key = previous
    copied = set()
    with open(path, "rb") as source:
        for i, image in enumerate(images):
            before = by_key.get((image.name, image.bytes, image.mtime_ns, image.shape))
            if before is None:
                continue
            source.seek(before.offset)
            out.seek(image.offset)
            out.write(source.read(image.size))
            copied.add(i)
    return copied


def _decode(task: tuple[str, CachedImage]) -> np.ndarray:
    """One image's pixels, checked against the shape its header promised."""
    path, image = task
    rgb = read_png_rgb(path)
    if rgb.shape != tuple(image.shape):
        raise UserError(f"{path}: decodes to {rgb.shape[1]}x{rgb.shape[0]} but its header says "
                        f"{image.shape[1]}x{image.shape[0]}: rebuild the dataset with `srdata build`")
    return np.ascontiguousarray(rgb)
