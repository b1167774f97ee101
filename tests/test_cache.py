"""sr_train.cache: training images decoded once into a memory-mapped file, reused, updated, refused."""

from __future__ import annotations

import os
import pickle
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest

import sr_train.cache
from sr_train.cache import INDEX, decoded_images, default_cache_dir
from srdata.errors import UserError
from srdata.imageio import read_png_rgb
from helpers import write_png


def images(folder: Path, n: int = 3, seed: int = 0) -> tuple[list[Path], list[tuple[int, int]]]:
    """n PNGs of different sizes (files, (width, height) each)."""
    rng = np.random.default_rng(seed)
    files, sizes = [], []
    for i in range(n):
        rgb = rng.integers(0, 256, (20 + 3 * i, 30 + 5 * i, 3), dtype=np.uint8)
        write_png(folder / f"im{i}.png", rgb)
        files.append(folder / f"im{i}.png")
        sizes.append((rgb.shape[1], rgb.shape[0]))
    return files, sizes


def count_decodes(monkeypatch) -> list[str]:
    decoded = []

    def counting(path):
        decoded.append(Path(path).name)
        return read_png_rgb(path)

    monkeypatch.setattr(sr_train.cache, "read_png_rgb", counting)
    return decoded


def test_images_are_decoded_once_and_then_read_from_the_mapped_file(tmp_path, monkeypatch):
    files, sizes = images(tmp_path / "hr")
    decoded = count_decodes(monkeypatch)
    cached, written = decoded_images(files, sizes, tmp_path / "cache", workers=1)
    assert written and decoded == ["im0.png", "im1.png", "im2.png"]
    for i, path in enumerate(files):
        np.testing.assert_array_equal(cached[i], read_png_rgb(path))
        assert isinstance(cached[i].base, np.memmap) or isinstance(cached[i], np.memmap)
        assert not cached[i].flags.writeable
    assert cached.nbytes == sum(w * h * 3 for w, h in sizes) == cached.pixels.stat().st_size
    stamp = cached.pixels.stat().st_mtime_ns
    again, written = decoded_images(files, sizes, tmp_path / "cache", workers=1)
    assert not written and len(decoded) == 3 and again.pixels == cached.pixels
    assert again.pixels.stat().st_mtime_ns == stamp


def test_a_changed_image_is_decoded_again_and_the_others_copied(tmp_path, monkeypatch):
    files, sizes = images(tmp_path / "hr")
    first, _ = decoded_images(files, sizes, tmp_path / "cache", workers=1)
    rgb = np.full((sizes[1][1], sizes[1][0], 3), 7, np.uint8)
    write_png(files[1], rgb)
    os.utime(files[1], ns=(1, 1))
    decoded = count_decodes(monkeypatch)
    second, written = decoded_images(files, sizes, tmp_path / "cache", workers=1)
    assert written and decoded == ["im1.png"]
    np.testing.assert_array_equal(second[1], rgb)
    for i in (0, 2):
        np.testing.assert_array_equal(second[i], read_png_rgb(files[i]))
    assert second.pixels != first.pixels and not first.pixels.exists()  # the old pixel file is gone
    assert sorted(p.name for p in second.pixels.parent.iterdir()) == sorted([INDEX, second.pixels.name])


def test_same_named_images_in_subfolders_keep_their_own_pixels_when_copied(tmp_path):
    """Nested training folders: a/x.png and b/x.png of equal size and mtime are two cache entries."""
    rng = np.random.default_rng(3)
    files = [tmp_path / "hr" / sub / "x.png" for sub in ("a", "b")]
    for path in files:
        path.parent.mkdir(parents=True)
        write_png(path, rng.integers(0, 256, (16, 24, 3), dtype=np.uint8))
        os.utime(path, ns=(5, 5))
    assert files[0].stat().st_size == files[1].stat().st_size  # random pixels: stored, equal sizes
    decoded_images(files, [(24, 16)] * 2, tmp_path / "cache", workers=1)
    extra, extra_size = images(tmp_path / "hr" / "a", n=1)  # a new image: the file is written again, a/x and b/x copied
    again, written = decoded_images([*files, *extra], [(24, 16)] * 2 + extra_size, tmp_path / "cache", workers=1)
    assert written
    for i, path in enumerate(files):
        np.testing.assert_array_equal(again[i], read_png_rgb(path))


def test_parallel_decoding_writes_the_same_file(tmp_path, monkeypatch):
    monkeypatch.setattr(sr_train.cache, "_POOL_PIXELS", 0)  # a pool even for this little work
    files, sizes = images(tmp_path / "hr", n=7)
    one, _ = decoded_images(files, sizes, tmp_path / "one", workers=1)
    two, _ = decoded_images(files, sizes, tmp_path / "two", workers=2)
    assert one.pixels.read_bytes() == two.pixels.read_bytes()


def test_a_pixel_file_of_the_wrong_size_is_written_again(tmp_path):
    files, sizes = images(tmp_path / "hr")
    cached, _ = decoded_images(files, sizes, tmp_path / "cache", workers=1)
    whole = cached.pixels.read_bytes()
    cached.pixels.write_bytes(whole[:100])  # e.g. a disk that filled up under another writer
    again, written = decoded_images(files, sizes, tmp_path / "cache", workers=1)
    assert written and again.pixels.read_bytes() == whole


def test_pickled_images_carry_the_path_not_the_pixels(tmp_path):
    files, sizes = images(tmp_path / "hr")
    cached, _ = decoded_images(files, sizes, tmp_path / "cache", workers=1)
    data = pickle.dumps(cached)
    assert len(data) < cached.nbytes / 4
    np.testing.assert_array_equal(pickle.loads(data)[2], cached[2])


def test_a_header_that_lies_about_the_size_is_a_user_error(tmp_path):
    files, sizes = images(tmp_path / "hr", n=1)
    with pytest.raises(UserError, match="im0.png: decodes to 30x20 but its header says 31x20"):
        decoded_images(files, [(31, 20)], tmp_path / "cache", workers=1)
    assert not list((tmp_path / "cache").rglob("*.u8"))  # nothing half-written


def test_no_room_or_no_write_access_names_the_recipe_key(tmp_path, monkeypatch):
    files, sizes = images(tmp_path / "hr")
    Usage = namedtuple("Usage", "total used free")
    monkeypatch.setattr(sr_train.cache.shutil, "disk_usage", lambda path: Usage(10**9, 10**9, 1000))
    with pytest.raises(UserError, match=r"data.cache_dir .*cache: the decoded training images need 0.0 MiB and "
                                        r"only 0.0 MiB are free there: set data.cache_dir to a folder with room"):
        decoded_images(files, sizes, tmp_path / "cache", workers=1)
    monkeypatch.undo()
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match="data.cache_dir .*file.*cannot write"):
        decoded_images(files, sizes, tmp_path / "file", workers=1)


def test_cache_folder_follows_srkit_cache_then_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("SRKIT_CACHE", str(tmp_path / "a"))
    assert default_cache_dir() == tmp_path / "a"
    monkeypatch.delenv("SRKIT_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "x" / "srkit"
