"""Running a network on an image of any size: mirror padding to the network's grid, and overlapping
tiles blended with linear ramps for images too large to run whole."""

from __future__ import annotations

import numpy as np

from fst.runners import Runner

#: Images with more pixels than TILE_SIZE**2 are stylized in overlapping tiles.
TILE_SIZE = 1024
TILE_OVERLAP = 128
#: The smallest tile: below it the overlap that hides the seams has no room.
MIN_TILE_SIZE = 64
_MIN_SIDE = 16


def _pad_amounts(n: int) -> tuple[int, int]:
    """Padding before and after a side of length n to reach a multiple of 4 (at least 16)."""
    total = max(_MIN_SIDE, -(-n // 4) * 4) - n
    return total // 2, total - total // 2


def pad(pixels: np.ndarray) -> tuple[np.ndarray, tuple[slice, slice]]:
    """Mirror-pads an image (H, W, 3) or frames (N, H, W, 3) symmetrically to a multiple of 4
    (at least 16) on each side.

    Returns the padded pixels and the slices that crop them back, so that
    output pixels stay aligned with input pixels.
    """
    h, w = pixels.shape[-3:-1]
    (top, bottom), (left, right) = _pad_amounts(h), _pad_amounts(w)
    mode = "reflect" if min(h, w) > 1 else "edge"
    widths = [(0, 0)] * (pixels.ndim - 3) + [(top, bottom), (left, right), (0, 0)]
    return np.pad(pixels, widths, mode=mode), (slice(top, top + h), slice(left, left + w))


def run_frames(runner: Runner, frames: np.ndarray) -> np.ndarray:
    """Runs the network on same-size frames (N, H, W, 3) of any size; returns float32 of the same shape."""
    padded, (rows, cols) = pad(frames)
    return runner(padded.astype(np.float32))[:, rows, cols]


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


def run_tiled(runner: Runner, rgb: np.ndarray, tile: int, overlap: int) -> np.ndarray:
    """Stylizes in overlapping tiles blended with linear ramps; memory grows with the tile, not the image."""
    tile = max(_MIN_SIDE, tile // 4 * 4)
    rgb, crop = pad(rgb)
    h, w, _ = rgb.shape
    out = np.zeros((h, w, 3), np.float32)
    weight = np.zeros((h, w, 1), np.float32)
    for rows in _windows(h, tile, overlap):
        for cols in _windows(w, tile, overlap):
            patch = rgb[rows, cols]
            wgt = (_ramp(patch.shape[0], overlap)[:, None] * _ramp(patch.shape[1], overlap)[None, :])[..., None]
            out[rows, cols] += run_frames(runner, patch[None])[0] * wgt
            weight[rows, cols] += wgt
    out /= weight
    return out[crop]


def run_image(runner: Runner, rgb: np.ndarray, tile_size: int = TILE_SIZE) -> np.ndarray:
    """Runs the network on one HxWx3 image, whole or (above tile_size**2 pixels) in tiles; float32 out."""
    if rgb.shape[0] * rgb.shape[1] > tile_size * tile_size:
        return run_tiled(runner, rgb, tile_size, min(TILE_OVERLAP, tile_size // 4))
    return run_frames(runner, rgb[None])[0]
