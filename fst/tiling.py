"""Running a network on an image of any size: a mirrored margin and padding to the network's grid
(``fst.runners.base.pad``), and, for images too large to run whole, overlapping tiles normalised
alike and blended with linear ramps."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from fst import images
from fst.runners import base
from fst.runners.base import Runner, SharesStatistics

#: Images with more pixels than TILE_SIZE**2 are stylized in overlapping tiles of at most that many.
#: Chosen from memory: a 2048x1536 photo takes 3.3 GiB whole; with 1536 px tiles any size stays near
#: 3.0 GiB (the thumbnail pass is the largest), and the tiles agree with the whole render to 42 dB or
#: more for every shipped style (1024 px tiles: 1.65 GiB, but 34.7 to 37.6 dB, the thumbnail being
#: smaller). Figures: scripts/tiling_figures.py seams|memory.
TILE_SIZE = 1536
TILE_OVERLAP = 128
#: The smallest tile: below it the overlap that hides the seams has no room.
MIN_TILE_SIZE = 64
MARGIN = base.MARGIN
pad = base.pad


def run_frames(runner: Runner, frames: np.ndarray) -> np.ndarray:
    """Runs the network on same-size frames (N, H, W, 3) of any size; returns float32 of the same shape."""
    if base.pads_itself(runner):
        return runner(frames.astype(np.float32))
    padded, (rows, cols) = pad(frames)
    return runner(padded.astype(np.float32))[:, rows, cols]


def windows(n: int, tile: int, overlap: int) -> list[slice]:
    """As few windows as cover 0..n (a multiple of 4) overlapping by at least `overlap`, all of one
    length (at most `tile`, a multiple of 4) and starting on multiples of 4, so every tile shares
    one pixel grid."""
    if n <= tile:
        return [slice(0, n)]
    count = math.ceil((n - overlap) / (tile - overlap))
    length = min(tile, -(-(n + (count - 1) * overlap) // (4 * count)) * 4)
    starts = np.linspace(0, n - length, count) // 4 * 4
    return [slice(int(start), int(start) + length) for start in starts]


def _ramp(n: int, overlap: int) -> np.ndarray:
    """Blending weight along one side of a tile: rises over `overlap` pixels at each end."""
    i = np.arange(n, dtype=np.float32)
    return np.minimum(1.0, np.minimum(i + 1, n - i) / (overlap + 1))


def thumbnail(pixels: np.ndarray, max_pixels: int) -> np.ndarray:
    """The image (H, W, 3), sides multiples of 4, shrunk to at most ``max_pixels`` pixels; float32."""
    h, w = pixels.shape[:2]
    scale = min(1.0, math.sqrt(max_pixels / (h * w)))
    size = (max(base.MIN_SIDE, int(w * scale) // 4 * 4), max(base.MIN_SIDE, int(h * scale) // 4 * 4))
    return images.resize_float(pixels, size, Image.Resampling.BOX)


def run_tiled(runner: Runner, rgb: np.ndarray, tile: int, overlap: int) -> np.ndarray:
    """Stylizes in overlapping tiles blended with linear ramps; memory grows with the tile, not the image.

    A runner that can (``SharesStatistics``, as the Keras runner) normalises every tile with the
    instance-norm statistics of one thumbnail of the whole image, so tiles agree in brightness and
    colour; with any other runner each tile is normalised by its own, and only the blending hides seams.
    """
    from tqdm import tqdm

    tile = max(base.MIN_SIDE, tile // 4 * 4)
    rgb, crop = pad(rgb)
    h, w, _ = rgb.shape
    cells = [(rows, cols) for rows in windows(h, tile, overlap) for cols in windows(w, tile, overlap)]
    shares = isinstance(runner, SharesStatistics)
    # Progress only where a person watches (stderr a terminal): scripts and pipes see nothing.
    with tqdm(total=len(cells) + shares, desc="tiles", unit="tile", leave=False, disable=None) as bar:
        if shares:
            runner = runner.with_statistics_of(thumbnail(rgb, tile * tile)[None])
            bar.update()
        out = np.zeros((h, w, 3), np.float32)
        weight = np.zeros((h, w, 1), np.float32)
        for rows, cols in cells:
            patch = rgb[rows, cols]
            wgt = (_ramp(patch.shape[0], overlap)[:, None] * _ramp(patch.shape[1], overlap)[None, :])[..., None]
            out[rows, cols] += runner(patch[None].astype(np.float32))[0] * wgt
            weight[rows, cols] += wgt
            bar.update()
    out /= weight
    return out[crop]


def run_image(runner: Runner, rgb: np.ndarray, tile_size: int = TILE_SIZE) -> np.ndarray:
    """Runs the network on one HxWx3 image, whole or (above tile_size**2 pixels) in tiles; float32 out."""
    if rgb.shape[0] * rgb.shape[1] > tile_size * tile_size:
        return run_tiled(runner, rgb, tile_size, min(TILE_OVERLAP, tile_size // 4))
    return run_frames(runner, rgb[None])[0]
