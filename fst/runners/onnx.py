"""The ONNX Runtime runner: an exported ``.onnx`` file (``fst export``), with no TensorFlow or Keras."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fst.errors import FstError, install_hint
from fst.runners.base import PADDED_INSIDE, PADDING_KEY


class OnnxRunner:
    """Runs an exported network (NHWC float32 0..255 in and out, any size) on ONNX Runtime's CPU provider.

    The session is made on the first call, so that a command checks its input and output first.
    """

    def __init__(self, path: str | os.PathLike, threads: int = 0):
        self.path = Path(path)
        self.threads = threads
        self._session = None

    @property
    def session(self):
        if self._session is None:
            try:
                import onnxruntime as ort
            except ImportError:
                raise FstError(f"the onnx runtime needs the onnxruntime package: {install_hint('onnx')}") from None
            options = ort.SessionOptions()
            options.intra_op_num_threads = self.threads
            options.log_severity_level = 3
            try:
                self._session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
            except Exception as exc:  # onnxruntime raises its own exception types for unreadable files
                raise FstError(f"{self.path}: cannot load ONNX model ({str(exc).splitlines()[0]})") from None
        return self._session

    @property
    def metadata(self) -> dict[str, str]:
        """The artefact's metadata (credits, network options), as written by ``fst export``."""
        return dict(self.session.get_modelmeta().custom_metadata_map)

    @property
    def pads_itself(self) -> bool:
        """Whether the graph adds the margin and grid padding itself (``base.PADDING_KEY`` in its metadata)."""
        return self.metadata.get(PADDING_KEY) == PADDED_INSIDE

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        name = self.session.get_inputs()[0].name
        return self.session.run(None, {name: batch.astype(np.float32, copy=False)})[0]
