"""Reading and writing images: any common format in, RGB (+ alpha) arrays out, atomic writes."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fst.errors import FstError
from fst.files import write_atomic

#: Formats whose files can carry an alpha channel.
ALPHA_FORMATS = {"PNG", "WEBP", "TIFF", "GIF"}
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}


def to_rgb_alpha(img: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Converts any Pillow mode to uint8 RGB plus an optional uint8 alpha plane."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        values = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
        grey = np.clip(np.round(values * (255.0 / top)), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2), None
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (img.mode == "P" and "transparency" in img.info)
    if has_alpha:
        rgba = np.asarray(img.convert("RGBA"))
        return np.ascontiguousarray(rgba[..., :3]), np.ascontiguousarray(rgba[..., 3])
    return np.asarray(img.convert("RGB")), None


def as_pixels(image: str | os.PathLike | Image.Image | np.ndarray, what: str = "image"
              ) -> tuple[np.ndarray, np.ndarray | None]:
    """(uint8 RGB, alpha or None) from a file path, a PIL image or an HxW, HxWx3 or HxWx4 array.

    Float arrays are taken as 0..255 values and clipped; other shapes are a one-line error.
    """
    if isinstance(image, (str, os.PathLike)):
        return load_image(image)
    if isinstance(image, Image.Image):
        return to_rgb_alpha(image)
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4) or min(array.shape[:2]) < 1:
        raise FstError(f"{what}: expected an HxWx3 image, got an array of shape {array.shape}")
    if array.dtype != np.uint8:
        array = np.clip(np.round(array), 0, 255).astype(np.uint8)
    alpha = np.ascontiguousarray(array[..., 3]) if array.shape[2] == 4 else None
    return np.ascontiguousarray(array[..., :3]), alpha


def load_image(data: bytes | Path | str, name: str | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Decodes an image file or bytes into (uint8 HxWx3 RGB, uint8 HxW alpha or None).

    EXIF orientation is applied.  Raises FstError with a one-line reason for
    missing, empty, truncated or non-image input.
    """
    name = name or str(data)
    if isinstance(data, (str, Path)):
        path = Path(data)
        if not path.exists():
            raise FstError(f"{name}: no such file")
        if path.is_dir():
            raise FstError(f"{name}: is a directory, expected an image file")
        if path.stat().st_size == 0:
            raise FstError(f"{name}: empty file (0 bytes)")
        source = path
    else:
        if len(data) == 0:
            raise FstError(f"{name}: empty input (0 bytes)")
        source = io.BytesIO(data)
    try:
        with Image.open(source) as img:
            img.load()
            img = ImageOps.exif_transpose(img)
            return to_rgb_alpha(img)
    except UnidentifiedImageError:
        raise FstError(f"{name}: not an image Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise FstError(f"{name}: corrupt or truncated image ({exc})") from None



def format_for(path: Path | str) -> str:
    """The Pillow format name for a destination path's extension."""
    ext = Path(path).suffix.lower()
    fmt = Image.registered_extensions().get(ext)
    if not ext or fmt is None or fmt not in Image.SAVE:
        raise FstError(f"{path}: no image writer for extension {ext or '(none)'!r}")
    return fmt


def check_quality(quality: int) -> None:
    """JPEG and WebP quality runs from 1 (smallest) to 100 (best)."""
    if not 1 <= quality <= 100:
        raise FstError(f"quality must be between 1 and 100, not {quality}")


def encode(rgb: np.ndarray, fmt: str, alpha: np.ndarray | None = None, quality: int = 95) -> bytes:
    """Encodes an RGB array (with alpha where the format carries it) into file bytes."""
    check_quality(quality)
    img = Image.fromarray(np.asarray(rgb, dtype=np.uint8), "RGB")
    if alpha is not None and fmt in ALPHA_FORMATS:
        img.putalpha(Image.fromarray(np.asarray(alpha, dtype=np.uint8), "L"))
    options = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def check_destination(dst: Path | str, src: Path | str | None = None, overwrite: bool = False) -> str:
    """Checks dst before any work: a known extension, and not the source file.

    Returns the Pillow format to write.
    """
    dst = Path(dst)
    if dst.is_dir():
        raise FstError(f"{dst}: is a directory, expected an output file name")
    fmt = format_for(dst)
    if src is not None and not overwrite and dst.exists() and Path(src).exists() and os.path.samefile(src, dst):
        raise FstError(f"{dst}: is the input file; pass --overwrite to replace it")
    existing = dst.parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        raise FstError(f"{dst}: cannot write ({existing} is not a writable folder)")
    return fmt


def save_image(
    rgb: np.ndarray,
    dst: Path | str,
    alpha: np.ndarray | None = None,
    quality: int = 95,
    src: Path | str | None = None,
    overwrite: bool = False,
) -> None:
    """Saves an image by dst's extension, atomically, refusing to replace src unless overwrite."""
    fmt = check_destination(dst, src, overwrite)
    write_atomic(encode(rgb, fmt, alpha, quality), dst)


def resize_long_side(pixels: np.ndarray, size: int) -> np.ndarray:
    """Resizes (Lanczos) an RGB or single-channel uint8 image so its longer side is `size`."""
    h, w = pixels.shape[:2]
    scale = size / max(h, w)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    if new == (w, h):
        return pixels
    return np.asarray(Image.fromarray(pixels).resize(new, Image.Resampling.LANCZOS))


def find_images(folder: Path | str) -> list[Path]:
    """Image files below a folder (recursive, sorted), chosen by extension."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
