"""`fst video`: stylize a video or a folder of frames, keeping timing and sound."""

from __future__ import annotations

import argparse
import sys

from fst.cli.options import HelpFormatter, runtime_option, stroke_scale_option, tile_size_option

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
    p.add_argument("--max-size", type=int, metavar="N", help="shrink frames so the longer side is at most N first")
    p.add_argument("--start", type=float, default=0.0, metavar="SECONDS", help="skip to this time first")
    p.add_argument("--duration", type=float, metavar="SECONDS", help="stylize only this many seconds")
    p.add_argument("--codec", help="video encoder, e.g. libx264, libvpx-vp9, mpeg4 (default from the extension)")
    p.add_argument("--crf", type=int, help="constant quality, lower is better: 0 to 51 for H.264 (default 18), "
                                           "0 to 63 for VP9 (default 31)")
    p.add_argument("--fps", type=float, default=25.0,
                   help="frame rate of a folder of frames, 0.001 to 10000 (default 25)")
    p.add_argument("--batch-size", type=int, default=4, help="frames per forward pass (default 4)")
    p.add_argument("--strength", type=float, default=1.0, help="blend of stylized (1) and original (0); default 1")
    p.add_argument("--preserve-color", action="store_true", help="keep the video's colours, transfer only luminance")
    stroke_scale_option(p)
    tile_size_option(p, "frames")
    runtime_option(p)
    p.add_argument("--overwrite", action="store_true", help="replace the contents of a non-empty output folder")
    p.set_defaults(func=command)


def command(args: argparse.Namespace) -> int:
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
