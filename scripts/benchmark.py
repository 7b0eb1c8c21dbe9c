"""Inference benchmark: the transformation network's speed against the machine's convolution ceiling.

    python scripts/benchmark.py                    # 256, 512, 1024 square, float32
    python scripts/benchmark.py --large 8000x6000  # also a tiled large image: time and peak memory
    python scripts/benchmark.py --train            # training throughput, 256x256, batch 4 (needs VGG19)
    KERAS_BACKEND=jax python scripts/benchmark.py --train
    python scripts/benchmark.py --sizes --video     # fst video end to end against the network alone
    python scripts/benchmark.py --runtimes keras onnx openvino onnx-int8 openvino-int8 --style starry_night

With --runtimes, a shipped style is exported (fst.runners.export) and every runner is timed side by side in
this process at each size (through ``fst.tiling.run_frames``, so with the 16 px mirrored margin the
network always sees; GFLOP/s count those pixels too), against the 3x3-conv ceiling measured in the
same run on each runtime; then
PSNR against float32 Keras at 512 px on val photos, the largest difference in grey levels at 256, 512
and an odd size, and the images/s of a whole `fst run` over a folder.

Each figure is the median of several runs after a warm-up, through Keras'
compiled predict function (tf.function / jax.jit), not eager calls.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import keras
import numpy as np

from fst.network import MACS_PER_PIXEL, MACS_PER_PIXEL_RESIZE, build_network


def median_seconds(fn, x, repeats: int) -> float:
    fn(x)
    fn(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.asarray(fn(x))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def conv_ceiling(repeats: int) -> float:
    """GFLOP/s of one 3x3 128->128 convolution on a 256x256 map: what this machine can do."""
    x = keras.Input((None, None, 128))
    model = keras.Model(x, keras.layers.Conv2D(128, 3, padding="same")(x))
    data = np.random.default_rng(0).normal(size=(1, 256, 256, 128)).astype("float32")
    seconds = median_seconds(model.predict_on_batch, data, repeats)
    return 2 * 256 * 256 * 9 * 128 * 128 / seconds / 1e9


def onnx_conv(path: str) -> None:
    """One 3x3 128->128 convolution as an ONNX file (NHWC in and out, like the exports)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = np.random.default_rng(0).normal(size=(128, 128, 3, 3)).astype("float32") * 0.05
    nodes = [helper.make_node("Transpose", ["x"], ["nchw"], perm=[0, 3, 1, 2]),
             helper.make_node("Conv", ["nchw", "w"], ["y"], pads=[1, 1, 1, 1]),
             helper.make_node("Transpose", ["y"], ["out"], perm=[0, 2, 3, 1])]
    graph = helper.make_graph(nodes, "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 256, 256, 128])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 256, 256, 128])],
                              [numpy_helper.from_array(weight, "w")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def compare_runtimes(names: list[str], style: str, sizes: list[int], repeats: int, calibration: str,
                     photos: str, psnr_photos: int, folder_photos: int) -> None:
    """Every runner on one style side by side: speed against the conv ceiling, agreement with Keras, fst run."""
    import tempfile
    from pathlib import Path

    from PIL import Image

    from fst import images, styles, tiling
    from fst.cli import main as fst_main
    from fst.runners import export
    from fst.runners.keras import KerasRunner
    from fst.runners.onnx import OnnxRunner
    from fst.runners.base import MARGIN, pad_amounts
    from fst.runners.openvino import OpenVinoRunner

    tmp = Path(tempfile.mkdtemp(prefix="fst-bench-"))
    resolved = styles.get_style(style)
    files = {}
    for name in names:
        if name == "keras":
            continue
        runtime, _, precision = name.partition("-")
        fmt = "onnx" if runtime == "onnx" else "openvino"
        precision = "int8" if precision == "int8" else "float32"
        key = (fmt, precision)
        if key not in files:
            began = time.perf_counter()
            files[key] = export.export(resolved, tmp / export.default_path(resolved, fmt, precision), fmt, precision,
                                       calibration if precision == "int8" else None)
            print(f"exported {files[key].name} in {time.perf_counter() - began:.0f} s")
    runners, sizes_on_disk = {}, {}
    for name in names:
        runtime, _, variant = name.partition("-")
        if runtime == "keras":
            runners[name] = KerasRunner(resolved)
            sizes_on_disk[name] = resolved.weights.stat().st_size
            continue
        path = files[("onnx" if runtime == "onnx" else "openvino", "int8" if variant == "int8" else "float32")]
        runners[name] = OnnxRunner(path) if runtime == "onnx" else OpenVinoRunner(path, hint=variant if variant in ("bf16", "f16") else "f32")
        sizes_on_disk[name] = path.stat().st_size + (path.with_suffix(".bin").stat().st_size if path.suffix == ".xml" else 0)

    conv_file = str(tmp / "conv.onnx")
    onnx_conv(conv_file)
    data = np.random.default_rng(0).normal(size=(1, 256, 256, 128)).astype("float32")
    conv_flops = 2 * 256 * 256 * 9 * 128 * 128
    ceilings = {"keras": conv_ceiling(repeats)}
    if any(n.startswith("onnx") for n in names):
        ceilings["onnx"] = conv_flops / median_seconds(OnnxRunner(conv_file), data, repeats) / 1e9
    if any(n.startswith("openvino") for n in names):
        ceilings["openvino"] = conv_flops / median_seconds(OpenVinoRunner(conv_file), data, repeats) / 1e9
    ceiling = max(ceilings.values())
    print("ceiling: 3x3 conv 128->128 at 256x256, float32: "
          + ", ".join(f"{k} {v:.1f}" for k, v in ceilings.items()) + f" GFLOP/s; the best, {ceiling:.1f}, is 1.00\n")

    options = resolved.network_options
    macs = None if options.get("width", 1.0) != 1.0 else (
        MACS_PER_PIXEL_RESIZE if options.get("upsampling") == "resize" else MACS_PER_PIXEL)
    print("| runner | file MiB | " + " | ".join(f"{s} px ms" for s in sizes) + f" | GFLOP/s at {sizes[-1]} | of ceiling |")
    print("| --- | ---: |" + " ---: |" * (len(sizes) + 2))
    # Each runner as fst runs it (tiling.run_frames): the Keras runner is given the margin and grid
    # padding, an export that pads itself adds them inside; the network sees the same pixels either way.
    side = sizes[-1] + sum(pad_amounts(sizes[-1], MARGIN))
    for name, runner in runners.items():
        row = []
        for size in sizes:
            x = np.random.default_rng(0).uniform(0, 255, (1, size, size, 3)).astype("float32")
            seconds = median_seconds(lambda b, runner=runner: tiling.run_frames(runner, b), x, repeats)
            row.append(f"{seconds * 1e3:.0f}")
        gflops = 2 * macs * side ** 2 / seconds / 1e9 if macs else float("nan")
        print(f"| {name} | {sizes_on_disk[name] / 2**20:.1f} | " + " | ".join(row) + f" | {gflops:.1f} | {gflops / ceiling:.2f} |")

    val = images.find_images(photos)
    print(f"\n| runner | PSNR at 512 px ({psnr_photos} val photos), dB, mean / min | max grey-level difference at 256, 512, 333x517 |")
    print("| --- | ---: | ---: |")
    reference = runners[names[0]] if names[0] == "keras" else KerasRunner(resolved)
    pictures = [np.asarray(Image.open(p).convert("RGB").resize((512, 512), Image.Resampling.BICUBIC)) for p in val[:psnr_photos]]
    expected = [images.to_uint8(tiling.run_image(reference, p)) for p in pictures]
    odd = [np.asarray(Image.open(val[0]).convert("RGB").resize(wh, Image.Resampling.BICUBIC)) for wh in ((256, 256), (512, 512), (517, 333))]
    odd_expected = [images.to_uint8(tiling.run_image(reference, p)) for p in odd]
    for name, runner in runners.items():
        scores = [images.psnr(images.to_uint8(tiling.run_image(runner, p)), e) for p, e in zip(pictures, expected, strict=True)]
        worst = [int(np.abs(images.to_uint8(tiling.run_image(runner, p)).astype(int) - e).max())
                 for p, e in zip(odd, odd_expected, strict=True)]
        print(f"| {name} | {np.mean(scores):.1f} / {np.min(scores):.1f} | {', '.join(map(str, worst))} |")
        if name != "keras":
            stem = name.replace("-", "_")
            out = images.to_uint8(tiling.run_image(runner, pictures[0]))
            Image.fromarray(np.hstack([expected[0], out])).save(tmp / f"{stem}_vs_keras.png")

    src = tmp / "photos"
    src.mkdir()
    for p in val[:folder_photos]:
        (src / p.name).write_bytes(p.read_bytes())
    print(f"\n| runner | fst run over {folder_photos} val photos (256x256), images/s |")
    print("| --- | ---: |")
    for name in runners:
        runtime, _, variant = name.partition("-")
        if variant in ("bf16", "f16"):
            continue  # a precision hint that fst run has no option for
        model = style if runtime == "keras" else str(files[("onnx" if runtime == "onnx" else "openvino",
                                                                  "int8" if variant == "int8" else "float32")])
        args = ["run", model, str(src), str(tmp / f"out_{name}"), "--runtime", runtime]
        fst_main(args + [])  # warm-up: loads the model, compiles for the size
        began = time.perf_counter()
        fst_main(args)
        print(f"| {name} | {folder_photos / (time.perf_counter() - began):.1f} |")
    print(f"\nexports and side-by-side pictures (Keras left) in {tmp}")


def large_image(model, size: str) -> None:
    """Stylizes one large random image through the tiled path; prints time and peak memory."""
    import tempfile

    from fst.inference import stylize
    from fst.styles import save_style

    w, h = map(int, size.lower().split("x"))
    folder = tempfile.mkdtemp()
    path = save_style(model, "bench", {}, folder, {"upsampling": "transpose", "width": 1.0}).weights
    image = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    out = stylize(image, path)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n{w}x{h} tiled: {seconds:.1f} s, output {out.shape}, "
          f"peak RSS {peak:.0f} MiB (was {before:.0f} MiB before; image itself {image.nbytes / 2**20:.0f} MiB)")


def training_throughput(image_size: int, batch_size: int, steps: int, vgg_weights: str | None) -> None:
    """Images per second of full training steps (network + VGG19 loss + Adam) on random data."""
    from fst.training.config import TrainConfig
    from fst.training.losses import PerceptualLoss
    from fst.training.train import StyleTrainer

    rng = np.random.default_rng(0)
    loss = PerceptualLoss(TrainConfig().loss, vgg_weights)
    loss.set_style(rng.uniform(0, 255, (512, 512, 3)))
    trainer = StyleTrainer(build_network(), loss)
    trainer.compile(optimizer=keras.optimizers.Adam(1e-3))
    images = rng.uniform(0, 255, (batch_size * steps, image_size, image_size, 3)).astype("float32")
    trainer.fit(images[: 2 * batch_size], batch_size=batch_size, epochs=1, verbose=0)
    start = time.perf_counter()
    trainer.fit(images, batch_size=batch_size, epochs=1, verbose=0)
    seconds = time.perf_counter() - start
    print(f"\ntraining at {image_size}x{image_size}, batch {batch_size}, {steps} steps: "
          f"{batch_size * steps / seconds:.2f} images/s ({seconds / steps:.2f} s/step)")


def video_throughput(model, count: int, options: dict, batch_size: int = 4) -> None:
    """fst video end to end (decode, stylize, encode H.264) against the network alone on the same frames."""
    import tempfile
    from pathlib import Path

    import av
    from PIL import Image

    from fst.inference import stylize_frames
    from fst.styles import save_style
    from fst.video import VideoOptions, render

    print("\n| video | frames | network alone fps | end to end fps | ratio |")
    print("| --- | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as tmp:
        style = save_style(model, "bench", {}, Path(tmp), options).weights
        for width, height in ((640, 360), (1280, 720)):
            smooth = np.random.default_rng(0).uniform(0, 255, (18, 32 + count // 8, 3)).astype(np.uint8)
            scene = np.asarray(Image.fromarray(smooth).resize((width + count, height), Image.Resampling.BICUBIC))
            frames = [np.ascontiguousarray(scene[:, i:i + width]) for i in range(count)]
            clip = Path(tmp) / f"pan_{width}.mp4"
            with av.open(str(clip), "w") as out:
                stream = out.add_stream("libx264", rate=24)
                stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
                for rgb in frames:
                    out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
                out.mux(stream.encode())
            stylize_frames(np.stack(frames[:batch_size]), style)  # warm-up: compile for this size
            began = time.perf_counter()
            for i in range(0, count, batch_size):
                stylize_frames(np.stack(frames[i:i + batch_size]), style)
            network_fps = count / (time.perf_counter() - began)
            began = time.perf_counter()
            render(style, clip, Path(tmp) / f"out_{width}.mp4", video=VideoOptions(batch_size=batch_size),
                   progress=False)
            end_to_end = count / (time.perf_counter() - began)
            print(f"| {width}x{height} | {count} | {network_fps:.2f} | {end_to_end:.2f} | "
                  f"{end_to_end / network_fps:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[256, 512, 1024])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--upsampling", default="transpose", choices=["transpose", "resize"])
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--large", metavar="WxH", help="also stylize one WxH image in tiles, e.g. 8000x6000")
    parser.add_argument("--train", action="store_true", help="also measure training throughput")
    parser.add_argument("--train-steps", type=int, default=5)
    parser.add_argument("--video", action="store_true", help="also measure fst video at 640x360 and 1280x720")
    parser.add_argument("--video-frames", type=int, default=48)
    parser.add_argument("--vgg-weights", help="VGG19 weights file (else $FST_VGG19_WEIGHTS, the Keras cache)")
    parser.add_argument("--runtimes", nargs="+", metavar="R",
                        help="compare runners on a shipped style: keras onnx openvino onnx-int8 openvino-int8 "
                             "openvino-bf16 (OpenVINO's bf16 inference hint)")
    parser.add_argument("--style", default="starry_night", help="the style for --runtimes")
    parser.add_argument("--calibration", default="../shared/data/photos/train", help="int8 calibration photos")
    parser.add_argument("--photos", default="../shared/data/photos/val", help="photos for PSNR and fst run")
    parser.add_argument("--psnr-photos", type=int, default=10)
    parser.add_argument("--folder-photos", type=int, default=20)
    args = parser.parse_args()
    if args.runtimes:
        compare_runtimes(args.runtimes, args.style, args.sizes, args.repeats, args.calibration, args.photos,
                         args.psnr_photos, args.folder_photos)
        return

    print(f"backend {keras.backend.backend()}, float32, network upsampling={args.upsampling} width={args.width}")
    ceiling = conv_ceiling(args.repeats)
    print(f"ceiling: 3x3 conv 128->128 at 256x256: {ceiling:.1f} GFLOP/s\n")
    model = build_network(args.upsampling, args.width)
    macs = MACS_PER_PIXEL if (args.upsampling, args.width) == ("transpose", 1.0) else None
    print("| size | median ms | images/s | GFLOP/s | of ceiling |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for size in args.sizes:
        x = np.random.default_rng(0).uniform(0, 255, (1, size, size, 3)).astype("float32")
        seconds = median_seconds(model.predict_on_batch, x, args.repeats)
        if macs:
            gflops = 2 * macs * size * size / seconds / 1e9
            print(f"| {size} | {seconds * 1e3:.0f} | {1 / seconds:.2f} | {gflops:.1f} | {gflops / ceiling:.2f} |")
        else:
            print(f"| {size} | {seconds * 1e3:.0f} | {1 / seconds:.2f} | - | - |")
    if args.large:
        large_image(model, args.large)
    if args.train:
        training_throughput(256, 4, args.train_steps, args.vgg_weights)
    if args.video:
        video_throughput(model, args.video_frames, {"upsampling": args.upsampling, "width": args.width})


if __name__ == "__main__":
    main()
