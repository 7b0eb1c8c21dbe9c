"""`fst styles`: the installed styles and their paintings."""

from __future__ import annotations

import argparse

from fst.cli.options import HelpFormatter

EXAMPLES = """examples:
  fst styles
  FST_STYLES_DIR=~/my-styles fst styles
"""


def add_parser(sub) -> None:
    p = sub.add_parser("styles", help="list the installed styles", epilog=EXAMPLES,
                       formatter_class=HelpFormatter,
                       description="List the shipped styles and your own ($FST_STYLES_DIR), with their credits.")
    p.set_defaults(func=command)


def command(args: argparse.Namespace) -> int:
    from fst.styles import find_styles, shipped_dir, user_dir

    found = find_styles()
    if not found:
        print(f"no styles installed (looked in {shipped_dir()} and {user_dir()})")
        return 0
    rows = [("NAME", "PAINTING", "ARTIST", "LICENCE")]
    rows += [(s.name + ("*" if s.shadows_shipped else ""), f"{s.title}, {s.year}".strip(", "), s.artist, s.license)
             for s in found]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[3])
    if any(s.shadows_shipped for s in found):
        print(f"* your own network from {user_dir()}, used in place of the shipped style of that name "
              f"(delete its .weights.h5 to get the shipped one back)")
    return 0
