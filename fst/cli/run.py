"""`fst run`: stylize a file, a folder of images, or stdin to stdout."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fst.cli.options import HelpFormatter, flags, options_from, runtime_option
from fst.errors import FstError

EXAMPLES = """examples:
  fst run great_wave photo.jpg out.jpg
  fst run great_wave photos/ stylized/ --max-size 1024
  fst run my_style.weights.h5 photo.png out.webp --strength 0.7 --preserve-color
  fst run starry_night phone_photo.jpg out.jpg --stroke-scale 3   # strokes that show on 12 megapixels
  cat photo.jpg | fst run great_wave - - --format png > out.png
"""


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="stylize an image, a folder of images, or stdin", epilog=EXAMPLES,
                       formatter_class=HelpFormatter,
                       description="Stylize SRC into DST. SRC may be a file, a folder (DST is then a folder) "
                                   "or - for standard input; DST - writes to standard output.")
    p.add_argument("style", help="a style name (see 'fst styles'), a .weights.h5 file, or an exported .onnx/.xml")
    p.add_argument("src", help="input image, folder of images, or -")
    p.add_argument("dst", help="output image (format from its extension), folder, or -")
    from fst.options import OutputOptions, StylizeOptions

    flags(p, StylizeOptions)
    flags(p, OutputOptions)
    runtime_option(p)
    p.add_argument("--overwrite", action="store_true", help="allow writing over the input file")
    p.set_defaults(func=command)


def _run_stdio(args: argparse.Namespace, runner, options, output) -> int:
    from fst import images, inference
    from fst.files import write_atomic

    fmt = (output.format or "png") if args.dst == "-" else images.check_destination(args.dst)
    name = "<stdin>" if args.src == "-" else args.src
    data = images.read_stream(sys.stdin.buffer, name) if args.src == "-" else images.read_file(args.src)
    encoded = inference.stylize(data, runner, options=options, format=fmt, quality=output.quality, name=name)
    if args.dst == "-":
        _write_stdout(encoded)
    else:
        write_atomic(encoded, args.dst)
    return 0


def _write_stdout(data: bytes) -> None:
    """Writes the image to standard output; a reader gone (a broken pipe) or a full disk is an error,
    as a file that could not be written is, not a silent exit 0."""
    import os

    try:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    except OSError as exc:
        # Python flushes stdout again on exit; point it at /dev/null so that flush has nowhere to fail.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        reason = "the reading program closed it" if isinstance(exc, BrokenPipeError) else exc.strerror or exc
        raise FstError(f"standard output: cannot write the image ({reason})") from None


def _run_folder(args: argparse.Namespace, runner, options, output) -> int:
    from tqdm import tqdm

    from fst import images, inference

    src, dst = Path(args.src), Path(args.dst)
    if dst.exists() and dst.resolve() == src.resolve():
        raise FstError(f"{dst}: is the input folder; write the stylized images into another folder")
    if dst.exists() and not dst.is_dir():
        raise FstError(f"{dst}: is a file; with a folder as input, the output must be a folder")
    if not dst.exists() and dst.suffix.lower() in images.IMAGE_EXTENSIONS:
        raise FstError(f"{dst}: is an image file name; with a folder as input, the output must be a folder")
    suffix = images.suffix_of(images.format_named(output.format)) if output.format else None
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
            inference.run(runner, path, out, options=options, overwrite=args.overwrite, quality=output.quality)
        except FstError as exc:
            failed += 1
            tqdm.write(f"fst: skipped {exc}", file=sys.stderr)
    if failed:
        print(f"fst: {failed} of {len(files)} images failed", file=sys.stderr)
        return 1
    return 0


def command(args: argparse.Namespace) -> int:
    from fst import images, inference, runners
    from fst.options import OutputOptions, StylizeOptions

    options, output = options_from(args, StylizeOptions), options_from(args, OutputOptions)  # checked here
    if output.format and args.dst != "-" and not Path(args.src).is_dir():
        if images.format_named(output.format) != images.format_for(args.dst):
            raise FstError(f"{args.dst}: its extension sets the format, which is not {output.format}; "
                           f"--format is for - and folders")
    runner = runners.open_runner(args.style, args.runtime)
    if args.src == "-" or args.dst == "-":
        return _run_stdio(args, runner, options, output)
    if Path(args.src).is_dir():
        return _run_folder(args, runner, options, output)
    inference.run(runner, args.src, args.dst, options=options, overwrite=args.overwrite, quality=output.quality)
    return 0
