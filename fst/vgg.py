"""VGG19 feature extractor for the perceptual losses (Gatys et al. 2015; Johnson et al. 2016).

RGB images in 0..255 go in; Caffe preprocessing (BGR, ImageNet mean
subtracted) happens inside the model.  The network is truncated at the deepest
layer a loss uses and frozen.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import keras
from keras import layers, ops

from fst.config import VGG_WEIGHTS_FILE
from fst.errors import FstError

WEIGHTS_FILE = VGG_WEIGHTS_FILE
WEIGHTS_ENV = "FST_VGG19_WEIGHTS"
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
BLOCK_SIZES = (2, 2, 4, 4, 4)
LAYERS = tuple(f"block{b + 1}_conv{c + 1}" for b, n in enumerate(BLOCK_SIZES) for c in range(n))


def layer_name(name: str) -> str:
    """The Keras name of a VGG19 layer; accepts the papers' ``relu4_2`` / ``conv4_2`` too."""
    match = re.fullmatch(r"(?:relu|conv)(\d)_(\d)", name)
    keras_name = f"block{match[1]}_conv{match[2]}" if match else name
    if keras_name not in LAYERS:
        raise FstError(f"unknown VGG19 layer {name!r}; use block1_conv1..block5_conv4 or relu1_1..relu5_4")
    return keras_name


def find_weights(vgg_weights: str | os.PathLike | None = None) -> str:
    """Where the ImageNet VGG19 weights are: an explicit path, $FST_VGG19_WEIGHTS, the Keras cache,
    else "imagenet" (Keras downloads them)."""
    for source, path in (("--vgg-weights", vgg_weights), (WEIGHTS_ENV, os.environ.get(WEIGHTS_ENV))):
        if path:
            if not Path(path).is_file():
                raise FstError(f"{path}: VGG19 weights file not found (given by {source}); "
                               f"it should be {WEIGHTS_FILE}")
            return str(path)
    keras_home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    cached = keras_home / "models" / WEIGHTS_FILE
    return str(cached) if cached.is_file() else "imagenet"


@keras.saving.register_keras_serializable(package="fst")
class CaffePreprocess(layers.Layer):
    """RGB 0..255 to VGG's Caffe input: BGR with the ImageNet mean subtracted."""

    def call(self, x):
        return ops.flip(x, axis=-1) - ops.convert_to_tensor(CAFFE_MEAN_BGR, dtype=x.dtype)


def build_vgg(feature_layers: list[str], pooling: str = "max", vgg_weights: str | os.PathLike | None = None) -> keras.Model:
    """A frozen VGG19 returning the features of ``feature_layers`` (in that order) for RGB 0..255 input.

    ``pooling`` is "max" (the classifier's) or "avg" (Gatys et al. found it
    gives smoother results for image synthesis).
    """
    if pooling not in ("max", "avg"):
        raise FstError(f"pooling must be 'max' or 'avg', not {pooling!r}")
    names = [layer_name(n) for n in feature_layers]
    if not names:
        raise FstError("no VGG19 layers given")
    weights = find_weights(vgg_weights)
    try:
        full = keras.applications.VGG19(include_top=False, weights=weights, input_shape=(None, None, 3))
    except Exception as exc:  # Keras raises bare Exceptions for failed downloads
        if weights != "imagenet":
            raise FstError(f"{weights}: cannot load VGG19 weights ({exc})") from None
        raise FstError(
            f"VGG19 weights {WEIGHTS_FILE} are not available and could not be downloaded; "
            f"pass --vgg-weights PATH or set {WEIGHTS_ENV}=PATH"
        ) from None

    deepest = max(LAYERS.index(n) for n in names)
    image = keras.Input((None, None, 3), name="rgb")
    x, outputs = CaffePreprocess(name="caffe_preprocess")(image), {}
    for layer in full.layers[1:]:
        if isinstance(layer, layers.MaxPooling2D):
            x = layers.AveragePooling2D(2, name=layer.name)(x) if pooling == "avg" else layer(x)
        else:
            x = layer(x)
            outputs[layer.name] = x
            if layer.name == LAYERS[deepest]:
                break
    model = keras.Model(image, [outputs[n] for n in names], name=f"vgg19_{pooling}")
    model.trainable = False
    return model
