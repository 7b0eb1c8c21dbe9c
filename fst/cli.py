"""The ``fst`` command: list styles; stylize files, folders, stdin or videos; train; optimise."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from fst.errors import FstError

EXAMPLES_RUN = """examples:
  fst run great_wave photo.jpg out.jpg
  fst run great_wave photos/ stylized/ --max-size 1024
  fst run my_style.weights.h5 photo.png out.webp --strength 0.7 --preserve-color
  fst run starry_night phone_photo.jpg out.jpg --stroke-scale 3   # strokes that show on 12 megapixels
  cat photo.jpg | fst run great_wave - - --format png > out.png
"""

EXAMPLES_TRAIN = """examples:
  fst train-style configs/starry_night.toml --data ~/coco/train2017
  fst train-style configs/starry_night.toml --data photos/ --steps 2000 --image-size 128
  fst train-style --style painting.jpg --name my_style --data photos/
  KERAS_BACKEND=jax fst train-style configs/great_wave.toml --data photos/ --mixed-precision mixed_bfloat16

Run the same command again after an interruption to resume from the last checkpoint.
"""

EXAMPLES_OPTIMIZE = """examples:
  fst optimize photo.jpg painting.jpg out.png
  fst optimize photo.jpg painting.jpg out.png --max-size 1024 --coarse-size 512 --iterations 400
  fst optimize photo.jpg painting.jpg out.png --optimizer adam --init noise --seed 3 --checkpoint-every 50
  fst optimize photo.jpg painting.jpg out.png --style-layers relu1_1 relu2_1 --style-weight 200
"""

EXAMPLES_VIDEO = """examples:
  fst video great_wave clip.mp4 stylized.mp4
  fst video great_wave clip.mov stylized.webm --max-size 720 --start 10 --duration 5
  fst video great_wave frames/ stylized_frames/            # folders of PNG/JPEG frames in and out
  fst video great_wave frames/ stylized.mp4 --fps 30

Timestamps, the rotation tag and the sound are kept (sound copied when the container allows).
"""

EXAMPLES_EXPORT = """examples:
  fst export starry_night                          # starry_night.onnx in the current folder
  fst export starry_night --format openvino -o models/starry_night.xml
  fst export great_wave --format litert            # great_wave.tflite for a phone
  fst export great_wave --format saved_model       # great_wave_saved_model/ for TensorFlow Serving
  fst export great_wave --format openvino --precision int8 --calibration photos/
  fst run starry_night.onnx photo.jpg out.jpg      # runs on ONNX Runtime, without TensorFlow

The model takes and returns NHWC float32 RGB pixels in 0..255 (H and W multiples of 4, >= 16).
"""

EXAMPLES_STYLES = """examples:
  fst styles
  FST_STYLES_DIR=~/my-styles fst styles
"""

EXAMPLES_SERVE = """examples:
  fst serve                                   # http://127.0.0.1:8000/ on this machine only
  fst serve --port 8080 --styles udnie great_wave --max-upload 5MB
  fst serve --host 0.0.0.0 --workers 2        # share it on the network
  curl -F image=@photo.jpg "http://127.0.0.1:8000/api/stylize?style=udnie&max_size=512" -o out.jpg
"""


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples' layout and shows every option's default, unless its help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if not action.option_strings or action.default in (None, argparse.SUPPRESS) or action.default is False \
                or "default" in text:
            return text
        return f"{text} (default: %(default)s)"


def _add_image_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-size", type=int, metavar="N",
                   help="resize so the longer side is at most N pixels (N >= 1) first")
    p.add_argument("--strength", type=float, default=1.0, help="blend of stylized (1) and original (0); default 1")
    p.add_argument("--preserve-color", action="store_true", help="keep the photo's colours, transfer only luminance")
    p.add_argument("--quality", type=int, default=95, help="JPEG/WebP quality, 1 to 100 (default 95)")
    _add_tile_size(p, "images")
    _add_stroke_scale(p)


def _add_tile_size(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--tile-size", type=int, default=None, metavar="N",
                   help=f"stylize {what} over N*N pixels in overlapping NxN tiles (N >= 64; default 1024)")


def _add_runtime(p: argparse.ArgumentParser) -> None:
    from fst.runners import RUNTIMES

    p.add_argument("--runtime", choices=RUNTIMES, default=None,
                   help="what runs the network (default: keras, or the runtime of an exported .onnx/.xml "
                        "STYLE); onnx and openvino export a named style once into your cache folder")


def _add_stroke_scale(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stroke-scale", type=float, default=1.0, metavar="K",
                   help="paint strokes K times larger (1 to 64; default 1): for large photos, where the "
                        "network's strokes shrink to a fine texture")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fst",
        description="Fast neural style transfer: stylize photos with trained paintings.",
        epilog="run 'fst COMMAND --help' for the options and examples of each command",
    )
    from fst import __version__

    parser.add_argument("--version", action="version", version=f"fst {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("styles", help="list the installed styles", epilog=EXAMPLES_STYLES,
                       formatter_class=_HelpFormatter,
                       description="List the shipped styles and your own ($FST_STYLES_DIR), with their credits.")
    p.set_defaults(func=cmd_styles)

    p = sub.add_parser("run", help="stylize an image, a folder of images, or stdin", epilog=EXAMPLES_RUN,
                       formatter_class=_HelpFormatter,
                       description="Stylize SRC into DST. SRC may be a file, a folder (DST is then a folder) "
                                   "or - for standard input; DST - writes to standard output.")
    p.add_argument("style", help="a style name (see 'fst styles'), a .weights.h5 file, or an exported .onnx/.xml")
    p.add_argument("src", help="input image, folder of images, or -")
    p.add_argument("dst", help="output image (format from its extension), folder, or -")
    _add_image_options(p)
    _add_runtime(p)
    p.add_argument("--overwrite", action="store_true", help="allow writing over the input file")
    p.add_argument("--format", default=None, help="output format for - and folders, e.g. png or jpg "
                                                  "(default: png for -, the input's own for folders)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("video", help="stylize a video (or a folder of frames), keeping its sound",
                       epilog=EXAMPLES_VIDEO, formatter_class=_HelpFormatter,
                       description="Stylize SRC frame by frame into DST. Either may be a folder of frames; "
                                   "a video DST's container comes from its extension "
                                   "(.mp4 .mov .mkv: H.264; .webm: VP9).")
    p.add_argument("style", help="a style name (see 'fst styles'), a .weights.h5 file, or an exported .onnx/.xml")
    p.add_argument("src", help="input video, or a folder of frames (in name order)")
    p.add_argument("dst", help="output video, or a folder for PNG frames")
    p.add_argument("--max-size", type=int, metavar="N", help="shrink frames so the longer side is at most N first")
    p.add_argument("--start", type=float, default=0.0, metavar="SECONDS", help="skip to this time first")
    p.add_argument("--duration", type=float, metavar="SECONDS", help="stylize only this many seconds")
    p.add_argument("--codec", help="video encoder, e.g. libx264, libvpx-vp9, mpeg4 (default from the extension)")
    p.add_argument("--crf", type=int, help="constant quality, lower is better: 0 to 51 for H.264 (default 18), "
                                           "0 to 63 for VP9 (default 31)")
    p.add_argument("--fps", type=float, default=25.0, help="frame rate of a folder of frames (default 25)")
    p.add_argument("--batch-size", type=int, default=4, help="frames per forward pass (default 4)")
    p.add_argument("--strength", type=float, default=1.0, help="blend of stylized (1) and original (0); default 1")
    p.add_argument("--preserve-color", action="store_true", help="keep the video's colours, transfer only luminance")
    _add_stroke_scale(p)
    _add_tile_size(p, "frames")
    _add_runtime(p)
    p.add_argument("--overwrite", action="store_true", help="replace the contents of a non-empty output folder")
    p.set_defaults(func=cmd_video)

    p = sub.add_parser("export", help="export a style for ONNX, OpenVINO, LiteRT or TensorFlow Serving",
                       epilog=EXAMPLES_EXPORT, formatter_class=_HelpFormatter,
                       description="Export STYLE's network with its credits in the file's metadata. Height, "
                                   "width and batch stay dynamic.")
    p.add_argument("style", help="a style name (see 'fst styles') or a path to a .weights.h5 file")
    p.add_argument("-o", "--output", help="the file (a folder for saved_model); default NAME.onnx, NAME.xml, "
                                          "NAME.tflite or NAME_saved_model in the current folder")
    p.add_argument("--format", default="onnx", help="onnx (default), openvino, litert or saved_model")
    p.add_argument("--precision", default="float32",
                   help="float32 (default) or int8 (onnx and openvino; needs --calibration)")
    p.add_argument("--calibration", metavar="FOLDER", help="photos whose activations set the int8 ranges "
                                                           "(up to 16 are used)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("train-style", help="train a style for one painting", epilog=EXAMPLES_TRAIN,
                       formatter_class=_HelpFormatter,
                       description="Train the transformation network for one painting on a folder of photos, "
                                   "then install it as a style. Every config key can be overridden below.")
    p.add_argument("config", nargs="?", help="a TOML config (see configs/)")
    p.add_argument("--data", required=True, help="folder of training photos, searched recursively")
    p.add_argument("--style", dest="style_image", help="the painting (instead of, or overriding, the config's)")
    p.add_argument("--run-dir", help="checkpoints, logs and previews (default runs/NAME)")
    p.add_argument("--out", help="where to install the style (default: your style folder, $FST_STYLES_DIR)")
    p.add_argument("--vgg-weights", help="path to Keras' VGG19 notop weights file (else $FST_VGG19_WEIGHTS, the Keras cache, download)")
    p.add_argument("--preview-data", help="folder of photos for the preview grids (default: none)")
    p.add_argument("--restart", action="store_true", help="discard an existing checkpoint instead of resuming")
    _add_config_options(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("optimize", help="stylize by optimising the pixels (Gatys et al.; slow, any painting)",
                       epilog=EXAMPLES_OPTIMIZE, formatter_class=_HelpFormatter,
                       description="Optimise an image so its VGG19 features match CONTENT's and its Gram "
                                   "matrices match STYLE's. Needs no trained style.")
    p.add_argument("content", help="the photo")
    p.add_argument("style", help="the painting")
    p.add_argument("dst", help="output image (format from its extension)")
    p.add_argument("--max-size", type=int, default=512, help="longer side of the output (default 512)")
    p.add_argument("--iterations", type=int, default=300, help="optimiser iterations (default 300)")
    p.add_argument("--optimizer", choices=["lbfgs", "adam"], default="lbfgs", help="the optimiser")
    p.add_argument("--learning-rate", type=float, default=5.0, help="Adam step in pixel units (default 5)")
    p.add_argument("--init", choices=["content", "style", "noise"], default="content",
                   help="the image the optimisation starts from")
    p.add_argument("--seed", type=int, default=0, help="seed for --init noise")
    p.add_argument("--style-scale", type=float, default=1.0, help="painting size relative to the output")
    p.add_argument("--coarse-size", type=int, help="optimise at this size first, then upscale and continue")
    _add_loss_options(p)
    p.add_argument("--preserve-color", action="store_true", help="keep the photo's colours")
    p.add_argument("--checkpoint-every", type=int, metavar="N", help="also write DST_N.png every N iterations")
    p.add_argument("--overwrite", action="store_true", help="allow writing over the input file")
    p.add_argument("--vgg-weights", help="path to Keras' VGG19 notop weights file (else $FST_VGG19_WEIGHTS, the Keras cache, download)")
    p.set_defaults(func=cmd_optimize)

    p = sub.add_parser("serve", help="serve the web page and HTTP API (needs: pip install \"fst[serve]\")",
                       epilog=EXAMPLES_SERVE, formatter_class=_HelpFormatter,
                       description="Load the styles once and serve a page to stylize photos in a browser, "
                                   "and an HTTP API (POST /api/stylize, GET /api/styles, GET /healthz).")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: the network)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--styles", nargs="+", metavar="NAME", help="serve only these installed styles (default: all)")
    p.add_argument("--max-upload", type=_byte_size, default="20MB", metavar="SIZE",
                   help="largest upload, e.g. 500KB, 20MB (default 20MB)")
    p.add_argument("--max-pixels", type=int, default=50_000_000, metavar="N",
                   help="largest image in pixels, checked before decoding (default 50000000)")
    p.add_argument("--workers", type=int, default=1, metavar="N", help="images stylized at once (default 1)")
    p.add_argument("--queue", type=int, default=4, metavar="N",
                   help="requests that may wait for a worker; more get 503 (default 4)")
    p.set_defaults(func=cmd_serve)
    return parser


def _byte_size(text: str) -> int:
    """'20MB' -> 20000000 (B, KB, MB, GB, or KiB, MiB, GiB)."""
    units = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}
    number = text.rstrip("BbKkMmGgIi ")
    try:
        size = float(number) * units[text[len(number):].strip().upper()]
    except (ValueError, KeyError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a size like 500KB or 20MB") from None
    if size < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: must be at least 1 byte")
    return int(size)


def _add_fields(group, cls, defaults: bool, skip: tuple[str, ...] = ()) -> None:
    """One --option per field of a config dataclass. With ``defaults`` the options default to the
    fields' defaults (shown in --help); without, to None, so that only what the user gives overrides
    a config file."""
    import dataclasses

    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        options = {"default": default if defaults else None, **{k: f.metadata[k] for k in ("help", "choices")
                                                                 if k in f.metadata}}
        if not defaults:
            shown = "none" if default is None else " ".join(map(str, default)) if isinstance(default, list) else default
            options["help"] = " ".join(filter(None, [f.metadata.get("help"), f"(default: the config's, else {shown})"]))
        if isinstance(default, bool):
            group.add_argument(flag, action=argparse.BooleanOptionalAction, **options)
        elif isinstance(default, list) or "element" in f.metadata:
            element = f.metadata.get("element") or type(default[0])
            group.add_argument(flag, nargs="+", type=element, metavar="V", **options)
        else:
            group.add_argument(flag, type=type(default), metavar=None if "choices" in f.metadata else f.name.upper(),
                               **options)


def _add_config_options(p: argparse.ArgumentParser) -> None:
    """One --option per TrainConfig field, so any config value can be overridden."""
    from fst.training.config import TrainConfig

    _add_fields(p.add_argument_group("config overrides"), TrainConfig, defaults=False, skip=("style_image",))


def cmd_styles(args: argparse.Namespace) -> int:
    from fst.styles import find_styles, shipped_dir, user_dir

    found = find_styles()
    if not found:
        print(f"no styles installed (looked in {shipped_dir()} and {user_dir()})")
        return 0
    rows = [("NAME", "PAINTING", "ARTIST", "LICENCE")]
    rows += [(s.name, f"{s.title}, {s.year}".strip(", "), s.artist, s.license) for s in found]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[3])
    return 0


def _image_options(args: argparse.Namespace) -> dict:
    """The stylize options of `fst run`, checked before any work."""
    from fst import images, inference

    options = {"max_size": args.max_size, "strength": args.strength, "preserve_color": args.preserve_color,
               "stroke_scale": args.stroke_scale}
    if args.tile_size is not None:
        options["tile_size"] = args.tile_size
    inference.check_options(**options)
    images.check_quality(args.quality)
    return options


def _run_stdio(args: argparse.Namespace, runner, options: dict) -> int:
    from fst import images, inference
    from fst.files import write_atomic

    fmt = (args.format or "png") if args.dst == "-" else images.check_destination(args.dst)
    data = sys.stdin.buffer.read() if args.src == "-" else images.read_file(args.src)
    encoded = inference.stylize(data, runner, format=fmt, quality=args.quality, **options)
    if args.dst == "-":
        sys.stdout.buffer.write(encoded)
        sys.stdout.buffer.flush()
    else:
        write_atomic(encoded, args.dst)
    return 0


def _run_folder(args: argparse.Namespace, runner, options: dict) -> int:
    from tqdm import tqdm

    from fst import images, inference

    src, dst = Path(args.src), Path(args.dst)
    if dst.exists() and not dst.is_dir():
        raise FstError(f"{dst}: is a file; with a folder as input, the output must be a folder")
    if not dst.exists() and dst.suffix.lower() in images.IMAGE_EXTENSIONS:
        raise FstError(f"{dst}: is an image file name; with a folder as input, the output must be a folder")
    suffix = "." + args.format.lstrip(".") if args.format else None
    if suffix:
        images.format_for(dst / f"x{suffix}")
    images.check_writable(dst / "x")
    inside = dst.resolve()  # a destination inside the source is output, not input, on the next run
    files = [p for p in images.find_images(src) if not p.resolve().is_relative_to(inside)]
    if not files:
        raise FstError(f"{src}: no images found (looked for {', '.join(sorted(images.IMAGE_EXTENSIONS))})")
    failed = 0
    for path in tqdm(files, desc="stylizing", unit="image"):
        out = dst / path.relative_to(src)
        if suffix:
            out = out.with_suffix(suffix)
        try:
            inference.run(runner, path, out, overwrite=args.overwrite, quality=args.quality, **options)
        except FstError as exc:
            failed += 1
            tqdm.write(f"fst: skipped {exc}", file=sys.stderr)
    if failed:
        print(f"fst: {failed} of {len(files)} images failed", file=sys.stderr)
        return 1
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from fst import inference, runners

    options = _image_options(args)
    runner = runners.open_runner(args.style, args.runtime)
    if args.src == "-" or args.dst == "-":
        return _run_stdio(args, runner, options)
    if Path(args.src).is_dir():
        return _run_folder(args, runner, options)
    inference.run(runner, args.src, args.dst, overwrite=args.overwrite, quality=args.quality, **options)
    return 0


def cmd_video(args: argparse.Namespace) -> int:
    from fst.runners import open_runner
    from fst.video import render

    report = render(open_runner(args.style, args.runtime), args.src, args.dst, max_size=args.max_size, start=args.start,
                    duration=args.duration, codec=args.codec, crf=args.crf, fps=args.fps,
                    batch_size=args.batch_size, strength=args.strength, preserve_color=args.preserve_color,
                    stroke_scale=args.stroke_scale, overwrite=args.overwrite,
                    **({} if args.tile_size is None else {"tile_size": args.tile_size}))
    print(f"fst: {report.frames} frames ({report.width}x{report.height}) in {report.seconds:.1f} s "
          f"({report.fps:.2f} fps), audio {report.audio} -> {args.dst}", file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from fst.export import export

    path = export(args.style, args.output, format=args.format, precision=args.precision,
                  calibration=args.calibration)
    print(f"exported {args.style} as {args.format} ({args.precision}) to {path}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    import dataclasses

    from fst.quiet import load_keras
    from fst.training.config import TrainConfig

    load_keras()
    from fst.training.train import train_style

    overrides = {f.name: getattr(args, f.name, None) for f in dataclasses.fields(TrainConfig)}
    config = TrainConfig.load(args.config, **overrides)
    style = train_style(config, args.data, run_dir=args.run_dir, out_dir=args.out, vgg_weights=args.vgg_weights,
                        preview_data=args.preview_data, restart=args.restart)
    if style is not None:
        print(f"installed style {style.name!r} at {style.weights}; try: fst run {style.name} photo.jpg out.jpg")
    return 0


def _add_loss_options(p: argparse.ArgumentParser) -> None:
    from fst.training.objective import LossConfig

    _add_fields(p.add_argument_group("objective"), LossConfig, defaults=True)


def cmd_optimize(args: argparse.Namespace) -> int:
    import dataclasses

    from fst import images
    from fst.files import write_atomic
    from fst.quiet import load_keras

    load_keras()
    from fst.gatys import optimize
    from fst.training.objective import LossConfig

    loss = LossConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(LossConfig)})
    fmt = images.check_destination(args.dst, args.content, args.overwrite)
    dst = Path(args.dst)

    def checkpoint(iteration: int, image) -> None:
        write_atomic(images.encode(image, fmt), dst.with_name(f"{dst.stem}_{iteration}{dst.suffix}"))

    history: list[dict] = []
    started = time.perf_counter()
    out = optimize(args.content, args.style, loss=loss, max_size=args.max_size, style_scale=args.style_scale,
                   optimizer=args.optimizer, iterations=args.iterations, learning_rate=args.learning_rate, init=args.init, seed=args.seed,
                   coarse_size=args.coarse_size, preserve_color=args.preserve_color,
                   checkpoint_every=args.checkpoint_every, checkpoint=checkpoint, vgg_weights=args.vgg_weights,
                   history=history)
    write_atomic(images.encode(out, fmt), dst)
    last = history[-1]
    print(f"fst: {len(history)} iterations in {time.perf_counter() - started:.1f} s, loss {history[0]['total']:.4g} "
          f"-> {last['total']:.4g} (content {last['content']:.4g}, style {last['style']:.4g}, tv {last['tv']:.4g}) "
          f"-> {dst}", file=sys.stderr)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        from fst.serve import app
    except ModuleNotFoundError as exc:
        raise FstError(f'fst serve needs the web server packages ({exc.name} is missing): '
                       f'pip install "fst[serve]"') from None
    for flag, value, least in [("--max-pixels", args.max_pixels, 1), ("--workers", args.workers, 1),
                               ("--queue", args.queue, 0)]:
        if value < least:
            raise FstError(f"{flag} must be at least {least}, not {value}")
    limits = app.Limits(max_upload=args.max_upload, max_pixels=args.max_pixels, workers=args.workers,
                        queue=args.queue)
    app.serve(args.host, args.port, args.styles, limits)
    return 0


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so that temporary output is removed as on Ctrl-C."""


def _terminate(signum: int, frame) -> None:
    raise _Terminated


def main(argv: list[str] | None = None) -> int:
    import logging
    import signal
    import warnings

    from fst.quiet import quiet_environment

    quiet_environment()
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.command == "train-style" else logging.WARNING,
                        format="fst: %(message)s")
    # Photos of 90 to 180 megapixels open with a Pillow warning; larger ones are a one-line error.
    warnings.filterwarnings("ignore", message=r"Image size \(\d+ pixels\) exceeds limit")
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.func(args)
    except FstError as exc:
        print(f"fst: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fst: interrupted", file=sys.stderr)
        return 130
    except _Terminated:
        print("fst: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
