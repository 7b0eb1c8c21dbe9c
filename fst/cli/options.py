"""Options shared by several commands, and the help format of all of them."""

from __future__ import annotations

import argparse


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples' layout and shows every option's default, unless its help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if not action.option_strings or action.default in (None, argparse.SUPPRESS) or action.default is False \
                or "default" in text:
            return text
        return f"{text} (default: %(default)s)"


def image_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-size", type=int, metavar="N",
                   help="resize so the longer side is at most N pixels (N >= 1) first")
    p.add_argument("--strength", type=float, default=1.0, help="blend of stylized (1) and original (0); default 1")
    p.add_argument("--preserve-color", action="store_true", help="keep the photo's colours, transfer only luminance")
    p.add_argument("--quality", type=int, default=95, help="JPEG/WebP quality, 1 to 100 (default 95)")
    tile_size_option(p, "images")
    stroke_scale_option(p)


def tile_size_option(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--tile-size", type=int, default=None, metavar="N",
                   help=f"stylize {what} over N*N pixels in overlapping NxN tiles (N >= 64; default 1536)")


def runtime_option(p: argparse.ArgumentParser) -> None:
    from fst.runners import RUNTIMES

    p.add_argument("--runtime", choices=RUNTIMES, default=None,
                   help="what runs the network (default: keras, or the runtime of an exported .onnx/.xml "
                        "STYLE); onnx and openvino export a named style once into your cache folder")


def stroke_scale_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stroke-scale", type=stroke_scale, default="auto", metavar="K",
                   help="paint strokes K times larger (1 to 64), so that they do not shrink to a fine texture on "
                        "large photos; default auto: K is the shorter side over 512 px (1 below it); 1 turns it off")


def stroke_scale(text: str) -> float | str:
    """--stroke-scale: auto, or a number (its range is checked with the other options)."""
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not auto or a number") from None


def byte_size(text: str) -> int:
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


def fields_as_options(group, cls, defaults: bool, skip: tuple[str, ...] = ()) -> None:
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
            shown = "none" if default in (None, "") else " ".join(map(str, default)) if isinstance(default, list) else default
            options["help"] = " ".join(filter(None, [f.metadata.get("help"), f"(default: the config's, else {shown})"]))
        if isinstance(default, bool):
            group.add_argument(flag, action=argparse.BooleanOptionalAction, **options)
        elif isinstance(default, list) or "element" in f.metadata:
            element = f.metadata.get("element") or type(default[0])
            group.add_argument(flag, nargs="+", type=element, metavar="V", **options)
        else:
            group.add_argument(flag, type=type(default), metavar=None if "choices" in f.metadata else f.name.upper(),
                               **options)
