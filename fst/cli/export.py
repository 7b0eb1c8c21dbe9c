"""`fst export`: a style's network for ONNX, OpenVINO, LiteRT or TensorFlow Serving."""

from __future__ import annotations

import argparse

from fst.cli.options import HelpFormatter

EXAMPLES = """examples:
  fst export starry_night                          # starry_night.onnx in the current folder
  fst export starry_night --format openvino -o models/starry_night.xml
  fst export great_wave --format litert            # great_wave.tflite for a phone
  fst export great_wave --format saved_model       # great_wave_saved_model/ for TensorFlow Serving
  fst export great_wave --format openvino --precision int8 --calibration photos/
  fst run starry_night.onnx photo.jpg out.jpg      # runs on ONNX Runtime, without TensorFlow

The model takes NHWC float32 RGB pixels in 0..255 of any size and returns the stylized ones, same shape
(it adds the mirrored margin and the padding to the network's grid itself, as fst does).
"""


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export a style for ONNX, OpenVINO, LiteRT or TensorFlow Serving",
                       epilog=EXAMPLES, formatter_class=HelpFormatter,
                       description="Export STYLE's network with its credits in the file's metadata. Height, "
                                   "width and batch stay dynamic.")
    p.add_argument("style", help="a style name (see 'fst styles') or a path to a .weights.h5 file")
    p.add_argument("-o", "--output", help="the file (a folder for saved_model); default NAME.onnx, NAME.xml, "
                                          "NAME.tflite or NAME_saved_model in the current folder")
    p.add_argument("--format", default="onnx", help="onnx (default), openvino, litert or saved_model")
    p.add_argument("--precision", default="float32",
                   help="float32 (default); bf16 (openvino: bfloat16 on CPUs with AVX512-BF16 or AMX, float32 "
                        "elsewhere); or int8 (onnx and openvino; needs --calibration)")
    p.add_argument("--calibration", metavar="FOLDER", help="photos whose activations set the int8 ranges "
                                                           "(up to 16 are used)")
    p.set_defaults(func=command)


def command(args: argparse.Namespace) -> int:
    from fst.runners.export import export

    path = export(args.style, args.output, format=args.format, precision=args.precision,
                  calibration=args.calibration)
    print(f"exported {args.style} as {args.format} ({args.precision}) to {path}")
    return 0
