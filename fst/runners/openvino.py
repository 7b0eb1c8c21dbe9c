"""The OpenVINO runner: an exported ``.xml`` + ``.bin`` pair (``fst export``), with no TensorFlow or Keras."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fst.errors import FstError


class OpenVinoRunner:
    """Runs an exported network (NHWC float32 0..255 in and out) on OpenVINO's CPU plugin.

    ``hint`` is OpenVINO's inference precision hint (``"bf16"``, ``"f16"``, ``"f32"``), left to the
    plugin by default: it uses bf16 only on CPUs that compute in it (AVX512-BF16 or AMX). The model
    is compiled on the first call for dynamic height and width.
    """

    def __init__(self, path: str | os.PathLike, hint: str | None = None):
        self.path = Path(path)
        self.hint = hint
        self._compiled = None
        self._model = None

    @property
    def model(self):
        if self._model is None:
            try:
                import openvino as ov
            except ImportError:
                raise FstError("the openvino runtime needs the openvino package: pip install 'fst[openvino]'") from None
            try:
                self._model = ov.Core().read_model(str(self.path))
            except RuntimeError as exc:
                raise FstError(f"{self.path}: cannot load OpenVINO model ({str(exc).splitlines()[0]})") from None
        return self._model

    @property
    def compiled(self):
        if self._compiled is None:
            import openvino as ov

            config = {"PERFORMANCE_HINT": "LATENCY"}
            if self.hint:
                config["INFERENCE_PRECISION_HINT"] = self.hint
            self._compiled = ov.Core().compile_model(self.model, "CPU", config)
        return self._compiled

    @property
    def metadata(self) -> dict[str, str]:
        """The artefact's metadata (credits, network options), as written by ``fst export``."""
        info = self.model.get_rt_info()
        if "fst" not in info.keys():
            return {}
        return {f"fst.{key}": value.astype(str) for key, value in info["fst"].items()}

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.compiled(batch.astype(np.float32, copy=False))[0]
