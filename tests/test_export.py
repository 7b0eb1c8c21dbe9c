"""fst export and the ONNX / OpenVINO runners: round trips on a small random network, exports that
pad themselves, credits in the metadata, running without TensorFlow, int8, and one-line errors."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import make_style
from fst import images, styles, tiling
from fst.cli import main
from fst.errors import FstError
from fst.inference import stylize
from fst.runners import export, open_runner

pytestmark = pytest.mark.slow  # OpenVINO and LiteRT conversions, int8 calibration

pytest.importorskip("onnxruntime", reason="the export tests need pip install -e '.[test]'")

SIZES = [(2, 32, 48), (1, 21, 7)]


def batches():
    rng = np.random.default_rng(3)
    return [rng.uniform(0, 255, (*size, 3)).astype(np.float32) for size in SIZES]


@pytest.fixture(scope="module")
def style(tmp_path_factory):
    """A quarter-width random style with resize upsampling, like the shipped ones."""
    return styles.get_style(make_style("painted", tmp_path_factory.mktemp("styles"), seed=5, upsampling="resize"))


@pytest.fixture(scope="module")
def onnx_file(style, tmp_path_factory):
    """The style exported by the command, as a user does it."""
    path = tmp_path_factory.mktemp("export") / "painted.onnx"
    assert main(["export", str(style.weights), "-o", str(path)]) == 0
    return path


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(folder))
        yield folder


@pytest.fixture(scope="module")
def openvino_file(style, cache):
    """The style exported for OpenVINO through the cache that --runtime openvino uses."""
    return export.cached(style, "openvino")


def keras_output(style, batch):
    """What fst computes with the Keras network: the margin and grid padding, the network, the crop."""
    return tiling.run_frames(styles.load_model(style).predict_on_batch, batch)


def credits_of(meta: dict) -> tuple:
    return meta["fst.title"], meta["fst.artist"], meta["fst.year"], meta["fst.license"], json.loads(meta["fst.network"])


CREDITS = ("Test Pattern", "Nobody", "2026", "public domain", {"upsampling": "resize", "width": 0.25})


@pytest.mark.parametrize("upsampling", ["resize", "transpose"])
def test_portable_network_is_the_same_network(upsampling, tmp_path):
    """The network the exports are made from computes what the trained one does, from the same weights."""
    resolved = styles.get_style(make_style("same", tmp_path, seed=2, upsampling=upsampling))
    for batch in batches()[:1]:
        np.testing.assert_allclose(export.portable_model(resolved).predict_on_batch(batch),
                                   styles.load_model(resolved).predict_on_batch(batch), atol=2e-3)


@pytest.mark.parametrize("which", ["onnx", "openvino"])
def test_onnx_and_openvino_round_trip_with_credits(which, style, onnx_file, openvino_file):
    runner = open_runner(onnx_file if which == "onnx" else openvino_file)
    assert runner.pads_itself
    for batch in batches():
        out = runner(batch)
        assert out.shape == batch.shape and out.dtype == np.float32
        assert np.abs(out - keras_output(style, batch)).max() < 0.05
    assert credits_of(runner.metadata) == CREDITS
    assert runner.metadata["fst.style"] == "painted"


def run_raw(which: str, path, pixels: np.ndarray) -> np.ndarray:
    """The exported file run as a user of its runtime would, on one uint8 image: no fst in between."""
    batch = pixels[None].astype(np.float32)
    if which == "onnx":
        import onnxruntime as ort

        out = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"image": batch})[0]
    elif which == "openvino":
        import openvino as ov

        model = ov.Core().read_model(str(path))
        model.reshape(list(batch.shape))
        out = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})(batch)[0]
    else:
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(str(path))
        (entry,), (result,) = interpreter.get_input_details(), interpreter.get_output_details()
        interpreter.resize_tensor_input(entry["index"], batch.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(entry["index"], batch)
        interpreter.invoke()
        out = interpreter.get_tensor(result["index"])
    return np.clip(np.rint(out[0]), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("which", ["onnx", "openvino"])
def test_exported_model_stands_on_its_own(which, style, onnx_file, openvino_file, val_photo):
    """Run raw, an export gives the size it is given and the pixels of fst.stylize, borders included: it adds
    the mirrored margin and the grid padding itself. A 1x1 photo is a flat 16x16 square inside, where each
    instance norm divides rounding noise by sqrt(epsilon): its pixels depend on the order of the sums."""
    path = onnx_file if which == "onnx" else openvino_file
    photo = Image.open(val_photo).convert("RGB")
    assert run_raw(which, path, np.full((1, 1, 3), 90, np.uint8)).shape == (1, 1, 3)
    for width, height in [(2, 3), (7, 5), (333, 517), (1024, 768)]:
        pixels = np.asarray(photo.resize((width, height)))
        out, expected = run_raw(which, path, pixels), stylize(pixels, style, stroke_scale=1)
        assert out.shape == pixels.shape
        close = np.abs(out.astype(int) - expected) <= 1
        assert close.mean() >= 0.999 and close[0].all() and close[-1].all(), (width, height, close.mean())


def test_openvino_computes_in_float32_on_every_cpu(openvino_file):
    """Left to itself OpenVINO's CPU plugin computes in bfloat16 where the CPU has AVX512-BF16 (up to 7 grey
    levels from Keras, and the round trips above failed there): a float32 model is pinned to f32."""
    import openvino as ov

    compiled = open_runner(openvino_file).compiled((1, 16, 16, 3))
    assert compiled.get_property("INFERENCE_PRECISION_HINT") == ov.Type.f32


def test_bf16_is_a_named_choice_for_openvino(style, tmp_path):
    """A bf16 export is the float32 graph marked so that its runner asks OpenVINO for bfloat16: close to
    float32 where the CPU has BF16 instructions, and float32's own picture where it has not."""
    import openvino as ov

    path = export.export(style, tmp_path / "painted.bf16.xml", "openvino", "bf16")
    runner = open_runner(path)
    assert runner.metadata["fst.precision"] == "bf16" and runner.hint == "bf16"
    batch = batches()[0]
    out, reference = runner(batch), keras_output(style, batch)
    if "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        assert images.psnr(out, reference) > 30
    else:
        assert np.abs(out - reference).max() < 0.05
    with pytest.raises(FstError, match=r"^bf16 export is for openvino "):
        export.export(style, tmp_path / "painted.bf16.onnx", "onnx", "bf16")


def test_export_command_prints_only_its_result(style, tmp_path):
    """`fst export` printed seven TensorFlow and CUDA start-up lines on success."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run([sys.executable, "-m", "fst", "export", str(style.weights), "-o", str(tmp_path / "a.onnx")],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout == f"exported {style.weights} as onnx (float32) to {tmp_path / 'a.onnx'}\n"


def test_runtime_openvino_exports_once_into_the_cache(style, cache, openvino_file):
    assert openvino_file.parent == cache / "fst" / "exports" and openvino_file.with_suffix(".bin").is_file()
    made = openvino_file.stat().st_mtime_ns
    runner = open_runner(style.weights, "openvino")
    assert runner.path == openvino_file and openvino_file.stat().st_mtime_ns == made
    assert sorted(p.suffix for p in openvino_file.parent.iterdir()) == [".bin", ".xml"]


def test_litert_round_trip_with_credits(style, tmp_path, val_photo):
    from ai_edge_litert.interpreter import Interpreter
    from tensorflow.lite.tools import flatbuffer_utils

    path = export.export(style, tmp_path / "painted.tflite", "litert")
    interpreter = Interpreter(str(path))
    (entry,), (result,) = interpreter.get_input_details(), interpreter.get_output_details()
    for batch in batches():
        interpreter.resize_tensor_input(entry["index"], batch.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(entry["index"], batch)
        interpreter.invoke()
        assert np.abs(interpreter.get_tensor(result["index"]) - keras_output(style, batch)).max() < 0.05
    pixels = np.asarray(Image.open(val_photo).convert("RGB").resize((61, 45)))
    assert np.abs(run_raw("litert", path, pixels).astype(int) - stylize(pixels, style, stroke_scale=1)).max() <= 1
    model = flatbuffer_utils.read_model(str(path))
    (meta,) = [m for m in model.metadata if m.name.decode() == "fst"]
    assert credits_of(json.loads(bytes(model.buffers[meta.buffer].data))) == CREDITS


def test_saved_model_round_trip_with_credits(style, tmp_path):
    import tensorflow as tf

    path = export.export(style, tmp_path / "painted_saved_model", "saved_model")
    loaded = tf.saved_model.load(str(path))
    for batch in batches():
        assert np.abs(loaded.serve(tf.constant(batch)).numpy() - keras_output(style, batch)).max() < 0.05
    assert credits_of(json.loads((path / "assets.extra" / "fst.json").read_text())) == CREDITS


BLOCK_TENSORFLOW = """
import sys
class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "jax", "torch"):
            raise ImportError(f"{name} is blocked")
sys.meta_path.insert(0, Blocked())
from fst.cli import main
code = main(sys.argv[1:])
print(sorted(m for m in ("tensorflow", "keras", "jax") if m in sys.modules))
sys.exit(code)
"""


@pytest.mark.parametrize("which", ["onnx", "openvino", "cached"])
def test_exported_model_runs_without_tensorflow(which, style, onnx_file, openvino_file, cache, val_photo, tmp_path):
    """`fst run model.onnx` (or .xml), or `fst run STYLE --runtime onnx` once its export is cached, with
    TensorFlow, Keras and JAX made unimportable: same picture as Keras."""
    if which == "cached":
        export.cached(style, "onnx")
        model, runtime = style.weights, ["--runtime", "onnx"]
    else:
        model, runtime = (onnx_file if which == "onnx" else openvino_file), []
    out = tmp_path / "out.png"
    done = subprocess.run([sys.executable, "-c", BLOCK_TENSORFLOW, "run", str(model), str(val_photo), str(out),
                           "--max-size", "100", *runtime], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-800:]
    assert done.stdout.splitlines()[-1] == "[]" and done.stderr == ""
    expected = stylize(np.asarray(Image.open(val_photo).convert("RGB")), style, max_size=100)
    assert np.abs(np.asarray(Image.open(out)).astype(int) - expected).max() <= 1


def test_int8_export_runs_close_to_float(style, onnx_file, tmp_path, val_photo):
    """Only the residual blocks' convolutions are quantized; the picture stays near float32's."""
    import onnx

    path = export.export(style, tmp_path / "painted.int8.onnx", "onnx", "int8", val_photo.parent)
    quantized = [n.input[0] for n in onnx.load(path).graph.node if n.op_type == "DequantizeLinear"]
    assert len([name for name in quantized if "residual" in name]) >= 20
    assert not [name for name in quantized if name.startswith(("conv", "up"))]
    runner = open_runner(path)
    assert runner.metadata["fst.precision"] == "int8"
    photo = np.asarray(Image.open(val_photo).convert("RGB").resize((64, 61)), np.float32)[None]
    out, reference = runner(photo), open_runner(onnx_file)(photo)
    assert out.shape == photo.shape and 20 < images.psnr(out, reference) < 80


@pytest.mark.parametrize("floor", [0.0, 1000.0])
def test_openvino_int8_quantizes_convolutions_only(floor, style, openvino_file, tmp_path, val_photo, capfd, monkeypatch):
    """NNCF quantizes the inputs of the convolutions but the first and the last, and of nothing else (of
    the residual blocks' only when the PSNR floor is not met); the export is silent and the picture
    stays near float32's."""
    import openvino as ov

    monkeypatch.setattr(export, "INT8_PSNR", floor)  # pins the variant: the random network says nothing
    capfd.readouterr()
    assert main(["export", str(style.weights), "--format", "openvino", "--precision", "int8",
                 "--calibration", str(val_photo.parent), "-o", str(tmp_path / "painted.int8.xml")]) == 0
    said = capfd.readouterr()
    assert said.err == "" and "painted.int8.xml" in said.out and "━" not in said.out
    model = ov.Core().read_model(str(tmp_path / "painted.int8.xml"))
    fed = set()
    for op in model.get_ops():
        if op.get_type_name() == "FakeQuantize":
            for target in op.output(0).get_target_inputs():
                node = target.get_node()
                while node.get_type_name() == "Pad":  # the reflect pad in front of each convolution
                    node = next(iter(node.output(0).get_target_inputs())).get_node()
                fed.add((node.get_type_name(), node.get_friendly_name()))
    assert {kind for kind, _ in fed} == {"Convolution"}
    layers = {name.split("/")[0] for _, name in fed}
    residual = {f"residual{i}" for i in range(1, 6)}
    if floor > 100:
        assert layers == residual and len(fed) == 10
    else:
        assert layers == residual | {"conv2", "conv3", "up1", "up2"} and len(fed) == 14
    runner = open_runner(tmp_path / "painted.int8.xml")
    assert runner.metadata["fst.precision"] == "int8"
    photo = np.asarray(Image.open(val_photo).convert("RGB").resize((64, 61)), np.float32)[None]
    out, reference = runner(photo), open_runner(openvino_file)(photo)
    assert out.shape == photo.shape and 25 < images.psnr(out, reference) < 80


def test_unknown_format_is_a_one_line_error_without_tensorflow(tmp_path):
    script = ("import sys\nfrom fst.cli import main\ncode = main(['export', 'starry_night', '--format', 'coreml'])\n"
              "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))\nsys.exit(code)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 2 and done.stdout.strip() == "[]"
    assert done.stderr == ("fst: error: unknown export format 'coreml'; "
                           "choose one of onnx, openvino, litert, saved_model\n")


def test_missing_extra_is_named(style, onnx_file, monkeypatch, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "openvino" else real(name, *a))
    with pytest.raises(FstError, match=r'^openvino export needs the openvino package: pip install "fst-style\[openvino\]"$'):
        export.export(style, tmp_path / "x.xml", "openvino")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    runner = open_runner(onnx_file)
    with pytest.raises(FstError, match=r'^the onnx runtime needs the onnxruntime package: pip install "fst-style\[onnx\]"$'):
        runner(batches()[0])


def test_unwritable_destination_and_wrong_suffix(style, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["export", str(style.weights), "-o", str(blocker / "x.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"fst: error: {blocker / 'x.onnx'}: cannot write (") and err.count("\n") == 1
    assert main(["export", str(style.weights), "--format", "openvino", "-o", str(tmp_path / "x.onnx")]) == 2
    assert capsys.readouterr().err == f"fst: error: {tmp_path / 'x.onnx'}: the openvino format needs a .xml file name\n"
    assert not list(tmp_path.glob("x*"))
