"""Stylizing images with a trained style: padding, tiling, blending, colour options."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from fst import images, styles
from fst.errors import FstError
from fst.files import write_atomic

#: Images with more pixels than TILE_SIZE**2 are stylized in overlapping tiles.
TILE_SIZE = 1024
TILE_OVERLAP = 128
_MIN_SIDE = 16


def _pad_amounts(n: int) -> tuple[int, int]:
    """Padding before and after a side of length n to reach a multiple of 4 (at least 16)."""
    total = max(_MIN_SIDE, -(-n // 4) * 4) - n
    return total // 2, total - total // 2


def _pad(rgb: np.ndarray) -> tuple[np.ndarray, tuple[slice, slice]]:
    """Mirror-pads an image symmetrically to a multiple of 4 (at least 16) on each side.

    Returns the padded image and the slices that crop it back, so that
    output pixels stay aligned with input pixels.
    """
    (top, bottom), (left, right) = _pad_amounts(rgb.shape[0]), _pad_amounts(rgb.shape[1])
    mode = "reflect" if min(rgb.shape[:2]) > 1 else "edge"
    padded = np.pad(rgb, ((top, bottom), (left, right), (0, 0)), mode=mode)
    return padded, (slice(top, top + rgb.shape[0]), slice(left, left + rgb.shape[1]))


def _forward(model, rgb: np.ndarray) -> np.ndarray:
    """Runs the network on one HxWx3 image of any size; returns float32 of the same size."""
    padded, crop = _pad(rgb)
    return np.asarray(model.predict_on_batch(padded[None].astype(np.float32)))[0][crop]


def _windows(n: int, tile: int, overlap: int) -> list[slice]:
    """Overlapping windows covering 0..n (a multiple of 4), of length `tile` (a multiple
    of 4) and starting on multiples of 4, so every tile shares one pixel grid."""
    if n <= tile:
        return [slice(0, n)]
    step = (tile - overlap) // 4 * 4
    return [slice(start, start + tile) for start in range(0, n - tile, step)] + [slice(n - tile, n)]


def _ramp(n: int, overlap: int) -> np.ndarray:
    """Blending weight along one side of a tile: rises over `overlap` pixels at each end."""
    i = np.arange(n, dtype=np.float32)
    return np.minimum(1.0, np.minimum(i + 1, n - i) / (overlap + 1))


def _forward_tiled(model, rgb: np.ndarray, tile: int, overlap: int) -> np.ndarray:
    """Stylizes in overlapping tiles blended with linear ramps; memory grows with the tile, not the image."""
    tile = max(_MIN_SIDE, tile // 4 * 4)
    rgb, crop = _pad(rgb)
    h, w, _ = rgb.shape
    out = np.zeros((h, w, 3), np.float32)
    weight = np.zeros((h, w, 1), np.float32)
    for rows in _windows(h, tile, overlap):
        for cols in _windows(w, tile, overlap):
            patch = rgb[rows, cols]
            wgt = (_ramp(patch.shape[0], overlap)[:, None] * _ramp(patch.shape[1], overlap)[None, :])[..., None]
            out[rows, cols] += _forward(model, patch) * wgt
            weight[rows, cols] += wgt
    out /= weight
    return out[crop]


def _shrink_to(rgb: np.ndarray, alpha: np.ndarray | None, max_size: int):
    """Shrinks RGB and alpha so the longer side is at most max_size (never enlarges)."""
    if max(rgb.shape[:2]) <= max_size:
        return rgb, alpha
    return images.resize_long_side(rgb, max_size), None if alpha is None else images.resize_long_side(alpha, max_size)


_TO_YCBCR = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], np.float32)


def preserve_colors(stylized: np.ndarray, original: np.ndarray) -> np.ndarray:
    """The stylized luminance with the original's chrominance (Gatys et al. 2017)."""
    luma = stylized.astype(np.float32) @ _TO_YCBCR[0]
    ycc = original.astype(np.float32) @ _TO_YCBCR.T
    ycc[..., 0] = luma
    return ycc @ np.linalg.inv(_TO_YCBCR).T


def _luma(rgb: np.ndarray) -> Image.Image:
    return Image.fromarray(rgb.astype(np.float32) @ _TO_YCBCR[0], "F")


#: The smallest tile: below it the overlap that hides the seams has no room.
MIN_TILE_SIZE = 64


def check_options(*, max_size: int | None = None, tile_size: int = TILE_SIZE, strength: float = 1.0,
                  stroke_scale: float = 1.0) -> None:
    """Refuses out-of-range stylize options with one line, before any work is done."""
    if max_size is not None and max_size < 1:
        raise FstError(f"max size must be at least 1 pixel, not {max_size}")
    if tile_size < MIN_TILE_SIZE:
        raise FstError(f"tile size must be at least {MIN_TILE_SIZE} pixels, not {tile_size}")
    if not 0.0 <= strength <= 1.0:
        raise FstError(f"strength must be between 0 and 1, not {strength}")
    if not 1.0 <= stroke_scale <= 64.0:
        raise FstError(f"stroke scale must be between 1 and 64, not {stroke_scale}")


def _at_stroke_scale(forward, rgb: np.ndarray, scale: float) -> np.ndarray:
    """Stylizes a copy `scale` times smaller (strokes `scale` times larger relative to the image), brings
    it back to full size and adds the photo's own luminance detail that the small copy could not hold:
    the full-size luminance less its down-and-up-sampled self, so edges stay where the photo has them."""
    h, w = rgb.shape[:2]
    small = (max(1, round(w / scale)), max(1, round(h / scale)))
    stylized = forward(np.asarray(Image.fromarray(rgb).resize(small, Image.Resampling.LANCZOS)))
    channels = [Image.fromarray(np.ascontiguousarray(stylized[..., c]), "F").resize((w, h), Image.Resampling.BICUBIC)
                for c in range(3)]
    luma = _luma(rgb)
    blurred = luma.resize(small, Image.Resampling.LANCZOS).resize((w, h), Image.Resampling.BICUBIC)
    detail = np.asarray(luma) - np.asarray(blurred)
    return np.stack([np.asarray(c) for c in channels], axis=-1) + detail[..., None]


def stylize_array(
    rgb: np.ndarray,
    style: str | os.PathLike | styles.Style,
    *,
    strength: float = 1.0,
    preserve_color: bool = False,
    tile_size: int = TILE_SIZE,
    stroke_scale: float = 1.0,
) -> np.ndarray:
    """Stylizes a uint8 HxWx3 RGB array and returns uint8 RGB of the same size.

    A network paints strokes of a fixed size in pixels, so on a large photo
    they shrink to a fine texture; ``stroke_scale`` K > 1 paints them K times
    larger (the network sees the photo at 1/K of its size, and the photo's own
    fine detail is added back at full size).
    """
    check_options(tile_size=tile_size, strength=strength, stroke_scale=stroke_scale)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < 1:
        raise FstError(f"expected an HxWx3 RGB image, got an array of shape {rgb.shape}")
    model = styles.load_model(style)

    def forward(pixels: np.ndarray) -> np.ndarray:
        if pixels.shape[0] * pixels.shape[1] > tile_size * tile_size:
            return _forward_tiled(model, pixels, tile_size, min(TILE_OVERLAP, tile_size // 4))
        return _forward(model, pixels)

    out = _at_stroke_scale(forward, rgb, stroke_scale) if stroke_scale > 1 else forward(rgb)
    if preserve_color:
        out = preserve_colors(out, rgb)
    if strength < 1.0:
        out = strength * out + (1.0 - strength) * rgb
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def stylize_frames(
    frames: np.ndarray,
    style: str | os.PathLike | styles.Style,
    *,
    strength: float = 1.0,
    preserve_color: bool = False,
    stroke_scale: float = 1.0,
) -> np.ndarray:
    """Stylizes a batch of same-size uint8 frames (N, H, W, 3) in one forward pass (video).

    Frames over the tile size, or with a ``stroke_scale``, go one by one through ``stylize_array``.
    """
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise FstError(f"expected frames of shape (N, H, W, 3), got {frames.shape}")
    check_options(strength=strength, stroke_scale=stroke_scale)
    if frames.shape[1] * frames.shape[2] > TILE_SIZE * TILE_SIZE or stroke_scale != 1:
        return np.stack([stylize_array(f, style, strength=strength, preserve_color=preserve_color,
                                       stroke_scale=stroke_scale) for f in frames])
    model = styles.load_model(style)
    crop = _pad(frames[0])[1]
    padded = np.stack([_pad(f)[0] for f in frames]).astype(np.float32)
    out = np.asarray(model.predict_on_batch(padded))[:, crop[0], crop[1]]
    if preserve_color:
        out = preserve_colors(out, frames)
    if strength < 1.0:
        out = strength * out + (1.0 - strength) * frames
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def stylize_pixels(rgb: np.ndarray, alpha: np.ndarray | None, style, *, max_size: int | None = None, **options):
    """Stylizes RGB pixels (resized first if ``max_size``); alpha is resized alike and passed through."""
    check_options(max_size=max_size)
    if max_size:
        rgb, alpha = _shrink_to(rgb, alpha, max_size)
    return stylize_array(rgb, style, **options), alpha


def stylize(image: np.ndarray | Image.Image | str | os.PathLike, style: str | os.PathLike | styles.Style, **options):
    """Stylizes an image (an RGB/RGBA array, a PIL image or a path) and returns an array, or a PIL image for one.

    Options: ``max_size`` (resize the longer side first), ``strength`` (0..1
    blend with the original), ``preserve_color`` (keep the photo's colours),
    ``stroke_scale`` (strokes K times larger), ``tile_size``.  An alpha
    channel is carried through unchanged.
    """
    is_pil = isinstance(image, Image.Image)
    rgb, alpha = images.as_pixels(image)
    out, alpha = stylize_pixels(rgb, alpha, style, **options)
    if alpha is not None:
        out = np.dstack([out, alpha])
    return Image.fromarray(out) if is_pil else out


def run(
    style: str | os.PathLike | styles.Style,
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    overwrite: bool = False,
    quality: int = 95,
    **options,
) -> Path:
    """Stylizes the image file src into dst (format from dst's extension), atomically.

    Refuses to replace src unless ``overwrite``.  Options as in ``stylize``.
    """
    fmt = images.check_destination(dst, src, overwrite)
    styles.get_style(style)
    rgb, alpha = images.load_image(src)
    out, alpha = stylize_pixels(rgb, alpha, style, **options)
    write_atomic(images.encode(out, fmt, alpha, quality), dst)
    return Path(dst)
