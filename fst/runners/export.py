"""Export a style's network for other runtimes: ONNX, OpenVINO IR, LiteRT (.tflite), SavedModel.

Every artefact stands on its own: it takes NHWC float32 RGB pixels in 0..255 of any batch, height
and width, adds the mirrored margin and the padding to the network's grid itself, and returns the
stylized pixels of the same shape, in 0..255, as ``fst.stylize`` paints them. The input is called
``image`` and, in ONNX, the output ``stylized``. The ONNX graph (which OpenVINO reads too) is
written directly in ONNX's operators (``onnx_graph``); LiteRT and the SavedModel are Keras' exports
of the portable network. The style's credits and network options go into the artefact's metadata:
ONNX ``metadata_props``, OpenVINO ``rt_info`` under ``fst``, a LiteRT metadata entry ``fst`` (JSON),
and ``assets.extra/fst.json`` in a SavedModel.

``precision="bf16"`` (OpenVINO) writes the float32 graph marked to run in bfloat16: the runner then
asks OpenVINO's CPU plugin for bf16, which CPUs with AVX512-BF16 or AMX compute (and others in
float32, the same pixels as a float32 export). ``precision="int8"`` quantizes convolutions after
training, calibrated on a few photos, with each runtime's own tool. ONNX: ONNX Runtime's static
quantization of the residual blocks' ten convolutions (int8 weights per channel, uint8 activations);
quantizing the upsampling ones as well took udnie from 39 to 27 dB of PSNR against float32 at
512 px. OpenVINO: NNCF's post-training quantization, with its bias correction, of every convolution
but the first and the last, or without the upsampling ones, or of the residual blocks' only: the
first of these that keeps ``INT8_PSNR`` dB of float32 over the calibration photos. Nothing else is
quantized (NNCF by default also quantizes the inputs of the instance norms, the residual sums and
the nearest-neighbour resizes, which took udnie to 28 dB).

The export needs Keras to read the weights (and TensorFlow for LiteRT and the SavedModel); running
the ONNX or OpenVINO file needs only its runtime.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from fst import styles
from fst.errors import FstError, install_hint
from fst.files import atomic_folder, atomic_path, write_atomic
from fst.runners.base import PADDED_INSIDE, PADDING_KEY

#: Format -> file suffix of the artefact (a SavedModel is a folder).
FORMATS = {"onnx": ".onnx", "openvino": ".xml", "litert": ".tflite", "saved_model": ""}
PRECISIONS = ("float32", "bf16", "int8")
#: What each format needs beyond fst itself, and the extra that installs it.
_NEEDS = {
    "onnx": (("onnx",), "onnx"),
    "openvino": (("onnx", "openvino"), "openvino"),
    "litert": ((), None),
    "saved_model": ((), None),
}
#: What int8 needs beyond the format's own extra: each runtime's quantization tool.
_INT8_NEEDS = {"onnx": ("onnxruntime",), "openvino": ("nncf",)}
#: Photos are shrunk to this size for calibration, and this many are used at most.
CALIBRATION_SIZE = 256
CALIBRATION_PHOTOS = 16
#: The least PSNR (dB, against float32, over the calibration photos) an OpenVINO int8 export keeps.
INT8_PSNR = 36.0
PIXELS = "NHWC float32 RGB 0..255 in, any H and W (margin and grid padding added inside), same shape 0..255 out"
#: How fst writes exported graphs: 2 since they pad themselves and use fused instance norms (the cache
#: makes new exports when it changes).
GRAPH = 2


def require(modules: tuple[str, ...], extra: str | None, what: str) -> None:
    """A one-line error naming the extra to install when one of the modules is missing."""
    import importlib.util

    for module in modules:
        if importlib.util.find_spec(module) is None:
            hint = install_hint(extra) if extra else f"pip install {module}"
            raise FstError(f"{what} needs the {module} package: {hint}")


def metadata(style: styles.Style, precision: str = "float32") -> dict[str, str]:
    """The artefact's metadata: the style's credits, its network options and the pixel convention."""
    return {
        "fst.style": style.name,
        "fst.title": style.title,
        "fst.artist": style.artist,
        "fst.year": style.year,
        "fst.license": style.license,
        "fst.network": json.dumps(style.network_options, sort_keys=True),
        "fst.precision": precision,
        "fst.pixels": PIXELS,
        PADDING_KEY: PADDED_INSIDE,
    }


def default_path(style: styles.Style, format: str, precision: str = "float32") -> Path:
    """``NAME.onnx``, ``NAME.int8.onnx``, ``NAME.xml``, ``NAME.tflite`` or ``NAME_saved_model``."""
    tag = "" if precision == "float32" else f".{precision}"
    if format == "saved_model":
        return Path(f"{style.name}{tag}_saved_model")
    return Path(f"{style.name}{tag}{FORMATS[format]}")


def portable_model(style: styles.Style):
    """The style's network built from ops every format has (``build_network(portable=True)``),
    with the trained weights: same variables in the same order as the model that trained them."""
    from fst.network import build_network

    model = build_network(**style.network_options, portable=True)
    model.set_weights(styles.load_model(style).get_weights())
    return model


def self_contained_model(style: styles.Style):
    """The portable network between the margin and grid padding of ``fst.runners.base.pad`` and the
    crop back, in ``keras.ops``: the model LiteRT and the SavedModel export, which takes any size."""
    import keras
    from keras import ops

    from fst.runners.base import MARGIN, MIN_SIDE

    def mirror(x, axis: int):
        n = ops.shape(x)[axis]
        side = ops.maximum((n + 2 * MARGIN + 3) // 4 * 4, MIN_SIDE)
        before = (side - n) // 2
        period = ops.maximum(2 * (n - 1), 1)
        steps = ops.mod(ops.arange(-before, side - before), period)
        return ops.take(x, ops.minimum(steps, period - steps), axis=axis), before, n

    class Padded(keras.layers.Layer):
        def __init__(self, network, **kwargs):
            super().__init__(**kwargs)
            self.network = network

        def call(self, x):
            x, top, height = mirror(x, 1)
            x, left, width = mirror(x, 2)
            y = self.network(x)
            return ops.slice(y, [0, top, left, 0], [ops.shape(y)[0], height, width, 3])

    image = keras.Input((None, None, 3), name="image")
    return keras.Model(image, Padded(portable_model(style), name="padded")(image), name=style.name)


def _signature():
    import keras

    return [keras.InputSpec(shape=(None, None, None, 3), dtype="float32", name="image")]


def _quiet_export(model, path: str, format: str) -> None:
    """Keras' ``Model.export`` without its converter's chatter (TensorFlow's deprecation warnings)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        model.export(path, format=format, verbose=False, input_signature=_signature())


def onnx_model(style: styles.Style, precision: str = "float32", calibration: list[Path] | None = None):
    """The style as an ``onnx.ModelProto`` named ``image`` -> ``stylized``, with the metadata."""
    import onnx

    from fst.runners.onnx_graph import network_graph

    model = network_graph(styles.load_model(style), metadata(style, precision))
    if precision == "int8":
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.onnx")
            onnx.save(model, path)
            model = _quantize_onnx(path, os.path.join(tmp, "int8.onnx"), calibration or [])
        del model.metadata_props[:]
        for key, value in metadata(style, precision).items():
            model.metadata_props.add(key=key, value=value)
    return model


def _calibration_input(photo: Path):
    """One calibration photo as the graph's input, shrunk (the graph pads it itself)."""
    from fst import images

    rgb, _ = images.load_image(photo)
    return images.resize_long_side(rgb, CALIBRATION_SIZE)[None].astype("float32")


class _Calibration:
    """ONNX Runtime's calibration reader: one photo at a time."""

    def __init__(self, photos: list[Path]):
        self.photos = iter(photos)

    def get_next(self):
        photo = next(self.photos, None)
        return None if photo is None else {"image": _calibration_input(photo)}


@contextlib.contextmanager
def _errors_only(logger_name: str | None):
    """A logger (the root logger for None) held at ERROR for a block: the quantizers' chatter."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _quantize_onnx(src: str, dst: str, photos: list[Path]):
    """Static int8 quantization of the residual blocks' convolutions: QDQ nodes around int8 weights
    (per channel, symmetric) and uint8 activations, their ranges from the calibration photos."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    convolutions = [node.name for node in onnx.load(src).graph.node if node.op_type == "Conv"]
    residual = [name for name in convolutions if "residual" in name]  # onnx_graph names nodes after the Keras layers
    with _errors_only(None):  # its advice to pre-process goes to the root logger on every call
        quantize_static(src, dst, _Calibration(photos), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=["Conv"], calibrate_method=CalibrationMethod.MinMax,
                        nodes_to_exclude=[name for name in convolutions if name not in residual])
    return onnx.load(dst)


#: The convolutions (by layer name prefix) OpenVINO int8 quantizes, fastest first. The upsampling ones
#: gain most and cost most (udnie on 10 val photos at 512 px: 42.7 dB on average and 34.9 on the
#: worst with them, 1.84x float32's speed at 1024 px; 49.1 and 44.0 without them, 1.31x).
INT8_VARIANTS = (("conv2", "conv3", "residual", "up"), ("conv2", "conv3", "residual"), ("residual",))


def _quantize_openvino(model, photos: list[Path]):
    """NNCF's int8 quantization of an OpenVINO model's convolutions (int8 weights per channel,
    activations per tensor, fast bias correction): of the first of INT8_VARIANTS that keeps INT8_PSNR
    dB of float32 over the calibration photos (the residual blocks' only if none does).
    Instance norms, residual sums and nearest-neighbour resizes stay float32: NNCF would otherwise
    quantize their inputs too."""
    from fst import images

    inputs = [_calibration_input(photo) for photo in photos]
    reference = _pixels(model, inputs)
    convolutions = [op.get_friendly_name() for op in model.get_ops() if op.get_type_name() == "Convolution"]
    for layers in INT8_VARIANTS:
        quantized = _nncf(model, inputs, [name for name in convolutions if not name.startswith(layers)])
        if layers == INT8_VARIANTS[-1] or images.psnr(_pixels(quantized, inputs), reference) >= INT8_PSNR:
            return quantized


def _nncf(model, inputs: list, ignored: list[str]):
    """``nncf.quantize`` of the convolutions not in ``ignored``, without its logging and progress bars."""
    import io

    import nncf

    with _errors_only("nncf"), contextlib.redirect_stdout(io.StringIO()):
        return nncf.quantize(model, nncf.Dataset(inputs), subset_size=len(inputs),
                             ignored_scope=nncf.IgnoredScope(names=ignored, types=["MVN", "Add", "Interpolate"]))


def _pixels(model, inputs: list):
    """The model's output pixels for every input, clipped to 0..255 and laid end to end (float32 compute)."""
    import numpy as np
    import openvino as ov

    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return np.concatenate([np.clip(compiled(x)[0], 0, 255).ravel() for x in inputs])


def calibration_photos(folder: str | os.PathLike | None) -> list[Path]:
    """Up to CALIBRATION_PHOTOS photos from folder, spread over its name order."""
    from fst import images

    if folder is None:
        return []
    found = images.find_images(folder) if Path(folder).is_dir() else []
    if not found:
        raise FstError(f"{folder}: no calibration photos found")
    step = max(1, len(found) // CALIBRATION_PHOTOS)
    return found[::step][:CALIBRATION_PHOTOS]


def _write_onnx(model, dst: Path) -> None:
    write_atomic(model.SerializeToString(), dst)


def _write_openvino(model, style: styles.Style, precision: str, dst: Path, photos: list[Path]) -> None:
    """The ONNX graph read by OpenVINO (int8: then quantized by NNCF on the calibration photos), saved
    as ``.xml`` + ``.bin`` (the ``.bin`` first, each atomically)."""
    import openvino as ov

    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "model.onnx")
        _write_onnx(model, Path(src))
        ov_model = ov.convert_model(src)
        if precision == "int8":
            ov_model = _quantize_openvino(ov_model, photos)
        for key, value in metadata(style, precision).items():
            ov_model.set_rt_info(value, ["fst", key.removeprefix("fst.")])
        ov.save_model(ov_model, os.path.join(tmp, "model.xml"), compress_to_fp16=False)
        with atomic_path(dst.with_suffix(".bin")) as part:
            shutil.copyfile(os.path.join(tmp, "model.bin"), part)
        with atomic_path(dst) as part:
            shutil.copyfile(os.path.join(tmp, "model.xml"), part)


def _write_litert(style: styles.Style, dst: Path) -> None:
    """A .tflite file of builtin ops only, with the metadata as a JSON entry named ``fst``."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.tflite")
        _quiet_export(self_contained_model(style), path, "litert")
        model = flatbuffer_utils.read_model(path)
    buffer = schema.BufferT()
    buffer.data = list(json.dumps(metadata(style)).encode("utf-8"))
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = "fst", len(model.buffers) - 1
    model.metadata = [*(model.metadata or []), entry]
    write_atomic(bytes(flatbuffer_utils.convert_object_to_bytearray(model)), dst)


def _write_saved_model(style: styles.Style, dst: Path) -> None:
    """A SavedModel folder (signature ``serve``), the metadata in ``assets.extra/fst.json``; replaced whole."""
    try:
        with atomic_folder(dst) as tmp:
            os.rmdir(tmp)  # Keras' export makes the folder itself
            _quiet_export(self_contained_model(style), str(tmp), "tf_saved_model")
            (tmp / "assets.extra").mkdir(exist_ok=True)
            (tmp / "assets.extra" / "fst.json").write_text(json.dumps(metadata(style), indent=1), encoding="utf-8")
    except OSError as exc:
        raise FstError(f"{dst}: cannot write ({exc.strerror or exc})") from None


def export(
    style: str | os.PathLike | styles.Style,
    dst: str | os.PathLike | None = None,
    format: str = "onnx",
    precision: str = "float32",
    calibration: str | os.PathLike | None = None,
) -> Path:
    """Exports a style (a name, a ``.weights.h5`` path or a Style) to dst (default ``NAME.onnx`` and so on
    in the current folder); returns dst. ``precision="int8"`` needs a folder of ``calibration`` photos."""
    if format not in FORMATS:
        raise FstError(f"unknown export format {format!r}; choose one of {', '.join(FORMATS)}")
    if precision not in PRECISIONS:
        raise FstError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision != "float32" and format not in ("onnx", "openvino"):
        raise FstError(f"{precision} export is for onnx and openvino, not {format}")
    if precision == "bf16" and format != "openvino":
        raise FstError("bf16 export is for openvino (ONNX Runtime has no bfloat16 CPU kernels)")
    resolved = styles.get_style(style)
    dst = Path(dst) if dst is not None else default_path(resolved, format, precision)
    styles.check_name(resolved.name)
    if FORMATS[format] and dst.suffix != FORMATS[format]:
        raise FstError(f"{dst}: the {format} format needs a {FORMATS[format]} file name")
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FstError(f"{dst}: cannot write ({exc.strerror or exc})") from None
    modules, extra = _NEEDS[format]
    require(modules + (_INT8_NEEDS[format] if precision == "int8" else ()), extra, f"{format} export")
    photos = calibration_photos(calibration)
    if precision == "int8" and not photos:
        raise FstError("int8 export needs calibration photos (--calibration FOLDER)")
    from fst.quiet import load_keras, unless_asked

    load_keras()
    # The converters load more of TensorFlow, which prints its start-up lines again: held back too.
    with unless_asked():
        if format == "onnx":
            _write_onnx(onnx_model(resolved, precision, photos), dst)
        elif format == "openvino":
            _write_openvino(onnx_model(resolved), resolved, precision, dst, photos)
        elif format == "litert":
            _write_litert(resolved, dst)
        else:
            _write_saved_model(resolved, dst)
    return dst


def cache_dir() -> Path:
    """Where ``--runtime onnx|openvino`` keeps the exports it makes: ``$XDG_CACHE_HOME/fst/exports``."""
    cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_home) / "fst" / "exports"


def cached(style: str | os.PathLike | styles.Style, format: str) -> Path:
    """The style's float32 export for format, made once and reused while the weights file and the way
    fst writes graphs are unchanged (the file name carries a hash of its bytes and ``GRAPH``)."""
    resolved = styles.get_style(style)
    digest = hashlib.sha256(resolved.weights.read_bytes()).hexdigest()[:12]
    path = cache_dir() / f"{resolved.name}-{digest}-g{GRAPH}{FORMATS[format]}"
    if not path.is_file():
        export(resolved, path, format)
    return path
