"""The perceptual losses of Gatys et al. (2015) and Johnson et al. (2016), in ``keras.ops``.

Content: mean squared difference of VGG19 features.  Style: mean squared
difference of Gram matrices (normalised by C*H*W), weighted per layer and
summed.  Total variation: mean squared difference of neighbouring pixels.
Shared by training (``fst.training.train``) and the pixel optimiser (``fst.training.gatys``).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from fst.training.objective import LossConfig
from fst.training.vgg import build_vgg, layer_name


def gram_matrix(features):
    """Channel correlations (B, C, C) of (B, H, W, C) features, divided by C*H*W, in float32."""
    f = ops.cast(features, "float32")
    shape = ops.shape(f)
    channels = f.shape[-1]
    f = ops.reshape(f, (shape[0], -1, channels))
    size = ops.cast(shape[1] * shape[2] * channels, "float32")
    return ops.matmul(ops.transpose(f, (0, 2, 1)), f) / size


def content_loss(features: Sequence, targets: Sequence):
    """Mean squared feature difference, summed over layers."""
    return sum(ops.mean(ops.square(ops.cast(f, "float32") - ops.cast(t, "float32"))) for f, t in zip(features, targets))


def style_loss(grams: Sequence, target_grams: Sequence, layer_weights: Sequence[float]):
    """Weighted sum over layers of the mean squared Gram difference (targets broadcast over the batch)."""
    return sum(w * ops.mean(ops.square(g - t)) for g, t, w in zip(grams, target_grams, layer_weights))


def total_variation(images):
    """Mean squared difference between vertically and horizontally neighbouring pixels."""
    images = ops.cast(images, "float32")
    dy = images[:, 1:, :, :] - images[:, :-1, :, :]
    dx = images[:, :, 1:, :] - images[:, :, :-1, :]
    return ops.mean(ops.square(dy)) + ops.mean(ops.square(dx))


@keras.saving.register_keras_serializable(package="fst")
class PerceptualLoss(keras.layers.Layer):
    """The weighted content + style + TV objective over a frozen VGG19.

    ``set_style`` computes the painting's Gram targets once; calling the layer
    with (stylized, content_targets) returns a dict of the three terms (each
    already multiplied by its weight) and their total.
    """

    def __init__(self, config: LossConfig | None = None, vgg_weights: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.config = config = config or LossConfig()
        self.content_layers = [layer_name(n) for n in config.content_layers]
        self.style_layers = [layer_name(n) for n in config.style_layers]
        self.style_layer_weights = list(config.style_layer_weights)
        self.content_weight, self.style_weight, self.tv_weight = (config.content_weight, config.style_weight,
                                                                  config.tv_weight)
        self.vgg = build_vgg(self.content_layers + self.style_layers, config.pooling, vgg_weights)
        # The content targets need only the layers up to the deepest content layer.
        self.content_vgg = keras.Model(self.vgg.input, self.vgg.outputs[: len(self.content_layers)])
        self.target_grams: list[np.ndarray] | None = None

    def content_targets(self, images) -> list:
        """Content-layer features of the (unstylized) photos, without gradient."""
        outputs = self.content_vgg(images)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        return [ops.stop_gradient(f) for f in outputs]

    def features(self, images):
        """(content features, style Gram matrices) of RGB 0..255 images."""
        outputs = self.vgg(images)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        n = len(self.content_layers)
        return list(outputs[:n]), [gram_matrix(f) for f in outputs[n:]]

    def set_style(self, painting: np.ndarray) -> None:
        """Computes the Gram targets from one HxWx3 RGB painting (already at its style size)."""
        _, grams = self.features(np.asarray(painting, np.float32)[None])
        self.target_grams = [np.asarray(ops.convert_to_numpy(g)) for g in grams]

    def call(self, stylized, content_targets):
        content_features, grams = self.features(stylized)
        terms = {
            "content": self.content_weight * content_loss(content_features, content_targets),
            "style": self.style_weight * style_loss(grams, self.target_grams, self.style_layer_weights),
            "tv": self.tv_weight * total_variation(stylized),
        }
        terms["total"] = terms["content"] + terms["style"] + terms["tv"]
        return terms
