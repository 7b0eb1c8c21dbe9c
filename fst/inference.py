"""The stylize pipeline: pixels in, the style's runner through, pixels out.

One image of any kind (encoded bytes, a path, a PIL image or an array) goes through ``stylize``;
same-size video frames go through ``stylize_frames``; ``run`` is file to file. The CLI, video and
the server are thin callers of these.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
from PIL import Image

from fst import images, strokes, styles, tiling
from fst.errors import FstError
from fst.files import write_atomic
from fst.options import OutputOptions, StylizeOptions
from fst.runners import Runner, as_runner
from fst.strokes import stroke_scale_for

log = logging.getLogger(__name__)


def _finish(stylized: np.ndarray, original: np.ndarray, options: StylizeOptions) -> np.ndarray:
    """The colour options applied to the network's output, as uint8."""
    if options.preserve_color:
        stylized = images.preserve_colors(stylized, original)
    if options.strength < 1.0:
        stylized = options.strength * stylized + (1.0 - options.strength) * original
    return images.to_uint8(stylized)


def _stylize_rgb(rgb: np.ndarray, runner: Runner, options: StylizeOptions) -> np.ndarray:
    """Stylizes one uint8 HxWx3 array (already at its final size); uint8 out, same size.

    A network paints strokes of a fixed size in pixels, so on a large photo
    they shrink to a fine texture; ``stroke_scale`` K > 1 paints them K times
    larger (the network sees the photo at 1/K of its size and ``fst.strokes``
    brings the result back guided by the photo). ``"auto"`` picks K from the size.
    """
    def forward(pixels: np.ndarray) -> np.ndarray:
        return tiling.run_image(runner, pixels, options.tile_size)

    scale = stroke_scale_for(*rgb.shape[:2], options.stroke_scale, runner)
    log.debug("stroke scale %.2f for %dx%d", scale, rgb.shape[1], rgb.shape[0])
    out = strokes.at_stroke_scale(forward, rgb, scale) if scale > 1 else forward(rgb)
    return _finish(out, rgb, options)


def stylize_pixels(rgb: np.ndarray, alpha: np.ndarray | None, runner: Runner, options: StylizeOptions):
    """Stylizes decoded pixels (shrunk first to ``options.max_size``); alpha is resized alike and passed through."""
    if options.max_size and max(rgb.shape[:2]) > options.max_size:
        rgb = images.resize_long_side(rgb, options.max_size)
        alpha = None if alpha is None else images.resize_long_side(alpha, options.max_size)
    return _stylize_rgb(rgb, runner, options), alpha


def stylize(
    image: bytes | np.ndarray | Image.Image | str | os.PathLike,
    style: str | os.PathLike | styles.Style | Runner,
    *,
    options: StylizeOptions | None = None,
    format: str | None = None,
    quality: int = 95,
    name: str | None = None,
    **kwargs,
):
    """Stylizes one image and returns it in the kind it came: encoded bytes for bytes (in ``format``,
    default the input's own, at JPEG/WebP ``quality``), a PIL image for a PIL image, an array for an
    array or a path.  Arrays are uint8 (or integers) in 0..255 or floats in 0..1; a float array comes
    back as float32 in 0..1. ``name`` is what error messages call the image (e.g. ``<stdin>``).

    ``style`` is a style name, a ``.weights.h5`` path, a Style or a runner (``fst.runners``): resolve it
    once when stylizing many images. ``options`` (a ``StylizeOptions``), or its fields as keywords:
    ``max_size`` (resize the longer side first), ``strength`` (0..1 blend with the original),
    ``preserve_color`` (keep the photo's colours), ``stroke_scale`` (strokes K times larger; the
    default ``"auto"`` makes K the photo's shorter side over 512 px, so a large photo looks like a 512 px
    one, and 1 turns it off), ``tile_size``. An alpha channel is carried through.
    """
    options = StylizeOptions.of(kwargs, "stylize", options)
    if isinstance(image, (bytes, bytearray, memoryview)):
        data = bytes(image)
        output = OutputOptions(format=format, quality=quality)
        fmt = images.format_named(output.format) if output.format else images.format_of(data)
        rgb, alpha = images.load_image(data, name=name or "<bytes>")
        out, alpha = stylize_pixels(rgb, alpha, as_runner(style), options)
        return images.encode(out, fmt, alpha, quality)
    is_pil = isinstance(image, Image.Image)
    is_float = isinstance(image, np.ndarray) and image.dtype.kind == "f"
    rgb, alpha = images.as_pixels(image, what=name or "image")
    out, alpha = stylize_pixels(rgb, alpha, as_runner(style), options)
    if alpha is not None:
        out = np.dstack([out, alpha])
    if is_float:
        return out.astype(np.float32) / 255.0
    return Image.fromarray(out) if is_pil else out


def stylize_frames(
    frames: np.ndarray,
    style: str | os.PathLike | styles.Style | Runner,
    options: StylizeOptions = StylizeOptions(),
) -> np.ndarray:
    """Stylizes a batch of same-size uint8 frames (N, H, W, 3) in one forward pass (video); uint8 out.

    Frames over the tile size, or at a stroke scale over 1, go one by one through the single-image path.
    """
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise FstError(f"expected frames of shape (N, H, W, 3), got {frames.shape}")
    runner = as_runner(style)
    scale = stroke_scale_for(frames.shape[1], frames.shape[2], options.stroke_scale, runner)
    if frames.shape[1] * frames.shape[2] > options.tile_size ** 2 or scale != 1:
        return np.stack([_stylize_rgb(f, runner, options) for f in frames])
    return _finish(tiling.run_frames(runner, frames), frames, options)


def run(
    style: str | os.PathLike | styles.Style | Runner,
    src: str | os.PathLike | Image.Image | np.ndarray,
    dst: str | os.PathLike,
    *,
    options: StylizeOptions | None = None,
    overwrite: bool = False,
    quality: int = 95,
    **kwargs,
) -> Path:
    """Stylizes the image src (a file, or a PIL image or array as ``stylize`` takes) into the file dst
    (format from dst's extension), atomically.

    Refuses to replace src unless ``overwrite``.  Options as in ``stylize``.
    """
    options = StylizeOptions.of(kwargs, "run", options)
    is_path = isinstance(src, (str, os.PathLike))
    fmt = images.check_destination(dst, src if is_path else None, overwrite)
    quality = OutputOptions(quality=quality).quality  # checked before any work
    runner = as_runner(style)
    rgb, alpha = images.as_pixels(src, what=str(src) if is_path else "src")
    out, alpha = stylize_pixels(rgb, alpha, runner, options)
    write_atomic(images.encode(out, fmt, alpha, quality), dst)
    return Path(dst)
