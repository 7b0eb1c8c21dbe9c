"""Runners: what runs a style's network on a batch of pixels.

Padding, tiling, colour options and file formats live in ``fst.tiling`` and ``fst.inference``; a
runner only maps a batch of frames to stylized frames, so that an exported model (ONNX, OpenVINO)
can stand in for the Keras one without touching any of them.
"""

from __future__ import annotations

import os
from typing import Protocol

import numpy as np

from fst import styles
from fst.errors import FstError
from fst.runners.keras import KerasRunner


class Runner(Protocol):
    """Maps (N, H, W, 3) float32 pixels in 0..255 to stylized float32 pixels of the same shape.

    H and W are multiples of 4 and at least 16 (``fst.tiling`` pads every image to that grid).
    """

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...


RUNTIMES = ("keras",)


def open_runner(style: str | os.PathLike | styles.Style, runtime: str = "keras") -> Runner:
    """The runner of a style (a name, a ``.weights.h5`` path or a Style) on one runtime.

    The style is resolved here (an unknown one is a one-line error); the network loads on first use.
    """
    if runtime not in RUNTIMES:
        raise FstError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    return KerasRunner(styles.get_style(style))


def as_runner(style_or_runner) -> Runner:
    """A runner as given, or the Keras runner of a style given by name, path or Style."""
    if isinstance(style_or_runner, (str, os.PathLike, styles.Style)):
        return open_runner(style_or_runner)
    if not callable(style_or_runner):
        raise FstError(f"style: expected a style name, a .weights.h5 path, a Style or a runner, "
                       f"not {type(style_or_runner).__name__}")
    return style_or_runner
