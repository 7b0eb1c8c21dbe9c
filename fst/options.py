"""How to stylize, encode and cut a video, declared once: each option's default, range and help text.

``StylizeOptions`` is checked once when made and then passed down unchanged (the pipeline, video,
the server); ``OutputOptions`` likewise for the format and quality, ``VideoOptions`` for ``fst video``.
The commands make their flags from their fields (``fst.cli.options.flags``) and the server its
parameters (``fst.serve.app.StylizeParams``), so an option is added here and nowhere else.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any

from fst.errors import FstError
from fst.images import format_named
from fst.strokes import AUTO
from fst.tiling import MIN_TILE_SIZE, TILE_SIZE

MAX_STROKE_SCALE = 64.0
#: Limits of a video's start time and of a folder's frame rate: 10**9 seconds (32 years) still fit
#: FFmpeg's 64-bit timestamps in time bases down to a nanosecond; a folder's rate is kept as a fraction
#: over at most 1001, which rounds a rate under 0.001 to 0; over 10000 frames a second is no video.
MAX_START = 10**9
MIN_FPS, MAX_FPS = 0.001, 10000


def option(default: Any, help: str, kind: type, *, low: float | None = None, high: float | None = None,
           over: float | None = None, unit: str = "", words: tuple[str, ...] = (), metavar: str | None = None) -> Any:
    """A field of an options class: its default, the kind of value (``Integral``, ``Real``, ``bool``, ``str``),
    its range (``low`` and ``high`` included, ``over`` excluded; a number is always finite), the unit its
    range is said in, words it also takes (``"auto"``), and its help text."""
    return field(default=default, metadata={"help": help, "kind": kind, "low": low, "high": high, "over": over,
                                            "unit": unit, "words": words, "metavar": metavar})


def _number(value: float) -> str:
    """1,000,000,000 and 64 for whole numbers, 0.001 for the rest."""
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def check_fields(options: Any) -> None:
    """One-line errors for values of the wrong kind or out of range, named as the user wrote them."""
    for f in dataclasses.fields(options):
        value, meta = getattr(options, f.name), f.metadata
        if value is None and f.default is None or isinstance(value, str) and value in meta["words"]:
            continue
        kind = meta["kind"]
        if kind is str:
            if not isinstance(value, str):
                raise FstError(f"{f.name} must be a text, not {value!r}")
            continue
        if kind is bool:
            if not isinstance(value, bool):
                raise FstError(f"{f.name} must be True or False, not {value!r}")
            continue
        if not isinstance(value, kind) or isinstance(value, bool):
            noun = "a whole number" if kind is Integral else "a number"
            raise FstError(f"{f.name} must be {noun}, not {value!r}")
        low, high, over = meta["low"], meta["high"], meta["over"]
        if ((isinstance(value, Integral) or math.isfinite(value)) and (low is None or value >= low)
                and (high is None or value <= high) and (over is None or value > over)):
            continue
        if over is not None:
            bound, one = f"over {_number(over)}", False
        elif high is None:
            bound, one = f"at least {_number(low)}", low == 1
        else:
            bound, one = f"between {_number(low)} and {_number(high)}", False
        unit = f" {meta['unit']}{'' if one else 's'}" if meta["unit"] else ""
        alternatives = "".join(f"{word!r} or " for word in meta["words"])
        raise FstError(f"{f.name.replace('_', ' ')} must be {alternatives}{bound}{unit}, not {value}")


@dataclass(frozen=True)
class StylizeOptions:
    """How to stylize: checked once when made, then passed down unchanged."""

    max_size: int | None = option(None, "resize so the longer side is at most N pixels (N >= 1) first", Integral,
                                  low=1, unit="pixel", metavar="N")
    strength: float = option(1.0, "blend of stylized (1) and original (0)", Real, low=0.0, high=1.0)
    preserve_color: bool = option(False, "keep the original's colours, transfer only luminance", bool)
    stroke_scale: float | str = option(
        AUTO, "paint strokes K times larger (1 to 64), so that they do not shrink to a fine texture on large "
              "photos; auto: K is the shorter side over 512 px (1 below it); 1 turns it off",
        Real, low=1.0, high=MAX_STROKE_SCALE, words=(AUTO,), metavar="K")
    tile_size: int = option(TILE_SIZE, f"stylize images (and frames) over N*N pixels in overlapping NxN tiles "
                                       f"(N >= {MIN_TILE_SIZE})", Integral, low=MIN_TILE_SIZE, unit="pixel",
                            metavar="N")

    def __post_init__(self):
        check_fields(self)

    @classmethod
    def of(cls, options: dict, where: str, base: StylizeOptions | None = None) -> StylizeOptions:
        """Options from keyword arguments given to ``where`` (over ``base``); a one-line error naming an
        unknown one."""
        known = [f.name for f in dataclasses.fields(cls)]
        for key in options:
            if key not in known:
                hint = "; the format comes from dst's extension" if key == "format" and where == "run" else ""
                raise FstError(f"{where}() has no option {key!r} (options: {', '.join(known)}){hint}")
        return dataclasses.replace(base or cls(), **options)


@dataclass(frozen=True)
class OutputOptions:
    """How to encode a stylized image: the format (by name; default the input's own, or the
    destination's extension) and the JPEG/WebP quality."""

    format: str | None = option(None, "output format for - and folders, e.g. png or jpg (default: png for -, "
                                      "the input's own for folders)", str)
    quality: int = option(95, "JPEG/WebP quality, 1 to 100", Integral, low=1, high=100)

    def __post_init__(self):
        check_fields(self)
        if self.format is not None:
            format_named(self.format)


@dataclass(frozen=True)
class VideoOptions:
    """What part of a video to stylize, at what rate and in what batches, and how to encode it; checked
    when made (the encoder and its CRF range once the destination's container is known)."""

    start: float = option(0.0, "skip to this time first", Real, low=0, high=MAX_START, unit="second",
                          metavar="SECONDS")
    duration: float | None = option(None, "stylize only this many seconds", Real, over=0, unit="second",
                                    metavar="SECONDS")
    codec: str | None = option(None, "video encoder, e.g. libx264, libvpx-vp9, mpeg4 (default from the extension)",
                               str)
    crf: int | None = option(None, "constant quality, lower is better: 0 to 51 for H.264 (default 18), "
                                   "0 to 63 for VP9 (default 31)", Integral)
    fps: float = option(25.0, f"frame rate of a folder of frames, {MIN_FPS} to {MAX_FPS}", Real, low=MIN_FPS,
                        high=MAX_FPS)
    batch_size: int = option(4, "frames per forward pass", Integral, low=1)

    def __post_init__(self):
        """The time range, rate and batch size, as one-line errors before any work: NaN, infinity and huge
        values would otherwise fail mid-render (a seek to NaN, a timestamp or time base past 64 bits, a
        folder's rate rounded to 0)."""
        check_fields(self)
