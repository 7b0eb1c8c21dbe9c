"""The stroke scale: a network's strokes have a fixed size in pixels, so a large photo is stylized
smaller and brought back up.

At stroke scale K the network sees the photo at 1/K of its size. The painting it returns is brought
back to full size by bicubic upsampling, corrected at the photo's edges by joint bilateral upsampling
(Kopf et al. 2007) guided by the photo's luminance, so the painting's colour edges land on the photo's
edges instead of bleeding across them; then the
photo's own edges, which the small copy could not hold, are added back, while its finer, fainter
texture (grass, grain, skin), which the painting repaints in its own marks, is not.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from PIL import Image

from fst import images

#: The shorter side, in pixels, at which a style's strokes look as they were made to: the shipped
#: styles were trained on 256 px crops and their look chosen at 512 px (docs/objectives), and past
#: 512 px the strokes shrink to a fine texture (docs/gallery, "The same look at any size"). A style's
#: TOML may give its own (``stroke_reference``).
STROKE_REFERENCE = 512
AUTO = "auto"
#: How far apart, in grey levels, the photo's luminance at a pixel and at a painted sample may be before
#: the sample stops counting there (the range of the bilateral weights).
EDGE_SIGMA = 20.0
#: Photo detail of about this many grey levels or less is texture the painting repaints and is mostly
#: left out; stronger detail (edges, lines) comes back nearly whole.
DETAIL_THRESHOLD = 12.0
_STRIP = 32


def stroke_scale_for(height: int, width: int, stroke_scale: float | str, runner=None) -> float:
    """The stroke scale K an image of this size is stylized at: ``stroke_scale`` itself, or for
    ``"auto"`` the shorter side over the style's reference size (1 up to the reference, no smaller)."""
    if stroke_scale != AUTO:
        return float(stroke_scale)
    reference = getattr(runner, "stroke_reference", None) or STROKE_REFERENCE
    return max(1.0, min(height, width) / reference)


def upsample_guided(small: np.ndarray, small_guide: np.ndarray, guide: np.ndarray) -> np.ndarray:
    """``small`` (h x w x C) brought up to ``guide``'s size (H x W): bicubic, corrected where the guide
    has edges by joint bilateral upsampling. The correction is the bilateral average of each pixel's four
    nearest small samples (weighted by distance and by how close each sample's ``small_guide`` value is
    to the pixel's own) less their plain bilinear average, so it is zero away from edges, where bicubic
    keeps the painting's marks crisp, and at an edge it keeps colours on their own side."""
    h, w = small.shape[:2]
    height, width = guide.shape
    y = (np.arange(height, dtype=np.float32) + 0.5) * (h / height) - 0.5
    x = (np.arange(width, dtype=np.float32) + 0.5) * (w / width) - 0.5
    y0 = np.clip(np.floor(y).astype(np.intp), 0, h - 1)
    x0 = np.clip(np.floor(x).astype(np.intp), 0, w - 1)
    taps_y = ((y0, 1.0 - np.clip(y - y0, 0.0, 1.0)), (np.minimum(y0 + 1, h - 1), np.clip(y - y0, 0.0, 1.0)))
    taps_x = ((x0, 1.0 - np.clip(x - x0, 0.0, 1.0)), (np.minimum(x0 + 1, w - 1), np.clip(x - x0, 0.0, 1.0)))
    # Guides in units of sqrt(2) sigma, so a weight is exp(-difference squared).
    unit = np.float32(1.0 / (np.sqrt(2.0) * EDGE_SIGMA))
    small_guide = small_guide * unit
    planes = [np.ascontiguousarray(small[..., c], np.float32) for c in range(small.shape[2])]
    size = (width, height)
    out = images.resize_float(small, size, Image.Resampling.BICUBIC)
    out -= images.resize_float(small, size, Image.Resampling.BILINEAR)
    for top in range(0, height, _STRIP):  # a strip of rows at a time, so the passes stay in cache
        band = slice(top, top + _STRIP)
        here = guide[band] * unit
        totals = np.zeros((len(planes), *here.shape), np.float32)
        weights = np.zeros(here.shape, np.float32)
        for rows, wy in taps_y:
            for cols, wx in taps_x:
                def near(plane: np.ndarray) -> np.ndarray:
                    return plane.take(rows[band], axis=0).take(cols, axis=1)
                weight = np.subtract(here, near(small_guide))
                np.square(weight, out=weight)
                np.negative(weight, out=weight)
                np.exp(weight, out=weight)
                weight *= wy[band, None]
                weight *= wx
                weights += weight
                for total, plane in zip(totals, planes):
                    sample = near(plane)
                    sample *= weight
                    total += sample
        np.maximum(weights, 1e-12, out=weights)
        out[band] += np.moveaxis(totals / weights, 0, -1)
    return out


def at_stroke_scale(forward: Callable[[np.ndarray], np.ndarray], rgb: np.ndarray, scale: float) -> np.ndarray:
    """``forward`` (uint8 pixels in, float pixels out) applied at stroke scale ``scale`` > 1 to ``rgb``
    (H x W x 3 uint8); float pixels out at full size."""
    height, width = rgb.shape[:2]
    small_size = (max(1, round(width / scale)), max(1, round(height / scale)))
    painted = forward(np.asarray(Image.fromarray(rgb).resize(small_size, Image.Resampling.LANCZOS)))
    luma = images.luma(rgb)
    small_luma = images.resize_float(luma, small_size, Image.Resampling.LANCZOS)
    detail = luma - images.resize_float(small_luma, (width, height))
    square = np.square(detail)
    edges = detail * square / (square + DETAIL_THRESHOLD**2)
    return upsample_guided(painted.astype(np.float32), small_luma, luma) + edges[..., None]
