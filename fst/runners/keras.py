"""The Keras runner: the style's own network, on whichever backend Keras runs."""

from __future__ import annotations

import functools

import numpy as np

from fst import styles


class KerasRunner:
    """Runs a style's Keras transformation network (``fst.network``) on batches of pixels.

    The network is built on the first call, so that a command checks its input and output
    before it pays for loading Keras and the weights.  Beyond the ``Runner`` protocol it can
    normalise batches with the instance-norm statistics of another image (``with_statistics_of``),
    which ``fst.tiling`` uses to make the tiles of a large image agree.
    """

    def __init__(self, style: styles.Style):
        self.style = style
        self._model = None

    @property
    def stroke_reference(self) -> int | None:
        """The shorter side the style's strokes are made to be seen at, where its TOML gives one
        (``stroke_scale="auto"`` otherwise uses ``fst.strokes.STROKE_REFERENCE``)."""
        return self.style.stroke_reference

    @property
    def model(self):
        if self._model is None:
            self._model = styles.load_model(self.style)
        return self._model

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        plain, _, _ = _compiled(self.model)
        return np.asarray(plain(batch.astype(np.float32, copy=False)))

    def with_statistics_of(self, image: np.ndarray):
        """A runner that normalises every batch with the statistics the network sees on ``image``
        (1, H, W, 3), H and W multiples of 4, instead of each batch's own."""
        _, measure, fixed = _compiled(self.model)
        statistics = measure(image.astype(np.float32, copy=False))
        return lambda batch: np.asarray(fixed(batch.astype(np.float32, copy=False), statistics))


@functools.lru_cache(maxsize=8)
def _compiled(model):
    """``plain(batch) -> pixels``, ``measure(image) -> statistics``, ``fixed(batch, statistics) -> pixels``
    for one model, made once per process like the model itself (``styles.load_model``).

    Under TensorFlow one function, traced once for any height, width and batch size, computes
    pixels and statistics, and another uses given statistics: ``predict_on_batch`` traces
    again for new sizes and, across styles, prints TensorFlow's retracing warnings.  Other
    backends run ``predict_on_batch``, and the statistics passes layer by layer.
    """
    import keras

    from fst.network import forward_with_statistics

    if keras.backend.backend() == "tensorflow":
        return _tensorflow_functions(model, forward_with_statistics)
    return (model.predict_on_batch,
            lambda image: forward_with_statistics(model, image)[1],
            lambda batch, statistics: forward_with_statistics(model, batch, statistics)[0])


def _tensorflow_functions(model, forward_with_statistics):
    import tensorflow as tf

    image = tf.TensorSpec([None, None, None, 3], tf.float32)
    own = tf.function(lambda batch: forward_with_statistics(model, batch)).get_concrete_function(image)
    specs = [tf.TensorSpec(t.shape, t.dtype) for t in tf.nest.flatten(own.structured_outputs[1])]
    fixed = tf.function(
        lambda batch, *flat: forward_with_statistics(model, batch, list(zip(flat[::2], flat[1::2])))[0]
    ).get_concrete_function(image, *specs)
    return (lambda batch: own(tf.constant(batch))[0],
            lambda image: own(tf.constant(image))[1],
            lambda batch, statistics: fixed(tf.constant(batch), *tf.nest.flatten(statistics)))
