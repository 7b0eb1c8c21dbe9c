"""`fst serve`: the web page and HTTP API (the serve extra)."""

from __future__ import annotations

import argparse

from fst.cli.options import HelpFormatter, byte_size
from fst.errors import FstError, install_hint

EXAMPLES = """examples:
  fst serve                                   # http://127.0.0.1:8000/ on this machine only
  fst serve --port 8080 --styles udnie great_wave --max-upload 5MB
  fst serve --host 0.0.0.0 --workers 2        # share it on the network
  curl -F image=@photo.jpg "http://127.0.0.1:8000/api/stylize?style=udnie&max_size=512" -o out.jpg
"""


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help=f"serve the web page and HTTP API (needs: {install_hint('serve')})",
                       epilog=EXAMPLES, formatter_class=HelpFormatter,
                       description="Load the styles once and serve a page to stylize photos in a browser, "
                                   "and an HTTP API (POST /api/stylize, GET /api/styles, GET /healthz).")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: the network)")
    p.add_argument("--port", default="8000", help="port (default 8000; 0 picks a free one)")
    p.add_argument("--styles", nargs="+", metavar="NAME", help="serve only these installed styles (default: all)")
    p.add_argument("--max-upload", type=byte_size, default="20MB", metavar="SIZE",
                   help="largest upload, e.g. 500KB, 20MB (default 20MB)")
    p.add_argument("--max-pixels", type=int, default=50_000_000, metavar="N",
                   help="largest image in pixels, checked before decoding (default 50000000)")
    p.add_argument("--workers", type=int, default=1, metavar="N", help="images stylized at once (default 1)")
    p.add_argument("--queue", type=int, default=4, metavar="N",
                   help="requests that may wait for a worker; more get 503 (default 4)")
    p.set_defaults(func=command)


def command(args: argparse.Namespace) -> int:
    try:
        from fst.serve import app
    except ModuleNotFoundError as exc:
        raise FstError(f'fst serve needs the web server packages ({exc.name} is missing): '
                       f'{install_hint("serve")}') from None
    for flag, value, least in [("--max-pixels", args.max_pixels, 1), ("--workers", args.workers, 1),
                               ("--queue", args.queue, 0)]:
        if value < least:
            raise FstError(f"{flag} must be at least {least}, not {value}")
    port = port_number(args.port)
    limits = app.Limits(max_upload=args.max_upload, max_pixels=args.max_pixels, workers=args.workers,
                        queue=args.queue)
    app.serve(args.host, port, args.styles, limits)
    return 0


def port_number(text: str) -> int:
    """--port as a TCP port number, checked before anything is loaded (one line, not a traceback or a hang)."""
    try:
        port = int(text)
    except ValueError:
        raise FstError(f"--port must be a number from 0 to 65535, not {text!r}") from None
    if not 0 <= port <= 65535:
        raise FstError(f"--port must be from 0 to 65535, not {port}")
    return port
