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


def flags(p: argparse.ArgumentParser, options_class: type) -> None:
    """One --flag per field of an options class of ``fst.options`` (``StylizeOptions``, ``OutputOptions``,
    ``VideoOptions``), with its default and help from the field; the values are checked when the options
    are made from ``args``."""
    import dataclasses
    from numbers import Integral, Real

    for f in dataclasses.fields(options_class):
        meta, flag = f.metadata, "--" + f.name.replace("_", "-")
        if meta["kind"] is bool:
            p.add_argument(flag, action="store_true", default=f.default, help=meta["help"])
            continue
        parse = {Integral: int, Real: float, str: str}[meta["kind"]]
        p.add_argument(flag, type=number_or(meta["words"], parse) if meta["words"] else parse, default=f.default,
                       metavar=meta["metavar"], help=meta["help"])


def options_from(args: argparse.Namespace, options_class: type):
    """The options of ``options_class`` that ``flags`` added, from parsed arguments (checked here)."""
    import dataclasses

    return options_class(**{f.name: getattr(args, f.name) for f in dataclasses.fields(options_class)
                            if hasattr(args, f.name)})


def runtime_option(p: argparse.ArgumentParser) -> None:
    from fst.runners import RUNTIMES

    p.add_argument("--runtime", choices=RUNTIMES, default=None,
                   help="what runs the network (default: keras, or the runtime of an exported .onnx/.xml "
                        "STYLE); onnx and openvino export a named style once into your cache folder")


def number_or(words: tuple[str, ...], parse=float):
    """An argparse type: one of ``words`` (``auto``), or a number (its range is checked with the options)."""

    def convert(text: str):
        if text in words:
            return text
        try:
            return parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {' or '.join(words)} or a number") from None

    return convert


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
