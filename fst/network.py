"""The feed-forward transformation network of Johnson et al. (2016).

Written with Keras layers and ``keras.ops`` only, so the same network runs under
the TensorFlow, JAX and PyTorch backends.  Input and output are RGB images in
0..255, channels last.
"""

from __future__ import annotations

import keras
from keras import layers, ops

UPSAMPLING_MODES = ("transpose", "resize")

#: Multiply-accumulates per output pixel of the full-width network with
#: transpose upsampling (convolutions only): used for GFLOP/s figures.
MACS_PER_PIXEL = 126_144
#: The same with resize upsampling (nearest x2 and a 3x3 conv at the doubled size), as the shipped styles.
MACS_PER_PIXEL_RESIZE = 153_792


def kernel_init() -> keras.initializers.Initializer:
    """Uniform in +-1/sqrt(fan_in), PyTorch's default for convolutions.

    With Keras' Glorot default the untrained output is near black and the
    network learns the photo's content several times slower.
    """
    return keras.initializers.VarianceScaling(1.0 / 3.0, "fan_in", "uniform")


@keras.saving.register_keras_serializable(package="fst")
class ReflectionPadding2D(layers.Layer):
    """Pads height and width by mirroring the border, to avoid dark frames."""

    def __init__(self, padding: int, **kwargs):
        super().__init__(**kwargs)
        self.padding = padding

    def call(self, x):
        p = self.padding
        return ops.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], mode="reflect")

    def compute_output_shape(self, shape):
        grow = lambda n: None if n is None else n + 2 * self.padding
        return (shape[0], grow(shape[1]), grow(shape[2]), shape[3])

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}


@keras.saving.register_keras_serializable(package="fst")
class BlockConv2D(layers.Conv2D):
    """A stride-1 'valid' Conv2D computed on 4x4 pixel blocks.

    Same kernel variable and same result as ``Conv2D``, but the convolution runs
    as a 3x3 one on space-to-depth blocks (16x the channels).  CPU convolution
    kernels are slow with few output channels: for the 9x9 32->3 output layer
    this is about 3x faster.  Height and width of the input, less the kernel
    size plus one, must be multiples of 4.
    """

    block = 4

    def convolution_op(self, inputs, kernel):
        b, (kh, kw, cin, cout) = self.block, kernel.shape
        taps_h, taps_w = -(-(kh + b - 1) // b), -(-(kw + b - 1) // b)
        # Block kernel W[qh, qw, (sh, sw, c), (rh, rw, o)] = K[b*qh + sh - rh, b*qw + sw - rw, c, o].
        padded = ops.pad(kernel, [[b - 1, b * taps_h - kh], [b - 1, b * taps_w - kw], [0, 0], [0, 0]])
        q, s, r = ops.meshgrid(ops.arange(taps_h), ops.arange(b), ops.arange(b), indexing="ij")
        rows = b * q + s - r + b - 1
        q, s, r = ops.meshgrid(ops.arange(taps_w), ops.arange(b), ops.arange(b), indexing="ij")
        cols = b * q + s - r + b - 1
        w = ops.take(ops.take(padded, rows, axis=0), cols, axis=3)  # qh sh rh qw sw rw c o
        w = ops.transpose(w, (0, 3, 1, 4, 6, 2, 5, 7))
        w = ops.reshape(w, (taps_h, taps_w, b * b * cin, b * b * cout))

        n, h, wd = ops.shape(inputs)[0], ops.shape(inputs)[1], ops.shape(inputs)[2]
        out_h, out_w = h - kh + 1, wd - kw + 1
        x = ops.pad(inputs, [[0, 0], [0, b * (taps_h - 1) - kh + 1], [0, b * (taps_w - 1) - kw + 1], [0, 0]])
        x = ops.reshape(x, (n, (out_h // b) + taps_h - 1, b, (out_w // b) + taps_w - 1, b, cin))
        x = ops.reshape(ops.transpose(x, (0, 1, 3, 2, 4, 5)), (n, (out_h // b) + taps_h - 1, (out_w // b) + taps_w - 1, b * b * cin))
        y = ops.conv(x, w, padding="valid")
        y = ops.reshape(y, (n, out_h // b, out_w // b, b, b, cout))
        return ops.reshape(ops.transpose(y, (0, 1, 3, 2, 4, 5)), (n, out_h, out_w, cout))


def conv(filters: int, kernel: int, stride: int = 1, name: str | None = None, blocked: bool = False) -> keras.Sequential:
    """Reflection padding followed by a 'valid' convolution."""
    conv_class = BlockConv2D if blocked else layers.Conv2D
    return keras.Sequential(
        [ReflectionPadding2D(kernel // 2),
         conv_class(filters, kernel, stride, padding="valid", kernel_initializer=kernel_init())],
        name=name,
    )


def instance_norm(name: str | None = None, portable: bool = False) -> layers.Layer:
    """Instance normalisation: one group per channel."""
    if portable:
        return InstanceNormalization(name=name)
    return layers.GroupNormalization(groups=-1, epsilon=1e-5, name=name)


@keras.saving.register_keras_serializable(package="fst")
class InstanceNormalization(layers.Layer):
    """``GroupNormalization(groups=-1)`` written as means over height and width of the 4-D tensor, with
    the same gamma and beta (in the same order). GroupNormalization's 5-D reshape leaves exported
    graphs a reduction over non-adjacent axes that OpenVINO ran at 3.5 s of 5.9 s at 512 px."""

    def __init__(self, epsilon: float = 1e-5, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def build(self, shape):
        self.gamma = self.add_weight(name="gamma", shape=(shape[-1],), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(shape[-1],), initializer="zeros")

    def call(self, x):
        mean = ops.mean(x, axis=(1, 2), keepdims=True)
        variance = ops.mean(ops.square(x - mean), axis=(1, 2), keepdims=True)
        return (x - mean) * ops.rsqrt(variance + self.epsilon) * self.gamma + self.beta

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="fst")
class ResidualBlock(layers.Layer):
    """Two 3x3 conv + instance-norm layers with an identity shortcut."""

    def __init__(self, filters: int, portable: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.portable = portable
        self.conv1, self.norm1 = conv(filters, 3), instance_norm(portable=portable)
        self.conv2, self.norm2 = conv(filters, 3), instance_norm(portable=portable)

    def build(self, shape):
        self.conv1.build(shape)
        self.norm1.build(shape)
        self.conv2.build(shape)
        self.norm2.build(shape)

    def call(self, x):
        return self.forward(x, _own_statistics)

    def forward(self, x, normalize):
        """The block with ``normalize(norm_layer, x)`` standing for each instance norm."""
        y = ops.relu(normalize(self.norm1, self.conv1(x)))
        return x + normalize(self.norm2, self.conv2(y))

    def compute_output_shape(self, shape):
        return shape

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "portable": self.portable}


@keras.saving.register_keras_serializable(package="fst")
class NearestUpsampling2D(layers.Layer):
    """Nearest-neighbour x2: the same pixels as ``UpSampling2D``, whose two repeats lose the channel
    count in a TensorFlow graph of unknown height and width (LiteRT then needs TensorFlow's own
    ops for the next convolution). A reshape, a broadcast and a reshape, with the channel count spelled out."""

    def call(self, x):
        n, h, w, c = ops.shape(x)[0], ops.shape(x)[1], ops.shape(x)[2], x.shape[-1]
        x = ops.broadcast_to(ops.reshape(x, (n, h, 1, w, 1, c)), (n, h, 2, w, 2, c))
        return ops.reshape(x, (n, 2 * h, 2 * w, c))

    def compute_output_shape(self, shape):
        grow = lambda n: None if n is None else 2 * n
        return (shape[0], grow(shape[1]), grow(shape[2]), shape[3])


def upsample(filters: int, mode: str, name: str, portable: bool = False) -> keras.Sequential:
    """Doubles height and width: a stride-2 transpose conv, or nearest x2 and a 3x3 conv."""
    if mode == "transpose":
        return keras.Sequential(
            [layers.Conv2DTranspose(filters, 3, 2, padding="same", kernel_initializer=kernel_init())], name=name
        )
    return keras.Sequential(
        [NearestUpsampling2D() if portable else layers.UpSampling2D(2, interpolation="nearest"), ReflectionPadding2D(1),
         layers.Conv2D(filters, 3, kernel_initializer=kernel_init())],
        name=name,
    )


@keras.saving.register_keras_serializable(package="fst")
class PixelRange(layers.Layer):
    """``150 * tanh(x) + 127.5``, clipped to 0..255 when producing images.

    In training the loss sees the unclipped values (-22.5..277.5): a clipped
    pixel would get no gradient and could never recover (it shows as a black
    or white blot that grows).
    """

    def call(self, x, training=None):
        out = 150.0 * ops.tanh(x) + 127.5
        return out if training else ops.clip(out, 0.0, 255.0)


def build_network(upsampling: str = "transpose", width: float = 1.0, name: str = "transformer",
                  portable: bool = False) -> keras.Model:
    """Builds the transformation network for images of any size (a multiple of 4).

    ``upsampling`` is "transpose" (the paper) or "resize" (free of checkerboard
    artifacts); ``width`` scales every layer's channel count. ``portable`` builds the
    same network (same weights in the same order, see ``fst.runners.export``) from ops that every
    export format has and runs fast: a plain Conv2D output layer, nearest x2 without repeats, and
    instance normalisation as means over height and width.
    """
    if upsampling not in UPSAMPLING_MODES:
        raise ValueError(f"upsampling must be one of {UPSAMPLING_MODES}, not {upsampling!r}")
    if not width > 0:
        raise ValueError(f"width must be positive, not {width!r}")
    ch = lambda n: max(1, round(n * width))

    parts = {
        "conv1": conv(ch(32), 9, name="conv1"), "norm1": instance_norm("norm1", portable),
        "conv2": conv(ch(64), 3, 2, name="conv2"), "norm2": instance_norm("norm2", portable),
        "conv3": conv(ch(128), 3, 2, name="conv3"), "norm3": instance_norm("norm3", portable),
        **{f"residual{i}": ResidualBlock(ch(128), portable, name=f"residual{i}") for i in range(1, 6)},
        "up1": upsample(ch(64), upsampling, "up1", portable), "norm4": instance_norm("norm4", portable),
        "up2": upsample(ch(32), upsampling, "up2", portable), "norm5": instance_norm("norm5", portable),
        "conv_out": conv(3, 9, name="conv_out", blocked=not portable),
        # The output in float32 under a mixed-precision policy: bfloat16 would round pixels to 1 to 2 grey levels.
        "pixels": PixelRange(name="pixels", dtype="float32"),
    }
    image = keras.Input((None, None, 3), name="image")
    return keras.Model(image, _wire(parts, image), name=name)


def _wire(parts, image, normalize=None):
    """The network's layers in order; ``normalize(norm_layer, x)``, if given, stands for each instance norm."""
    if normalize is None:
        normalize, residual = _own_statistics, lambda block, x: block(x)
    else:
        residual = lambda block, x: block.forward(x, normalize)
    x = ops.relu(normalize(parts["norm1"], parts["conv1"](image)))
    x = ops.relu(normalize(parts["norm2"], parts["conv2"](x)))
    x = ops.relu(normalize(parts["norm3"], parts["conv3"](x)))
    for i in range(1, 6):
        x = residual(parts[f"residual{i}"], x)
    x = ops.relu(normalize(parts["norm4"], parts["up1"](x)))
    x = ops.relu(normalize(parts["norm5"], parts["up2"](x)))
    return parts["pixels"](parts["conv_out"](x))


def _own_statistics(norm: layers.Layer, x):
    """Instance normalisation as trained: each image by its own mean and variance."""
    return norm(x)


def moments(x) -> tuple:
    """Per-image, per-channel mean and variance of (N, H, W, C) features, as instance norm takes them."""
    return ops.moments(ops.cast(x, "float32"), axes=(1, 2), keepdims=True)


def normalize_with(norm: layers.Layer, x, mean, variance):
    """What the instance-norm layer ``norm`` computes, but with the given per-channel mean and variance."""
    inv = ops.rsqrt(variance + norm.epsilon) * ops.reshape(norm.gamma, (1, 1, 1, -1))
    out = ops.cast(x, "float32") * inv + (ops.reshape(norm.beta, (1, 1, 1, -1)) - mean * inv)
    return ops.cast(out, x.dtype)


def forward_with_statistics(model: keras.Model, image, statistics: list | None = None) -> tuple:
    """Runs ``model`` (from ``build_network``) on a batch with each instance norm's statistics fixed.

    With ``statistics=None`` every norm uses the batch's own per-image statistics, as the model
    does, and they are returned in call order.  With the list that such a call returned (say, for a
    thumbnail of a large image), every norm uses those instead: tiles of one image run this way are
    normalised alike, so they join without seams (thumbnail instance normalisation, Chen et al.,
    AAAI 2022).  Returns ``(pixels, statistics)``.
    """
    parts = {layer.name: layer for layer in model.layers}
    given = None if statistics is None else iter(statistics)
    used = []

    def normalize(norm, x):
        mean, variance = moments(x) if given is None else next(given)
        used.append((mean, variance))
        return normalize_with(norm, x, mean, variance)

    return _wire(parts, ops.convert_to_tensor(image, "float32"), normalize), used
