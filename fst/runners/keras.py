"""The Keras runner: the style's own network, on whichever backend Keras runs."""

from __future__ import annotations

import numpy as np

from fst import styles


class KerasRunner:
    """Runs a style's Keras transformation network (``fst.network``) on batches of pixels.

    The network is built on the first call, so that a command checks its input and output
    before it pays for loading Keras and the weights.  The first batch runs eagerly (one image
    never pays for compiling); later ones run through one compiled function whose height and
    width are left open, so images of many sizes compile once, not once per size.
    """

    def __init__(self, style: styles.Style):
        self.style = style
        self._model = None
        self._compiled = None

    @property
    def model(self):
        if self._model is None:
            self._model = styles.load_model(self.style)
        return self._model

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        batch = batch.astype(np.float32, copy=False)
        if self._compiled is None:
            model = self.model
            self._compiled = _compile(model)
            return np.asarray(model(batch, training=False))
        return np.asarray(self._compiled(batch))


def _compile(model):
    """A function of a float32 (N, H, W, 3) batch: on TensorFlow one graph for every size, on other
    backends Keras' own predict step."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return model.predict_on_batch
    import tensorflow as tf

    return tf.function(lambda x: model(x, training=False),
                       input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
