"""srdata.imageio: every kind of bad or unusual source file, made by the test itself."""

from __future__ import annotations

import io
import struct
import time
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from srdata.errors import UserError
from helpers import png_chunk, png_chunks, png_filter_bytes
from srdata.imageio import (
    RejectedImage,
    apply_orientation,
    decode_source,
    encode_png,
    find_images,
    png_as_output,
    read_png_rgb,
    read_output_key,
)


def pattern(h: int = 48, w: int = 64, seed: int = 0) -> np.ndarray:
    """uint8 HxWx3 RGB with distinct rows, columns and channels (so flips and swaps show)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def save(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def pil_bytes(img: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def png_bytes(rgb: np.ndarray) -> bytes:
    return pil_bytes(Image.fromarray(rgb), "PNG")


def rejected_reason(path, max_pixels: int = 100_000_000) -> RejectedImage:
    with pytest.raises(RejectedImage) as info:
        decode_source(path, max_pixels)
    assert "\n" not in str(info.value)
    return info.value


# --- files that must be refused, with the right one-line reason -------------------------------


def test_empty_file(tmp_path):
    assert rejected_reason(save(tmp_path, "e.png", b"")).kind == "empty file"


def test_text_named_png(tmp_path):
    assert rejected_reason(save(tmp_path, "t.png", b"hello, I am not a picture\n" * 10)).kind == "not an image"


def test_random_bytes(tmp_path):
    data = np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    assert rejected_reason(save(tmp_path, "r.jpg", data)).kind == "not an image"


@pytest.mark.parametrize("keep", [0.9, 0.5, 0.1])
def test_truncated_png(tmp_path, keep):
    data = png_bytes(pattern(120, 100))
    reason = rejected_reason(save(tmp_path, "t.png", data[: int(len(data) * keep)]))
    assert reason.kind in ("truncated", "corrupt")


def test_truncated_jpeg(tmp_path):
    data = pil_bytes(Image.fromarray(pattern(200, 160)), "JPEG", quality=90)
    reason = rejected_reason(save(tmp_path, "t.jpg", data[: len(data) * 2 // 3]))
    assert reason.kind == "truncated"


def test_corrupt_png_data(tmp_path):
    data = bytearray(png_bytes(pattern(120, 100)))
    mid = len(data) // 2
    data[mid : mid + 64] = bytes(64)
    assert rejected_reason(save(tmp_path, "c.png", bytes(data))).kind == "corrupt"


def test_corrupt_png_palette_goes_through_pillow(tmp_path):
    img = Image.fromarray(pattern(80, 80)).convert("P", palette=Image.Palette.ADAPTIVE)
    data = bytearray(pil_bytes(img, "PNG"))
    data = data[: len(data) - 40]
    assert rejected_reason(save(tmp_path, "p.png", bytes(data))).kind in ("truncated", "corrupt")


def test_unsupported_format(tmp_path):
    data = pil_bytes(Image.fromarray(pattern()), "GIF")
    assert rejected_reason(save(tmp_path, "g.png", data)).kind == "unsupported format"


def _png_claiming(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    out = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    idat = b"IDAT" + zlib.compress(b"\x00" * 1000)
    out += struct.pack(">I", len(idat) - 4) + idat + struct.pack(">I", zlib.crc32(idat))
    return out


def test_header_claiming_huge_dimensions_is_refused_before_decoding(tmp_path):
    path = save(tmp_path, "bomb.png", _png_claiming(100_000, 100_000))
    started = time.perf_counter()
    reason = rejected_reason(path)
    assert reason.kind == "too many pixels"
    assert "100000x100000" in str(reason)
    assert time.perf_counter() - started < 5  # decoding 10^10 pixels would take far longer or OOM


def test_max_pixels_is_the_users_limit(tmp_path):
    path = save(tmp_path, "a.png", png_bytes(pattern(50, 40)))
    assert rejected_reason(path, max_pixels=1999).kind == "too many pixels"
    assert decode_source(path, max_pixels=2000).shape == (50, 40, 3)


# --- unusual but valid files decode to the right 8-bit RGB -------------------------------------


def test_rgb_png_exact(tmp_path):
    rgb = pattern()
    assert np.array_equal(decode_source(save(tmp_path, "a.png", png_bytes(rgb))), rgb)


def test_png_with_bytes_after_iend_is_fine(tmp_path):
    rgb = pattern()
    path = save(tmp_path, "a.png", png_bytes(rgb) + b"appended by some tool\x00\x01")
    assert np.array_equal(decode_source(path), rgb)


@pytest.mark.parametrize("fmt,ext", [("BMP", "bmp"), ("TIFF", "tif"), ("WEBP", "webp")])
def test_other_lossless_formats_exact(tmp_path, fmt, ext):
    rgb = pattern()
    kwargs = {"lossless": True} if fmt == "WEBP" else {}
    path = save(tmp_path, f"a.{ext}", pil_bytes(Image.fromarray(rgb), fmt, **kwargs))
    assert np.array_equal(decode_source(path), rgb)


def test_grey_png_becomes_rgb(tmp_path):
    grey = pattern()[:, :, 0]
    out = decode_source(save(tmp_path, "g.png", pil_bytes(Image.fromarray(grey), "PNG")))
    assert out.shape == grey.shape + (3,)
    assert all(np.array_equal(out[:, :, c], grey) for c in range(3))


def test_sixteen_bit_rgb_png_rounds(tmp_path):
    rng = np.random.default_rng(3)
    bgr16 = rng.integers(0, 65536, (30, 40, 3), dtype=np.uint16)
    bgr16[0, 0] = [128, 129, 385]  # 128/257 -> 0, 129/257 -> 1 (truncation would give 0), 385 -> 1
    ok, buf = cv2.imencode(".png", bgr16)
    out = decode_source(save(tmp_path, "16.png", buf.tobytes()))
    expected = np.rint(bgr16[:, :, ::-1] / 257.0).astype(np.uint8)
    assert np.array_equal(out, expected)
    assert list(out[0, 0]) == [1, 1, 0]


def test_sixteen_bit_grey_png_rounds(tmp_path):
    grey16 = np.random.default_rng(4).integers(0, 65536, (30, 40), dtype=np.uint16)
    ok, buf = cv2.imencode(".png", grey16)
    out = decode_source(save(tmp_path, "16g.png", buf.tobytes()))
    assert np.array_equal(out[:, :, 1], np.rint(grey16 / 257.0).astype(np.uint8))


def test_sixteen_bit_tiff_rounds(tmp_path):
    bgr16 = np.random.default_rng(5).integers(0, 65536, (30, 40, 3), dtype=np.uint16)
    ok, buf = cv2.imencode(".tiff", bgr16)
    out = decode_source(save(tmp_path, "16.tif", buf.tobytes()))
    assert np.array_equal(out, np.rint(bgr16[:, :, ::-1] / 257.0).astype(np.uint8))


def test_rgba_composited_on_white(tmp_path):
    rgba = np.zeros((10, 12, 4), np.uint8)
    rgba[..., :3] = [200, 100, 0]
    rgba[:, :4, 3] = 255  # opaque
    rgba[:, 4:8, 3] = 0  # transparent -> white
    rgba[:, 8:, 3] = 128  # half
    out = decode_source(save(tmp_path, "a.png", pil_bytes(Image.fromarray(rgba, "RGBA"), "PNG")))
    assert list(out[0, 0]) == [200, 100, 0]
    assert list(out[0, 5]) == [255, 255, 255]
    a = 128 / 255
    assert list(out[0, 9]) == [round(v * a + 255 * (1 - a)) for v in (200, 100, 0)]


def test_grey_alpha_composited_on_white(tmp_path):
    la = np.zeros((10, 12, 2), np.uint8)
    la[..., 0] = 40
    la[:, 6:, 1] = 255
    out = decode_source(save(tmp_path, "la.png", pil_bytes(Image.fromarray(la, "LA"), "PNG")))
    assert list(out[0, 0]) == [255, 255, 255] and list(out[0, 8]) == [40, 40, 40]


def test_palette_with_transparency(tmp_path):
    img = Image.new("P", (8, 8), 0)
    img.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    img.paste(1, (0, 0, 4, 8))
    img.info["transparency"] = 1  # colour 1 (blue) fully transparent -> white
    out = decode_source(save(tmp_path, "p.png", pil_bytes(img, "PNG", transparency=1)))
    assert list(out[0, 0]) == [255, 255, 255] and list(out[0, 7]) == [255, 0, 0]


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    img = Image.fromarray(pattern()).convert("CMYK")
    out = decode_source(save(tmp_path, "c.jpg", pil_bytes(img, "JPEG", quality=95)))
    assert out.shape == (48, 64, 3) and out.dtype == np.uint8


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_rotated_jpeg(tmp_path, orientation):
    rgb = np.zeros((40, 64, 3), np.uint8)
    rgb[:10, :16] = [255, 0, 0]  # a red block in the stored top-left corner
    img = Image.fromarray(rgb)
    exif = img.getexif()
    exif[0x0112] = orientation
    path = save(tmp_path, "r.jpg", pil_bytes(img, "JPEG", quality=95, exif=exif.tobytes()))
    out = decode_source(path)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    assert out.shape == expected.shape
    assert out.shape[:2] == ((64, 40) if orientation >= 5 else (40, 64))
    assert np.array_equal(out, expected)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_numpy_orientation_matches_pillow(orientation):
    rgb = pattern(6, 9)
    img = Image.fromarray(rgb)
    exif = img.getexif()
    exif[0x0112] = orientation
    img.info["exif"] = exif.tobytes()
    expected = np.asarray(ImageOps.exif_transpose(img))
    assert np.array_equal(apply_orientation(rgb, orientation), expected)


def test_png_with_exif_orientation(tmp_path):
    rgb = pattern(20, 30)
    img = Image.fromarray(rgb)
    exif = img.getexif()
    exif[0x0112] = 6
    out = decode_source(save(tmp_path, "e.png", pil_bytes(img, "PNG", exif=exif.tobytes())))
    assert np.array_equal(out, np.rot90(rgb, -1))


# --- dataset PNGs ------------------------------------------------------------------------------


def test_encode_png_carries_recipe_and_stays_a_normal_png(tmp_path):
    bgr = pattern()
    path = save(tmp_path, "o.png", encode_png(bgr, 1, "abc123"))
    assert read_output_key(path) == "abc123"
    assert np.array_equal(cv2.imread(str(path), cv2.IMREAD_COLOR), bgr)
    with Image.open(path) as img:
        img.load()  # Pillow checks the chunk CRCs
        assert img.text["srkit-recipe"] == "abc123"
    assert np.array_equal(read_png_rgb(path), bgr[:, :, ::-1])


def test_read_recipe_of_foreign_or_missing_files(tmp_path):
    assert read_output_key(tmp_path / "missing.png") is None
    assert read_output_key(save(tmp_path, "plain.png", png_bytes(pattern()))) is None
    assert read_output_key(save(tmp_path, "text.png", b"no")) is None


def test_read_png_rgb_errors_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="missing.png"):
        read_png_rgb(tmp_path / "missing.png")
    with pytest.raises(UserError, match="bad.png"):
        read_png_rgb(save(tmp_path, "bad.png", b"not a png"))


# --- finding images ----------------------------------------------------------------------------


def test_find_images_recursive_sorted_skips_hidden_temp_other_and_excluded(tmp_path):
    for rel in ("b.PNG", "a/x.jpg", "a.png", "a/sub/y.tiff", "notes.txt", ".hidden.png",
                ".c.png.abc.tmp", ".cache/z.png", "out/o.png", "a/dir.png/inner.webp"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    found = find_images(tmp_path, exclude=tmp_path / "out")
    rels = [p.relative_to(tmp_path).as_posix() for p in found]
    # "a" sorts before "a.png": path-component order, what sorted(Paths) gives.
    assert rels == ["a/dir.png/inner.webp", "a/sub/y.tiff", "a/x.jpg", "a.png", "b.PNG"]
    assert found == sorted(found)
    assert "out/o.png" in [p.relative_to(tmp_path).as_posix() for p in find_images(tmp_path)]
    with pytest.raises(UserError, match="missing"):
        find_images(tmp_path / "missing")


def test_encode_png_fast_filters_every_row_up_and_keeps_pixels(samples_dir):
    bgr = cv2.imread(str(sorted(samples_dir.glob("*.png"))[0]))
    fast = encode_png(bgr, 1, None, fast=True)
    assert np.array_equal(cv2.imdecode(np.frombuffer(fast, np.uint8), cv2.IMREAD_COLOR), bgr)
    assert png_filter_bytes(fast, bgr.shape[1]) == {2}  # 2 = Up
    assert len(png_filter_bytes(encode_png(bgr, 1, None), bgr.shape[1])) > 1  # libpng's own choice


def _with_chunks(png: bytes, *chunks: bytes) -> bytes:
    """The PNG with extra chunks right after IHDR."""
    return png[:33] + b"".join(chunks) + png[33:]


def test_png_as_output_reuses_the_compressed_pixels_of_rgb8_pngs(tmp_path):
    rgb = pattern(37, 53)
    plain = png_bytes(rgb)
    noted = _with_chunks(plain, png_chunk(b"gAMA", struct.pack(">I", 45455)), png_chunk(b"sRGB", b"\x00"),
                         png_chunk(b"tEXt", b"Software\x00paint"), png_chunk(b"pHYs", struct.pack(">IIB", 1, 1, 1)))
    out = png_as_output(noted, "k1")
    assert out == png_as_output(plain, "k1")  # the notes are dropped, as a re-encode drops them
    kinds = [kind for kind, _ in png_chunks(out)]
    assert kinds == [b"IHDR", b"tEXt"] + [b"IDAT"] * (len(kinds) - 3) + [b"IEND"]
    assert [body for kind, body in png_chunks(out) if kind == b"IDAT"] == \
        [body for kind, body in png_chunks(plain) if kind == b"IDAT"]
    path = save(tmp_path, "o.png", out)
    assert read_output_key(path) == "k1"
    assert np.array_equal(read_png_rgb(path), rgb) and np.array_equal(decode_source(path), rgb)
    with Image.open(path) as img:
        img.load()  # Pillow checks the chunk CRCs


def test_png_as_output_refuses_what_would_not_decode_to_the_same_rgb(tmp_path):
    rgb = pattern(20, 24)
    plain = png_bytes(rgb)
    exif = Image.Exif()
    exif[0x0112] = 6
    interlaced = bytearray(plain)
    interlaced[28] = 1  # IHDR interlace byte (the CRC is not even checked before refusing)
    refused = {
        "tRNS (alpha)": _with_chunks(plain, png_chunk(b"tRNS", struct.pack(">3H", *rgb[0, 0]))),
        "RGBA": pil_bytes(Image.fromarray(np.dstack([rgb, rgb[:, :, :1]])), "PNG"),
        "grey": pil_bytes(Image.fromarray(rgb[:, :, 0]), "PNG"),
        "palette": pil_bytes(Image.fromarray(rgb).convert("P"), "PNG"),
        "16-bit": cv2.imencode(".png", rgb.astype(np.uint16) * 257)[1].tobytes(),
        "interlaced": bytes(interlaced),
        "eXIf": pil_bytes(Image.fromarray(rgb), "PNG", exif=exif.tobytes()),
        "exif as text": _with_chunks(plain, png_chunk(b"tEXt", b"Raw profile type exif\x00 exif 0")),
        "unknown chunk": _with_chunks(plain, png_chunk(b"sPLT", b"x\x00\x08")),
        "no IEND": plain[:-12],
        "chunk past the end": plain[:-20],
        "JPEG": pil_bytes(Image.fromarray(rgb), "JPEG"),
    }
    for what, data in refused.items():
        assert png_as_output(data, "k") is None, what
