"""Runners: what runs a style's network on a batch of pixels.

Tiling, colour options and file formats live in ``fst.tiling`` and ``fst.inference``; a runner only
maps a batch of frames, padded to the network's grid (``base.pad``; an exported model pads itself and
takes any size), to stylized frames, so that an exported model (ONNX, OpenVINO; ``export.py`` writes
them) can stand in for the Keras one without touching any of them.
"""

from __future__ import annotations

import os
from pathlib import Path

from fst import styles
from fst.errors import FstError
from fst.runners.base import Runner, SharesStatistics
from fst.runners.keras import KerasRunner

__all__ = ["RUNTIMES", "Runner", "SharesStatistics", "as_runner", "open_runner"]


RUNTIMES = ("keras", "onnx", "openvino")
#: An exported file given as the style picks its runtime by its suffix.
_EXPORTED = {".onnx": "onnx", ".xml": "openvino"}


def open_runner(style: str | os.PathLike | styles.Style, runtime: str | None = None) -> Runner:
    """The runner of a style on one runtime (default: keras, or the runtime of an exported file).

    ``style`` is a style name, a ``.weights.h5`` path or a Style; or an exported ``.onnx`` or ``.xml``
    file (``fst export``), which runs on its own runtime without TensorFlow. A style name or
    ``.weights.h5`` on the onnx or openvino runtime is exported once into ``fst.runners.export.cache_dir()``
    (that first time needs TensorFlow) and reused. The network loads on first use.
    """
    if runtime is not None and runtime not in RUNTIMES:
        raise FstError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    suffix = "" if isinstance(style, styles.Style) else Path(os.fspath(style)).suffix.lower()
    if suffix in _EXPORTED:
        if not Path(style).is_file():
            raise FstError(f"{os.fspath(style)}: no such exported model")
        if runtime not in (None, _EXPORTED[suffix]):
            raise FstError(f"{os.fspath(style)}: a {suffix} file runs on the {_EXPORTED[suffix]} runtime, not {runtime}")
        return _exported_runner(Path(style), _EXPORTED[suffix])
    resolved = styles.get_style(style)
    if runtime in (None, "keras"):
        return KerasRunner(resolved)
    from fst.runners import export

    return _exported_runner(export.cached(resolved, runtime), runtime)


def _exported_runner(path: Path, runtime: str) -> Runner:
    if runtime == "onnx":
        from fst.runners.onnx import OnnxRunner

        return OnnxRunner(path)
    from fst.runners.openvino import OpenVinoRunner

    return OpenVinoRunner(path)


def as_runner(style_or_runner) -> Runner:
    """A runner as given, or the runner of a style given by name, path or Style (``open_runner``)."""
    if isinstance(style_or_runner, (str, os.PathLike, styles.Style)):
        return open_runner(style_or_runner)
    if not callable(style_or_runner):
        raise FstError(f"style: expected a style name, a .weights.h5 path, a Style or a runner, "
                       f"not {type(style_or_runner).__name__}")
    return style_or_runner
