"""The OpenVINO runner: an exported ``.xml`` + ``.bin`` pair (``fst export``), with no TensorFlow or Keras."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fst.errors import FstError, install_hint
from fst.runners.base import PADDED_INSIDE, PADDING_KEY


class OpenVinoRunner:
    """Runs an exported network (NHWC float32 0..255 in and out, any size) on OpenVINO's CPU plugin.

    ``hint`` is OpenVINO's inference precision hint (``"f32"``, ``"bf16"``, ``"f16"``). By default it is
    bf16 for a file exported with ``precision="bf16"`` and f32 otherwise: left to itself the CPU plugin
    computes in bf16 on CPUs with AVX512-BF16 or AMX, up to 7 grey levels from Keras, and on others in
    f32, so the same file gave different pictures. The model is compiled for each input shape it meets
    (the last few are kept): compiled for a fixed shape, OpenVINO's CPU plugin runs this network about
    twice as fast as compiled for any shape.
    """

    #: Compiled shapes kept: a folder of photos of a few sizes, or a video, reuses them.
    KEEP = 4

    def __init__(self, path: str | os.PathLike, hint: str | None = None):
        self.path = Path(path)
        self._hint = hint
        self._compiled: dict[tuple[int, ...], object] = {}
        self._model = None

    @property
    def model(self):
        if self._model is None:
            try:
                import openvino as ov
            except ImportError:
                raise FstError(f"the openvino runtime needs the openvino package: {install_hint('openvino')}") from None
            weights = self.path.with_suffix(".bin")
            if self.path.suffix == ".xml" and not weights.is_file():  # OpenVINO reads an .onnx file too
                raise FstError(f"{self.path}: its weights file {weights.name} is missing (an OpenVINO model is "
                               f"the .xml and .bin pair that fst export writes)")
            try:
                self._model = ov.Core().read_model(str(self.path))
            except RuntimeError as exc:
                raise FstError(f"{self.path}: cannot load OpenVINO model ({str(exc).splitlines()[0]})") from None
        return self._model

    @property
    def hint(self) -> str:
        """The precision asked for: as given, else the export's own (bf16 or f32)."""
        if self._hint is None:
            self._hint = "bf16" if self.metadata.get("fst.precision") == "bf16" else "f32"
        return self._hint

    def compiled(self, shape: tuple[int, ...]):
        """The model compiled for one input shape."""
        if shape not in self._compiled:
            import openvino as ov

            config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": self.hint}
            model = self.model.clone()
            model.reshape(list(shape))
            if len(self._compiled) >= self.KEEP:
                del self._compiled[next(iter(self._compiled))]
            self._compiled[shape] = ov.Core().compile_model(model, "CPU", config)
        return self._compiled[shape]

    @property
    def metadata(self) -> dict[str, str]:
        """The artefact's metadata (credits, network options), as written by ``fst export``."""
        info = self.model.get_rt_info()
        if "fst" not in info.keys():
            return {}
        return {f"fst.{key}": value.astype(str) for key, value in info["fst"].items()}

    @property
    def pads_itself(self) -> bool:
        """Whether the graph adds the margin and grid padding itself (``base.PADDING_KEY`` in its metadata)."""
        return self.metadata.get(PADDING_KEY) == PADDED_INSIDE

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.compiled(batch.shape)(batch.astype(np.float32, copy=False))[0]
