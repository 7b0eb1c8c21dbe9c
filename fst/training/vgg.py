"""VGG19 feature extractor for the perceptual losses (Gatys et al. 2015; Johnson et al. 2016).

RGB images in 0..255 go in; Caffe preprocessing (BGR, ImageNet mean
subtracted) happens inside the model.  The network is truncated at the deepest
layer a loss uses and frozen.  Besides Keras' ImageNet file it reads a "cut"
file (``save_cut``): the convolutions up to one layer, in float16, small
enough to travel to a machine without internet.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import h5py
import keras
import numpy as np
from keras import layers, ops

from fst.errors import FstError
from fst.files import atomic_path

#: The ImageNet VGG19 weights file that Keras downloads for VGG19(include_top=False).
WEIGHTS_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
WEIGHTS_ENV = "FST_VGG19_WEIGHTS"
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
BLOCK_SIZES = (2, 2, 4, 4, 4)
LAYERS = tuple(f"block{b + 1}_conv{c + 1}" for b, n in enumerate(BLOCK_SIZES) for c in range(n))
#: Attribute of a cut weights file: the deepest layer it holds.
CUT_ATTR = "fst_vgg19_cut"


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
    for source, path in (("vgg_weights (--vgg-weights)", vgg_weights), (WEIGHTS_ENV, os.environ.get(WEIGHTS_ENV))):
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
    deepest = max(LAYERS.index(n) for n in names)
    cut = _cut_weights(weights, LAYERS[deepest]) if weights != "imagenet" else None
    try:
        full = keras.applications.VGG19(include_top=False, weights=None if cut else weights,
                                        input_shape=(None, None, 3))
    except Exception as exc:  # Keras raises bare Exceptions for failed downloads
        if weights != "imagenet":
            raise FstError(f"{weights}: cannot load VGG19 weights ({exc})") from None
        raise FstError(
            f"VGG19 weights {WEIGHTS_FILE} are not available and could not be downloaded; "
            f"pass --vgg-weights PATH (vgg_weights= in Python) or set {WEIGHTS_ENV}=PATH"
        ) from None
    for name, values in (cut or {}).items():
        full.get_layer(name).set_weights(values)

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


def _cut_weights(path: str, deepest: str) -> dict[str, list] | None:
    """The (kernel, bias) of each layer up to `deepest` from a cut file (float32); None for Keras' own file."""
    try:
        with h5py.File(path, "r") as f:
            if CUT_ATTR not in f.attrs:
                return None
            held = str(f.attrs[CUT_ATTR])
            if LAYERS.index(held) < LAYERS.index(deepest):
                raise FstError(f"{path}: cut VGG19 weights end at {held}; the losses need {deepest}")
            return {name: [np.asarray(f[name]["kernel"], np.float32), np.asarray(f[name]["bias"], np.float32)]
                    for name in LAYERS[: LAYERS.index(deepest) + 1]}
    except OSError as exc:
        raise FstError(f"{path}: cannot read VGG19 weights ({exc})") from None


def save_cut(source: str | os.PathLike, destination: str | os.PathLike, deepest: str = "block5_conv1",
             dtype: str = "float16") -> None:
    """Writes the ImageNet VGG19 convolutions up to `deepest` from Keras' notop file `source` into a
    small file `build_vgg` reads (about 26 MB in float16 up to block5_conv1, against 80 MB)."""
    deepest = layer_name(deepest)
    with h5py.File(source, "r") as f, atomic_path(destination, suffix=".h5") as tmp:
        with h5py.File(tmp, "w") as out:
            out.attrs[CUT_ATTR] = deepest
            for name in LAYERS[: LAYERS.index(deepest) + 1]:
                # Read in float32 and let numpy round: HDF5's own float32 -> float16 conversion on read
                # rounds a mantissa carry down (0.24997 became 0.125).
                kernel, bias = (f[name][w][()].astype(dtype) for w in f[name].attrs["weight_names"])
                out.create_dataset(f"{name}/kernel", data=kernel)
                out.create_dataset(f"{name}/bias", data=bias)
