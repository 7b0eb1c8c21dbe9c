"""The Keras runner: the style's own network, on whichever backend Keras runs."""

from __future__ import annotations

import numpy as np

from fst import styles


class KerasRunner:
    """Runs a style's Keras transformation network (``fst.network``) on batches of pixels.

    The network is built on the first call, so that a command checks its input and output
    before it pays for loading Keras and the weights.
    """

    def __init__(self, style: styles.Style):
        self.style = style
        self._model = None

    @property
    def model(self):
        if self._model is None:
            self._model = styles.load_model(self.style)
        return self._model

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict_on_batch(batch.astype(np.float32, copy=False)))
