"""`fst video`: stylize a video or a folder of frames, keeping timing and sound."""

from __future__ import annotations

import argparse
import sys

from fst.cli.options import HelpFormatter, flags, options_from, runtime_option

EXAMPLES = """examples:
  fst video great_wave clip.mp4 stylized.mp4
  fst video great_wave clip.mov stylized.webm --max-size 720 --start 10 --duration 5
  fst video great_wave frames/ stylized_frames/            # folders of PNG/JPEG frames in and out
  fst video great_wave frames/ stylized.mp4 --fps 30

Timestamps, the rotation tag and the sound are kept (sound copied when the container allows).
"""


def add_parser(sub) -> None:
    p = sub.add_parser("video", help="stylize a video (or a folder of frames), keeping its sound",
                       epilog=EXAMPLES, formatter_class=HelpFormatter,
                       description="Stylize SRC frame by frame into DST. Either may be a folder of frames; "
                                   "a video DST's container comes from its extension "
                                   "(.mp4 .mov .mkv: H.264; .webm: VP9).")
    p.add_argument("style", help="a style name (see 'fst styles'), a .weights.h5 file, or an exported .onnx/.xml")
    p.add_argument("src", help="input video, or a folder of frames (in name order)")
    p.add_argument("dst", help="output video, or a folder for PNG frames")
    from fst.options import StylizeOptions, VideoOptions

    flags(p, VideoOptions)
    flags(p, StylizeOptions)
    runtime_option(p)
    p.add_argument("--overwrite", action="store_true", help="replace the contents of a non-empty output folder")
    p.set_defaults(func=command)


def command(args: argparse.Namespace) -> int:
    from fst.options import StylizeOptions, VideoOptions
    from fst.runners import open_runner
    from fst.video import render

    options, video = options_from(args, StylizeOptions), options_from(args, VideoOptions)  # checked here
    report = render(open_runner(args.style, args.runtime), args.src, args.dst, options, video,
                    overwrite=args.overwrite)
    print(f"fst: {report.frames} frames ({report.width}x{report.height}) in {report.seconds:.1f} s "
          f"({report.fps:.2f} fps), audio {report.audio} -> {args.dst}", file=sys.stderr)
    return 0
