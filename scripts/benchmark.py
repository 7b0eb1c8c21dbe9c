"""Inference benchmark: the transformation network's speed against the machine's convolution ceiling.

    python scripts/benchmark.py                    # 256, 512, 1024 square, float32
    python scripts/benchmark.py --large 8000x6000  # also a tiled large image: time and peak memory
    python scripts/benchmark.py --train            # training throughput, 256x256, batch 4 (needs VGG19)
    KERAS_BACKEND=jax python scripts/benchmark.py --train
    python scripts/benchmark.py --sizes --video     # fst video end to end against the network alone

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

from fst.network import MACS_PER_PIXEL, build_network


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
    from fst.video import render

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
            render(style, clip, Path(tmp) / f"out_{width}.mp4", batch_size=batch_size, progress=False)
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
    args = parser.parse_args()

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
