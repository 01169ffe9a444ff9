"""Image loading, normalised to the project's convention: ``uint8`` ``H x W x 3`` RGB.

Accepts anything Pillow decodes (JPEG, PNG, BMP, TIFF, GIF, WebP, PPM, ...): gray, palette,
RGBA / LA (composited on white), CMYK, 16-bit and 32-bit integer or float images (rescaled
to 8 bits), with the EXIF orientation applied and the first frame of animated files. Every
failure raises :class:`~pipeline.errors.InvalidImageError` with the path and the reason.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from pipeline.errors import InvalidImageError

#: Default upper bound on the decoded pixel count (guards against decompression bombs).
DEFAULT_MAX_PIXELS = 64_000_000

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".gif", ".webp", ".ppm", ".pgm", ".pbm", ".pnm", ".jp2"}
)


def is_image_path(path: str | os.PathLike) -> bool:
    """True when the file name has an image extension (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    a = arr.astype(np.float64)
    if np.issubdtype(arr.dtype, np.integer) and arr.dtype.itemsize == 2 and a.max(initial=0) > 255:
        a = a / 257.0  # 16-bit full range
    elif a.size and (a.max() > 255 or a.min() < 0 or np.issubdtype(arr.dtype, np.floating)):
        lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
        if np.issubdtype(arr.dtype, np.floating) and lo >= 0 and hi <= 1.0:
            a = a * 255.0
        elif hi > lo:
            a = (a - lo) / (hi - lo) * 255.0
    return np.clip(np.nan_to_num(a), 0, 255).round().astype(np.uint8)


def load_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read ``path`` as uint8 RGB ``(H, W, 3)``.

    Raises InvalidImageError when the file is missing, a folder, empty, not an image,
    truncated, or has more than ``max_pixels`` pixels.
    """
    from PIL import Image, ImageOps

    p = Path(path)
    if not p.exists():
        raise InvalidImageError(f"{p}: no such file")
    if p.is_dir():
        raise InvalidImageError(f"{p}: is a folder with no image files in it, not an image file")
    try:
        size = p.stat().st_size
    except OSError as e:
        raise InvalidImageError(f"{p}: cannot read ({e.strerror})") from e
    if size == 0:
        raise InvalidImageError(f"{p}: empty file (0 bytes)")
    old = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = None  # we check the declared size ourselves, before decoding
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(p) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise InvalidImageError(
                        f"{p}: image is {w}x{h} = {w * h / 1e6:.1f} Mpx, over the limit of "
                        f"{max_pixels / 1e6:.0f} Mpx (raise --max-pixels if it is genuine)"
                    )
                if w < 1 or h < 1:
                    raise InvalidImageError(f"{p}: image has no pixels ({w}x{h})")
                im.seek(0)
                im = ImageOps.exif_transpose(im)
                im.load()
                rgb = _pil_to_rgb(im)
    except InvalidImageError:
        raise
    except Image.UnidentifiedImageError as e:
        raise InvalidImageError(f"{p}: not a recognised image format") from e
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise InvalidImageError(f"{p}: cannot decode image ({msg}); the file may be truncated or corrupt") from e
    except MemoryError as e:
        raise InvalidImageError(f"{p}: image too large to decode in memory") from e
    finally:
        Image.MAX_IMAGE_PIXELS = old
    return rgb


def _pil_to_rgb(im) -> np.ndarray:
    from PIL import Image

    mode = im.mode
    if mode in ("RGB",):
        return np.asarray(im, dtype=np.uint8).copy()
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(bg, rgba).convert("RGB"), dtype=np.uint8).copy()
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = _to_uint8(np.asarray(im))
        return np.repeat(arr[..., None], 3, axis=2)
    if mode in ("L", "1"):
        arr = np.asarray(im.convert("L"), dtype=np.uint8)
        return np.repeat(arr[..., None], 3, axis=2)
    return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def to_gray(image: np.ndarray) -> np.ndarray:
    """uint8 gray (ITU-R 601 luma) of an RGB or gray image."""
    if image.ndim == 2:
        return image
    import cv2

    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def to_gray_u8(image: np.ndarray) -> np.ndarray:
    """:func:`to_gray`, clipped to [0, 255] and cast to uint8 when it is not uint8 already (the
    grey image the detectors and the detection networks read)."""
    gray = to_gray(image)
    return gray if gray.dtype == np.uint8 else np.clip(gray, 0, 255).astype(np.uint8)


def save_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write an RGB (or gray) uint8 image atomically; the format follows the extension."""
    from PIL import Image

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp{os.getpid()}")
    try:
        Image.fromarray(image).save(tmp, format=_format_for(p))
        os.replace(tmp, p)
    finally:
        if tmp.exists():
            tmp.unlink()


def _format_for(p: Path) -> str:
    ext = p.suffix.lower()
    return {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF"}.get(
        ext, "PNG"
    )
