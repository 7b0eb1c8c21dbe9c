"""What a runner is, and the pixel grid every runner is fed: no other fst module is imported here, so
``fst.tiling`` and the runners can both stand on it."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

#: Mirrored pixels around every image, cropped after: without them the networks paint bands and
#: stripes on their outermost pixels (the_scream a red stripe, starry_night and great_wave a band).
#: Chosen by how far a border lands from what the network paints there when the photo goes on
#: (scripts/tiling_figures.py borders): on 50 val photos, 16 mirrored pixels bring the outer 3 px
#: from 11 to 20 grey levels off down to 8 to 14 for every shipped style; repeated edge pixels come
#: a little closer but draw streaks across the_scream's borders.
MARGIN = 16
#: The network's grid: sides a multiple of 4 (two stride-2 convolutions down and two up), at least 16.
MIN_SIDE = 16


class Runner(Protocol):
    """Maps (N, H, W, 3) float32 pixels in 0..255 to stylized float32 pixels of the same shape.

    H and W are multiples of 4 and at least 16 (``pad`` brings every image to that grid), unless the
    runner has a true ``pads_itself`` attribute (``pads_itself``): then any H and W.
    """

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class SharesStatistics(Protocol):
    """A runner that can normalise every batch with the instance-norm statistics the network sees on
    another image (the Keras runner): tiles of one large image then agree in brightness and colour."""

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...

    def with_statistics_of(self, image: np.ndarray) -> Runner: ...


def pad_amounts(n: int, margin: int) -> tuple[int, int]:
    """Padding before and after a side of length n: the margin, then up to a multiple of 4 (at least 16)."""
    total = max(MIN_SIDE, -(-(n + 2 * margin) // 4) * 4) - n
    return total // 2, total - total // 2


def mirror_indices(n: int, before: int, after: int) -> np.ndarray:
    """Which of n pixels each padded position shows: the side mirrored about its end pixels (as
    ``numpy.pad``'s ``reflect``, repeated for pads longer than the side), or the one pixel of a side of 1.
    Exported graphs compute the same indices (``fst.runners.onnx_graph``)."""
    period = max(2 * (n - 1), 1)
    steps = np.arange(-before, n + after) % period
    return np.minimum(steps, period - steps)


def pad(pixels: np.ndarray, margin: int = MARGIN, mode: str = "reflect") -> tuple[np.ndarray, tuple[slice, slice]]:
    """Pads an image (H, W, 3) or frames (N, H, W, 3) by ``margin`` and up to a multiple of 4 (at
    least 16) on each side, symmetrically; mirrored (``mirror_indices``), or as ``numpy.pad``'s other
    ``mode``.

    Returns the padded pixels and the slices that crop them back, so that
    output pixels stay aligned with input pixels.
    """
    h, w = pixels.shape[-3:-1]
    (top, bottom), (left, right) = pad_amounts(h, margin), pad_amounts(w, margin)
    if mode == "reflect":
        padded = pixels.take(mirror_indices(h, top, bottom), axis=-3).take(mirror_indices(w, left, right), axis=-2)
    else:
        widths = [(0, 0)] * (pixels.ndim - 3) + [(top, bottom), (left, right), (0, 0)]
        padded = np.pad(pixels, widths, mode=mode)
    return padded, (slice(top, top + h), slice(left, left + w))


#: The metadata entry by which an exported graph says it adds the margin and grid padding itself
#: (``fst export`` writes it; exports before had none).
PADDING_KEY, PADDED_INSIDE = "fst.padding", "inside"


def pads_itself(runner: Runner) -> bool:
    """Whether a runner's model adds the margin and the grid padding itself, and crops back (an export
    from ``fst export``): it then takes frames of any size, and nothing pads them before."""
    return bool(getattr(runner, "pads_itself", False))
