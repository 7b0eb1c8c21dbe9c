"""A style's network written directly in ONNX's own operators, from the trained Keras model's weights.

The graph ONNX Runtime and OpenVINO run well: channels first throughout (one transpose in, one out),
each instance normalisation one ``InstanceNormalization`` node (OpenVINO reads it as an MVN) instead
of the eight elementwise passes over full-size tensors a converted Keras graph has, reflection padding
as ``Pad``, and nearest x2 as ``Resize``. The graph stands on its own: it adds the mirrored margin and
pads to the network's grid itself (``fst.runners.base.pad``'s indices, computed from the input's
shape), and crops back, so any NHWC float32 image in 0..255 gives the same size out, with the
pixels of ``fst.stylize``.
"""

from __future__ import annotations

import numpy as np

from fst.runners.base import MARGIN, MIN_SIDE

#: ONNX Runtime since 1.12 and OpenVINO since 2022 read this opset.
OPSET = 17


class _Graph:
    """Nodes and constants, appended in order."""

    def __init__(self):
        self.nodes, self.constants = [], []

    def const(self, name: str, value) -> str:
        from onnx import numpy_helper

        self.constants.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], name: str, **attributes) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(op_type, inputs, [name], name=name, **attributes))
        return name


def _weights(layer) -> list[np.ndarray]:
    import keras

    return [keras.ops.convert_to_numpy(w).astype(np.float32) for w in layer.weights]


def _mirror(g: _Graph, x: str, axis: int) -> tuple[str, str, str]:
    """Pads one side of x (NCHW, axis 2 or 3) as ``base.pad`` does: ``base.pad_amounts`` and
    ``base.mirror_indices`` in integer operators. Returns the padded tensor, the padding before and the
    side's length (int64 scalars)."""
    a = f"pad{axis}"
    n = g.op("Gather", [g.op("Shape", [x], f"{a}/shape"), g.const(f"{a}/axis", np.int64(axis))], f"{a}/n", axis=0)
    one, two, four = (g.const(f"{a}/{v}", np.int64(v)) for v in (1, 2, 4))
    grid = g.op("Mul", [g.op("Div", [g.op("Add", [n, g.const(f"{a}/margins", np.int64(2 * MARGIN + 3))], f"{a}/up"),
                                     four], f"{a}/quarters"), four], f"{a}/grid")
    grid = g.op("Max", [grid, g.const(f"{a}/min_side", np.int64(MIN_SIDE))], f"{a}/side")
    total = g.op("Sub", [grid, n], f"{a}/total")
    before = g.op("Div", [total, two], f"{a}/before")
    end = g.op("Sub", [grid, before], f"{a}/end")
    steps = g.op("Range", [g.op("Neg", [before], f"{a}/start"), end, one], f"{a}/steps")
    period = g.op("Max", [g.op("Mul", [g.op("Sub", [n, one], f"{a}/n-1"), two], f"{a}/2(n-1)"), one], f"{a}/period")
    steps = g.op("Mod", [steps, period], f"{a}/folded")
    mirrored = g.op("Min", [steps, g.op("Sub", [period, steps], f"{a}/back")], f"{a}/indices")
    return g.op("Gather", [x, mirrored], f"{a}/mirrored", axis=axis), before, n


def _reflect_pad(g: _Graph, x: str, pad, name: str) -> str:
    """``fst.network.ReflectionPadding2D`` as a reflect ``Pad`` of height and width."""
    p = pad.padding
    return g.op("Pad", [x, g.const(f"{name}/pads", np.array([0, 0, p, p, 0, 0, p, p], np.int64))], f"{name}/pad",
                mode="reflect")


def _conv(g: _Graph, x: str, pad, conv, name: str) -> str:
    """Reflection padding and a convolution: ``fst.network.conv``, and the end of resize upsampling."""
    kernel, bias = _weights(conv)
    x = _reflect_pad(g, x, pad, name)
    return g.op("Conv", [x, g.const(f"{name}/kernel", kernel.transpose(3, 2, 0, 1)), g.const(f"{name}/bias", bias)],
                name, kernel_shape=list(kernel.shape[:2]), strides=list(conv.strides))


def block_kernel(kernel: np.ndarray, block: int = 4) -> np.ndarray:
    """A stride-1 convolution's kernel (kh, kw, cin, cout) as the kernel of the same convolution on
    ``block`` x ``block`` pixel blocks (``fst.network.BlockConv2D``): (taps, taps, block²·cin, block²·cout),
    input channels in SpaceToDepth's order and output channels in DepthToSpace's (DCR)."""
    b, (kh, kw, cin, cout) = block, kernel.shape
    taps_h, taps_w = -(-(kh + b - 1) // b), -(-(kw + b - 1) // b)
    padded = np.pad(kernel, [(b - 1, b * taps_h - kh), (b - 1, b * taps_w - kw), (0, 0), (0, 0)])
    q, s, r = np.meshgrid(np.arange(taps_h), np.arange(b), np.arange(b), indexing="ij")
    rows = b * q + s - r + b - 1
    q, s, r = np.meshgrid(np.arange(taps_w), np.arange(b), np.arange(b), indexing="ij")
    cols = b * q + s - r + b - 1
    w = padded[rows][:, :, :, cols]  # qh sh rh qw sw rw c o
    return w.transpose(0, 3, 1, 4, 6, 2, 5, 7).reshape(taps_h, taps_w, b * b * cin, b * b * cout)


def _output_conv(g: _Graph, x: str, layer, name: str, block: int = 4) -> str:
    """The 9x9 convolution to 3 channels, run as a 3x3 one on 4x4 pixel blocks: with 3 output channels
    the plain convolution ran at a fifth of the speed of the others (343 ms of 1,580 at 512 px on ONNX
    Runtime, for 5% of the multiply-adds)."""
    pad, conv = layer.layers
    kernel, bias = _weights(conv)
    x = g.op("SpaceToDepth", [_reflect_pad(g, x, pad, name)], f"{name}/blocks", blocksize=block)
    w = block_kernel(kernel, block)
    x = g.op("Conv", [x, g.const(f"{name}/kernel", w.transpose(3, 2, 0, 1)),
                      g.const(f"{name}/bias", np.tile(bias, block * block))], name, kernel_shape=list(w.shape[:2]))
    return g.op("DepthToSpace", [x], f"{name}/pixels", blocksize=block, mode="DCR")


def _norm(g: _Graph, x: str, layer, name: str) -> str:
    gamma, beta = _weights(layer)
    return g.op("InstanceNormalization", [x, g.const(f"{name}/gamma", gamma), g.const(f"{name}/beta", beta)], name,
                epsilon=float(layer.epsilon))


def _upsample(g: _Graph, x: str, layer, name: str) -> str:
    """Nearest x2 and a reflection-padded 3x3 convolution, or a stride-2 transpose convolution
    (Keras' ``same``: the one pixel of padding it drops comes off the end)."""
    if len(layer.layers) == 1:
        kernel, bias = _weights(layer.layers[0])
        return g.op("ConvTranspose", [x, g.const(f"{name}/kernel", kernel.transpose(3, 2, 0, 1)),
                                      g.const(f"{name}/bias", bias)], name,
                    kernel_shape=list(kernel.shape[:2]), strides=[2, 2], pads=[0, 0, 1, 1])
    x = g.op("Resize", [x, "", g.const(f"{name}/scales", np.array([1, 1, 2, 2], np.float32))], f"{name}/nearest",
             mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    return _conv(g, x, *layer.layers[1:], name)


def network_graph(model, metadata: dict[str, str]):
    """The ``onnx.ModelProto`` of a network from ``fst.network.build_network``: input ``image`` (N, H, W,
    3) float32 0..255 of any height and width, output ``stylized`` of the same shape."""
    from onnx import TensorProto, checker, helper

    layers = {layer.name: layer for layer in model.layers}
    g = _Graph()
    x = g.op("Transpose", ["image"], "to_nchw", perm=[0, 3, 1, 2])
    x, top, height = _mirror(g, x, 2)
    x, left, width = _mirror(g, x, 3)

    def conv_norm_relu(x: str, conv: str, norm: str) -> str:
        return g.op("Relu", [_norm(g, _conv(g, x, *layers[conv].layers, conv), layers[norm], norm)], f"{norm}/relu")

    x = conv_norm_relu(x, "conv1", "norm1")
    x = conv_norm_relu(x, "conv2", "norm2")
    x = conv_norm_relu(x, "conv3", "norm3")
    for i in range(1, 6):
        block, name = layers[f"residual{i}"], f"residual{i}"
        y = g.op("Relu", [_norm(g, _conv(g, x, *block.conv1.layers, f"{name}/conv1"), block.norm1, f"{name}/norm1")],
                 f"{name}/relu")
        y = _norm(g, _conv(g, y, *block.conv2.layers, f"{name}/conv2"), block.norm2, f"{name}/norm2")
        x = g.op("Add", [x, y], f"{name}/add")
    for up, norm in (("up1", "norm4"), ("up2", "norm5")):
        x = g.op("Relu", [_norm(g, _upsample(g, x, layers[up], up), layers[norm], norm)], f"{norm}/relu")
    x = g.op("Tanh", [_output_conv(g, x, layers["conv_out"], "conv_out")], "pixels/tanh")
    x = g.op("Add", [g.op("Mul", [x, g.const("pixels/scale", np.float32(150.0))], "pixels/scaled"),
                     g.const("pixels/middle", np.float32(127.5))], "pixels/shifted")
    x = g.op("Clip", [x, g.const("pixels/low", np.float32(0.0)), g.const("pixels/high", np.float32(255.0))],
             "pixels")
    starts = g.op("Concat", [g.op("Unsqueeze", [v, g.const(f"crop/axis_{v}", np.array([0], np.int64))], f"crop/{v}")
                             for v in (top, left)], "crop/starts", axis=0)
    sizes = g.op("Concat", [g.op("Unsqueeze", [v, g.const(f"crop/axis_{v}", np.array([0], np.int64))], f"crop/{v}")
                            for v in (height, width)], "crop/sizes", axis=0)
    ends = g.op("Add", [starts, sizes], "crop/ends")
    x = g.op("Slice", [x, starts, ends, g.const("crop/axes", np.array([2, 3], np.int64))], "crop")
    g.op("Transpose", [x], "stylized", perm=[0, 2, 3, 1])

    dims = ["batch", "height", "width", 3]
    graph = helper.make_graph(g.nodes, model.name, [helper.make_tensor_value_info("image", TensorProto.FLOAT, dims)],
                              [helper.make_tensor_value_info("stylized", TensorProto.FLOAT, dims)], g.constants)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="fst")
    proto.ir_version = 8  # what ONNX Runtime 1.12+ and OpenVINO read
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=value)
    checker.check_model(proto)
    return proto
