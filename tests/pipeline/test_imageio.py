"""Image loading: formats, modes, EXIF orientation, and clear errors for bad files."""

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from pipeline.errors import InvalidImageError
from pipeline.imageio import load_image, save_image


def _rgb(h=20, w=30):
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("ext", ["png", "jpg", "bmp", "tiff"])
def test_formats_load_as_uint8_rgb(tmp_path, ext):
    p = tmp_path / f"a.{ext}"
    Image.fromarray(_rgb()).save(p)
    img = load_image(p)
    assert img.dtype == np.uint8 and img.shape == (20, 30, 3)


def test_gray_rgba_palette_cmyk(tmp_path):
    Image.fromarray(_rgb()[..., 0]).save(tmp_path / "g.png")
    assert load_image(tmp_path / "g.png").shape == (20, 30, 3)
    rgba = np.dstack([_rgb(), np.zeros((20, 30), np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    assert (load_image(tmp_path / "a.png") == 255).all()  # fully transparent -> white
    Image.fromarray(_rgb()).convert("P").save(tmp_path / "p.gif")
    assert load_image(tmp_path / "p.gif").shape == (20, 30, 3)
    Image.fromarray(_rgb()).convert("CMYK").save(tmp_path / "c.jpg")
    assert load_image(tmp_path / "c.jpg").shape == (20, 30, 3)


def test_16bit_is_rescaled(tmp_path):
    a = np.arange(20 * 30, dtype=np.uint16).reshape(20, 30) * 100
    Image.fromarray(a).save(tmp_path / "d.png")
    img = load_image(tmp_path / "d.png")
    assert img.dtype == np.uint8 and img.max() > 200 and img[0, 0, 0] == 0


def test_exif_orientation_applied(tmp_path):
    im = Image.fromarray(_rgb(20, 30))
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 CW on display
    im.save(tmp_path / "r.jpg", exif=exif)
    assert load_image(tmp_path / "r.jpg").shape == (30, 20, 3)


def test_save_is_atomic_and_roundtrips(tmp_path):
    save_image(tmp_path / "x.png", _rgb())
    assert (load_image(tmp_path / "x.png") == _rgb()).all()
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]


def _bomb_png(path, w=100_000, h=100_000):
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    "case,match",
    [
        ("missing", "no such file"),
        ("empty", "empty file"),
        ("text", "not a recognised image"),
        ("truncated", "truncated"),
        ("bomb", "over the limit"),
        ("folder", "is a folder"),
    ],
)
def test_bad_files_raise_clear_errors(tmp_path, case, match):
    p = tmp_path / "bad.jpg"
    if case == "empty":
        p.write_bytes(b"")
    elif case == "text":
        p.write_text("this is not an image\n")
    elif case == "truncated":
        Image.fromarray(_rgb(200, 200)).save(p, quality=95)
        p.write_bytes(p.read_bytes()[:600])
    elif case == "bomb":
        p = tmp_path / "bomb.png"
        _bomb_png(p)
    elif case == "folder":
        p.mkdir()
    with pytest.raises(InvalidImageError, match=match) as e:
        load_image(p)
    assert str(p) in str(e.value)


def test_to_gray_u8_keeps_uint8_and_clips_other_types():
    from pipeline.imageio import to_gray_u8

    g = np.array([[0, 128, 255]], np.uint8)
    assert to_gray_u8(g) is g
    f = to_gray_u8(np.array([[-5.0, 12.7, 300.0]]))
    assert f.dtype == np.uint8 and f.tolist() == [[0, 12, 255]]
    assert to_gray_u8(np.zeros((4, 5, 3), np.uint8)).shape == (4, 5)
