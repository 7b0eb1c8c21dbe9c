"""The ``fst`` command: list styles; stylize files, folders, stdin or videos; export; train; optimise; serve.

Each command is a module here with ``add_parser(sub)`` and ``command(args)``; they import what they
run only when they run, so ``fst styles`` and every ``--help`` start without Keras.
"""

from __future__ import annotations

import argparse
import sys

from fst.cli import export, optimize, run, serve, styles, train, video
from fst.errors import FstError

COMMANDS = (styles, run, video, export, train, optimize, serve)


def build_parser() -> argparse.ArgumentParser:
    from fst import __version__

    parser = argparse.ArgumentParser(
        prog="fst",
        description="Fast neural style transfer: stylize photos with trained paintings.",
        epilog="run 'fst COMMAND --help' for the options and examples of each command",
    )
    parser.add_argument("--version", action="version", version=f"fst {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


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
