"""Images as arrays: decoding any common format to RGB (+ alpha), encoding, resizing, colour helpers."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fst.errors import FstError
from fst.files import NAME_MAX



@dataclass(frozen=True)
class ImageFormat:
    """What fst writes in one image format: Pillow's name for it, its MIME type, its file suffixes (the
    first is the one written), whether it carries alpha and whether it takes a quality."""

    pil: str
    mime: str
    suffixes: tuple[str, ...]
    alpha: bool = False
    quality: bool = False


#: Every format fst writes, by the name a user gives (``--format``, ``format=``, the server's ``format``).
FORMATS = {
    "png": ImageFormat("PNG", "image/png", (".png",), alpha=True),
    "jpeg": ImageFormat("JPEG", "image/jpeg", (".jpg", ".jpeg"), quality=True),
    "webp": ImageFormat("WEBP", "image/webp", (".webp",), alpha=True, quality=True),
    "bmp": ImageFormat("BMP", "image/bmp", (".bmp",)),
    "tiff": ImageFormat("TIFF", "image/tiff", (".tif", ".tiff"), alpha=True),
    "gif": ImageFormat("GIF", "image/gif", (".gif",), alpha=True),
}
_BY_PIL = {f.pil: f for f in FORMATS.values()}
_BY_SUFFIX = {suffix: f for f in FORMATS.values() for suffix in f.suffixes}
#: What a folder of images is read for (every format fst writes but GIF, whose frames are video's).
IMAGE_EXTENSIONS = {suffix for name, f in FORMATS.items() if name != "gif" for suffix in f.suffixes}


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """Rounds and clips float pixel values to uint8 0..255."""
    return np.clip(np.round(pixels), 0, 255).astype(np.uint8)


def to_rgb_alpha(img: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Converts any Pillow mode to uint8 RGB plus an optional uint8 alpha plane."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        values = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
        grey = to_uint8(values * (255.0 / top))
        return np.repeat(grey[..., None], 3, axis=2), None
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (img.mode == "P" and "transparency" in img.info)
    if has_alpha:
        rgba = np.asarray(img.convert("RGBA"))
        return np.ascontiguousarray(rgba[..., :3]), np.ascontiguousarray(rgba[..., 3])
    return np.asarray(img.convert("RGB")), None


def as_pixels(image: str | os.PathLike | Image.Image | np.ndarray, what: str = "image"
              ) -> tuple[np.ndarray, np.ndarray | None]:
    """(uint8 RGB, alpha or None) from a file path, a PIL image or an HxW, HxWx3 or HxWx4 array.

    A PIL image's EXIF orientation is applied, as for files.  Integer arrays hold 0..255; float
    arrays hold 0..1 (as in Matplotlib and scikit-image).  Values outside those ranges, other shapes
    and other kinds of object are a one-line error, never a silently clipped image.
    """
    if isinstance(image, (str, os.PathLike)):
        return load_image(image)
    if isinstance(image, Image.Image):
        return to_rgb_alpha(ImageOps.exif_transpose(image))
    if not isinstance(image, np.ndarray):
        raise FstError(f"{what}: expected a file path, a PIL image or a numpy array, not {type(image).__name__}")
    array = image
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4) or min(array.shape[:2]) < 1:
        raise FstError(f"{what}: expected an HxWx3 image, got an array of shape {array.shape}")
    array = _as_uint8(array, what)
    alpha = np.ascontiguousarray(array[..., 3]) if array.shape[2] == 4 else None
    return np.ascontiguousarray(array[..., :3]), alpha


def _as_uint8(array: np.ndarray, what: str) -> np.ndarray:
    """uint8 pixels from an integer array in 0..255 or a float array in 0..1."""
    if array.dtype == np.uint8:
        return array
    if array.dtype.kind in "iu":
        low, high = int(array.min()), int(array.max())
        if low < 0 or high > 255:
            raise FstError(f"{what}: integer pixel values must be in 0..255, found {low}..{high}")
        return array.astype(np.uint8)
    if array.dtype.kind == "f":
        if not np.isfinite(array).all():
            raise FstError(f"{what}: float pixel values must be finite, found NaN or infinity")
        low, high = float(array.min()), float(array.max())
        if low < 0 or high > 1:
            raise FstError(f"{what}: float pixel values must be in 0..1, found {low:.10g}..{high:.10g}; "
                           "pass uint8 for 0..255")
        return to_uint8(array * 255.0)
    if array.dtype == bool:
        return array.astype(np.uint8) * 255
    raise FstError(f"{what}: unsupported pixel type {array.dtype}; use uint8 (0..255) or float (0..1)")


#: The largest image file fst reads: more than any camera writes (an uncompressed 8-bit RGB image of
#: this size has about 180 megapixels, Pillow's own limit), and a bound on what a stream such as
#: /dev/zero or an endless pipe can make it hold in memory.
MAX_FILE_BYTES = 512 * 2**20
_CHUNK = 2**20


def read_stream(stream: BinaryIO, name: str) -> bytes:
    """A stream's bytes up to its end; a one-line error past ``MAX_FILE_BYTES`` or for nothing at all."""
    chunks, size = [], 0
    while chunk := stream.read(_CHUNK):
        size += len(chunk)
        if size > MAX_FILE_BYTES:
            raise FstError(f"{name}: more than {MAX_FILE_BYTES // 2**20} MiB, larger than any image fst reads")
        chunks.append(chunk)
    if not size:
        raise FstError(f"{name}: empty input (0 bytes)")
    return b"".join(chunks)


def read_file(path: Path | str, name: str | None = None) -> bytes:
    """An image file's bytes; a one-line error for a missing, empty, too large or folder path.

    A device or a FIFO is read as a stream, up to ``MAX_FILE_BYTES``; a FIFO that no program writes
    to reads as empty instead of waiting for a writer forever.
    """
    name = name or str(path)
    path = Path(path)
    if not path.exists():
        raise FstError(f"{name}: no such file")
    if path.is_dir():
        raise FstError(f"{name}: is a directory, expected an image file")
    if path.is_file():
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise FstError(f"{name}: {size / 2**20:.0f} MiB, larger than any image fst reads "
                           f"({MAX_FILE_BYTES // 2**20} MiB)")
        if not size:
            raise FstError(f"{name}: empty file (0 bytes)")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # opening a FIFO must not wait for a writer
        os.set_blocking(fd, True)  # reading may: a FIFO whose writer is there sends its bytes
        with open(fd, "rb") as stream:
            return read_stream(stream, name)
    except OSError as exc:
        raise FstError(f"{name}: cannot read ({exc.strerror or exc})") from None


def load_image(data: bytes | Path | str, name: str | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Decodes an image file or bytes into (uint8 HxWx3 RGB, uint8 HxW alpha or None).

    EXIF orientation is applied.  Raises FstError with a one-line reason for
    missing, empty, truncated or non-image input.
    """
    if isinstance(data, (str, Path)):
        name = name or str(data)
        data = read_file(data, name)
    else:
        name = name or "<bytes>"
        if len(data) == 0:
            raise FstError(f"{name}: empty input (0 bytes)")
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            img = ImageOps.exif_transpose(img)
            return to_rgb_alpha(img)
    except UnidentifiedImageError:
        raise FstError(f"{name}: not an image Pillow can read") from None
    except Image.DecompressionBombError as exc:
        raise FstError(f"{name}: too large to open safely ({exc})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise FstError(f"{name}: corrupt or truncated image ({exc})") from None


#: What a decoded format is written back as, where Pillow cannot write it under its own name.
_WRITE_AS = {"MPO": "JPEG"}


def format_of(data: bytes) -> str:
    """The Pillow format to write an image back in: the encoded bytes' own format where fst writes
    it, else PNG."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = _WRITE_AS.get(img.format, img.format)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        return "PNG"
    return fmt if fmt in _BY_PIL else "PNG"


def format_for(path: Path | str) -> str:
    """The Pillow format name for a destination path's extension."""
    ext = Path(path).suffix.lower()
    if ext not in _BY_SUFFIX:
        raise FstError(f"{path}: no image writer for extension {ext or '(none)'!r} "
                       f"(fst writes {', '.join(sorted(_BY_SUFFIX))})")
    return _BY_SUFFIX[ext].pil


def format_named(name: str) -> str:
    """The Pillow format name for a format a user names: png, jpeg or jpg, .webp..."""
    key = name.lower().lstrip(".")
    found = FORMATS.get(key) or _BY_SUFFIX.get("." + key)
    if found is None:
        raise FstError(f"unknown image format {name!r}; choose one of {', '.join(FORMATS)}")
    return found.pil


def suffix_of(fmt: str) -> str:
    """The file suffix fst writes a Pillow format under."""
    return _BY_PIL[fmt].suffixes[0]


def mime_of(fmt: str) -> str:
    """The MIME type of a Pillow format fst writes."""
    return _BY_PIL[fmt].mime


def encode(rgb: np.ndarray, fmt: str, alpha: np.ndarray | None = None, quality: int = 95) -> bytes:
    """Encodes an RGB array (with alpha where the format carries it) into file bytes; ``quality`` is
    checked where it is given (``fst.options.OutputOptions``)."""
    img = Image.fromarray(np.asarray(rgb, dtype=np.uint8), "RGB")
    if alpha is not None and _BY_PIL[fmt].alpha:
        img.putalpha(Image.fromarray(np.asarray(alpha, dtype=np.uint8), "L"))
    options = {"quality": quality} if _BY_PIL[fmt].quality else {}
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def check_destination(dst: Path | str, src: Path | str | None = None, overwrite: bool = False) -> str:
    """Checks dst before any work: a known extension, and not the source file.

    Returns the Pillow format to write.
    """
    dst = Path(dst)
    check_writable(dst)
    if dst.is_dir():
        raise FstError(f"{dst}: is a directory, expected an output file name")
    fmt = format_for(dst)
    if src is not None and not overwrite and dst.exists() and Path(src).exists() and os.path.samefile(src, dst):
        raise FstError(f"{dst}: is the input file; to replace it, pass --overwrite (overwrite=True in Python)")
    return fmt


def check_writable(dst: Path | str) -> None:
    """Checks before any work that dst can be made: its name fits the file system and its nearest
    existing folder is writable (missing folders are created when the output is written)."""
    dst = Path(dst)
    size = len(dst.name.encode())
    if size > NAME_MAX:
        raise FstError(f"{dst.name[:24]}...: file name too long ({size} bytes; the limit is {NAME_MAX})")
    existing = dst.parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        raise FstError(f"{dst}: cannot write ({existing} is not a writable folder)")


def long_side_size(width: int, height: int, size: int) -> tuple[int, int]:
    """(width, height) scaled so that the longer side is `size`."""
    scale = size / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def resize_long_side(pixels: np.ndarray, size: int) -> np.ndarray:
    """Resizes (Lanczos) an RGB or single-channel uint8 image so its longer side is `size`."""
    h, w = pixels.shape[:2]
    new = long_side_size(w, h, size)
    if new == (w, h):
        return pixels
    return np.asarray(Image.fromarray(pixels).resize(new, Image.Resampling.LANCZOS))


def resize_short_side(pixels: np.ndarray, size: int) -> np.ndarray:
    """Resizes (Lanczos) a uint8 image so its shorter side is `size` (up or down)."""
    h, w = pixels.shape[:2]
    scale = size / min(h, w)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    if new == (w, h):
        return pixels
    return np.asarray(Image.fromarray(pixels).resize(new, Image.Resampling.LANCZOS))


def resize_float(pixels: np.ndarray, size: tuple[int, int],
                 method: Image.Resampling = Image.Resampling.BICUBIC) -> np.ndarray:
    """Resizes float pixels (H x W, or H x W x C a channel at a time) to (width, height) without
    rounding to uint8; float32 out."""
    if pixels.ndim == 3:
        return np.stack([resize_float(pixels[..., c], size, method) for c in range(pixels.shape[2])], axis=-1)
    return np.asarray(Image.fromarray(np.ascontiguousarray(pixels, np.float32), "F").resize(size, method))


def find_images(folder: Path | str) -> list[Path]:
    """Image files below a folder (recursive, sorted), chosen by extension."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def frame_files(folder: Path) -> list[Path]:
    """The image files directly in a folder, in name order: the frames of a video."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        raise FstError(f"{folder}: no image files to use as frames")
    return files


def scaled_size(width: int, height: int, max_size: int | None) -> tuple[int, int]:
    """(width, height) shrunk so the longer side is at most max_size (never enlarged)."""
    if not max_size or max(width, height) <= max_size:
        return width, height
    scale = max_size / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def load_painting(path: str | Path, size: int) -> np.ndarray:
    """A painting as RGB, resized so its longer side is `size`."""
    return resize_long_side(load_image(path)[0], size)


_TO_YCBCR = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], np.float32)


def luma(rgb: np.ndarray) -> np.ndarray:
    """The luminance (Y of YCbCr) of RGB pixels, float32."""
    return rgb.astype(np.float32) @ _TO_YCBCR[0]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two images in 0..255, in dB (infinite when they are equal)."""
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def preserve_colors(stylized: np.ndarray, original: np.ndarray) -> np.ndarray:
    """The stylized luminance with the original's chrominance (Gatys et al. 2017)."""
    ycc = original.astype(np.float32) @ _TO_YCBCR.T
    ycc[..., 0] = luma(stylized)
    return ycc @ np.linalg.inv(_TO_YCBCR).T
