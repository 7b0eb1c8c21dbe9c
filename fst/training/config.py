"""Training configs: one TOML file per painting, every key overridable from the command line."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fst.errors import FstError
from fst.training.objective import HELP, MIN_SIDE, LossConfig

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib


#: Training's own defaults: content at relu2_2 as in Johnson et al., which keeps more of the photo.
TRAIN_CONTENT_LAYERS = ("block2_conv2",)
TRAIN_STYLE_WEIGHT = 0.3
#: Weight of the stability term (Gupta et al. 2017) that keeps video frames from flickering. On equal
#: 600-step runs 3000 halved the flicker of a noisy still at no cost in the objective; 100 did little
#: and 10000 left a bright blob in every image.
STABILITY_WEIGHT = 3000.0
#: Pixels at each border left out of the shifted stability term (``stability_shift``): there the
#: network's padding, not the photo, decides the output (inference adds a mirrored margin this wide).
SHIFT_BORDER = 16


def parse_duration(text: str | float) -> float:
    """Seconds in "90", "90s", "7m", "1.5h" (a plain number is seconds)."""
    units = {"s": 1, "m": 60, "h": 3600}
    value = str(text).strip().lower()
    scale = units.get(value[-1:], 1) if value else 1
    try:
        seconds = float(value[:-1] if value[-1:] in units else value) * scale
    except ValueError:
        seconds = float("nan")
    if not seconds > 0 or seconds == float("inf"):
        raise FstError(f"time limit {text!r} is not a positive duration such as 90s, 7m or 1h")
    return seconds


#: What each annotated field type accepts from a TOML file or the command line, and how to say it.
_KINDS = {"int": (int,), "float": (int, float), "str": (str, int, float), "bool": (bool,)}
_SAY = {"int": ("a whole number", "whole numbers"), "float": ("a number", "numbers"),
        "str": ("text", "texts"), "bool": ("true or false", "true or false values")}
_CAST = {"int": int, "float": float, "str": str, "bool": bool}


def _is(value: Any, kind: str) -> bool:
    return isinstance(value, _KINDS[kind]) and (kind == "bool" or not isinstance(value, bool))


def _checked_type(key: str, value: Any, kind: str) -> Any:
    """The value as the field's type (1 for a float is 1.0, 1889 for a text is "1889"); a one-line error
    for a value of another kind (``steps = "abc"`` in a config), before any work."""
    if kind.startswith("list["):
        element = kind.removeprefix("list[").split("]")[0]
        if value is None and kind.endswith("| None"):
            return value
        if not isinstance(value, list) or not all(_is(v, element) for v in value):
            raise FstError(f"{key} must be a list of {_SAY[element][1]}, not {value!r}")
        return [_CAST[element](v) for v in value]
    if not _is(value, kind):
        raise FstError(f"{key} must be {_SAY[kind][0]}, not {value!r}")
    return _CAST[kind](value)


@dataclass
class TrainConfig(LossConfig):
    """Everything that defines a trained style; a configs/NAME.toml file sets these keys.

    The loss keys are LossConfig's (``self.loss``), with training's own defaults below.
    """

    name: str = ""
    style_image: str = ""
    title: str = ""
    artist: str = ""
    year: str = ""
    license: str = ""
    # Loss (training's defaults; the other loss keys are LossConfig's)
    style_weight: float = field(default=TRAIN_STYLE_WEIGHT, metadata={"help": HELP["style_weight"]})
    content_layers: list[str] = field(default_factory=lambda: list(TRAIN_CONTENT_LAYERS),
                                      metadata={"help": HELP["content_layers"]})
    stability_weight: float = STABILITY_WEIGHT
    stability_noise: float = 3.0
    stability_shift: int = field(default=0, metadata={"help": (
        "also move the noisy copy by up to this many pixels (3 covers the network's four stride phases) and "
        "compare the outputs moved alike, so strokes follow a panning scene instead of shimmering; 0: noise only")})
    stability_still_weight: float = field(default=0.0, metadata={"help": (
        "with stability_shift, also compare the unmoved noisy copy at this weight, so a still scene's noise "
        "flickers no more than without the shift; 0: the moved copy only")})
    saturation_weight: float = field(default=0.0, metadata={"help": (
        "weight of a penalty on output pixels pushed past 0..255 before the output's tanh: a saturated pixel "
        "gets no gradient and grows into a black or white blob; 0: none")})
    style_size: int = 512
    # Data and optimisation
    image_size: int = 256
    batch_size: int = 4
    steps: int = 20000
    learning_rate: float = 1e-3
    lr_schedule: str = "constant"
    seed: int = 0
    #: Start from a trained style's network (a name or a .weights.h5 path) instead of random weights:
    #: to fine-tune it, e.g. at a larger image size or with a decaying learning rate.
    init: str = ""
    # Network
    upsampling: str = "transpose"
    width: float = 1.0
    # Run
    checkpoint_every: int = 200
    preview_every: int = 1000
    time_limit: str = field(default="", metadata={"help": (
        "stop at the last checkpoint that fits in this much wall time (90s, 7m, 2h or seconds) and export "
        "the style with the steps reached; the same command resumes")})
    workers: int = 2
    cache_photos: bool = field(default=False, metadata={"help": "keep the decoded photos in memory after "
                                                                 "their first read (a photo set that fits)"})
    mixed_precision: str = "none"
    jit_compile: bool = False
    distribute: str = "auto"

    #: Keys that do not change the trained weights: a checkpoint resumes a run that differs only in these
    #: (the painting is identified by its bytes, not its path; more steps extend a constant-rate run).
    NOT_IN_FINGERPRINT = ("name", "style_image", "title", "artist", "year", "license",
                          "checkpoint_every", "preview_every", "workers", "steps", "time_limit", "cache_photos")

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, **overrides: Any) -> "TrainConfig":
        """Defaults, then the TOML file's keys, then the overrides (None values ignored)."""
        values: dict[str, Any] = {}
        if path is not None:
            path = Path(path)
            if not path.is_file():
                raise FstError(f"{path}: no such config file")
            try:
                values = tomllib.loads(path.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise FstError(f"{path}: invalid TOML ({exc})") from None
            if values.get("style_image") and not Path(values["style_image"]).is_absolute():
                values["style_image"] = str((path.parent / values["style_image"]).resolve())
            init = values.get("init", "")
            if init.endswith(".weights.h5") and not Path(init).is_absolute():
                values["init"] = str((path.parent / init).resolve())
        values.update({k: v for k, v in overrides.items() if v is not None})
        kinds = {f.name: f.type for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(kinds))
        if unknown:
            raise FstError(f"unknown config keys: {', '.join(unknown)}")
        config = cls(**{key: _checked_type(key, value, kinds[key]) for key, value in values.items()})
        config.validate()
        return config

    def validate(self) -> None:
        """Every value in its range, before any work (nothing is written for a config that fails)."""
        if not self.name:
            raise FstError("the style needs a name (name = ... in the config, or --name)")
        from fst.styles import check_name

        check_name(self.name)
        for key in ("steps", "batch_size", "checkpoint_every", "preview_every", "workers"):
            if getattr(self, key) < 1:
                raise FstError(f"{key} must be at least 1, not {getattr(self, key)}")
        for key in ("image_size", "style_size"):
            if getattr(self, key) < MIN_SIDE:
                raise FstError(f"{key} must be at least {MIN_SIDE} pixels, not {getattr(self, key)}")
        if not 0 < self.width < math.inf:
            raise FstError(f"width must be a positive number, not {self.width}")
        weights = ("learning_rate", "content_weight", "style_weight", "tv_weight", "stability_weight",
                   "stability_still_weight", "stability_noise", "saturation_weight")
        for key, value in [(k, getattr(self, k)) for k in weights] + [
                ("style_layer_weights", w) for w in self.style_layer_weights]:
            if not 0 <= value < math.inf:
                raise FstError(f"{key} must be zero or more, not {value}")
        if not self.style_image:
            raise FstError("no painting given (style_image = ... in the config, or --style)")
        if not Path(self.style_image).is_file():
            raise FstError(f"{self.style_image}: painting not found")
        if not 0 <= self.stability_shift < self.image_size - 2 * SHIFT_BORDER:
            raise FstError(f"stability_shift must be from 0 to {self.image_size - 2 * SHIFT_BORDER - 1} pixels at "
                           f"image_size {self.image_size}, not {self.stability_shift}")
        if self.stability_still_weight and not self.stability_shift:
            raise FstError("stability_still_weight needs stability_shift: without a shift, stability_weight "
                           "is the still term")
        if self.steps % self.checkpoint_every and self.steps > self.checkpoint_every:
            raise FstError(f"steps ({self.steps}) must be a multiple of checkpoint_every ({self.checkpoint_every})")
        if self.mixed_precision not in ("none", "mixed_float16", "mixed_bfloat16"):
            raise FstError(f"mixed_precision must be none, mixed_float16 or mixed_bfloat16, not {self.mixed_precision}")
        if self.init_style is not None:
            options = self.init_style.network_options
            mine = {"upsampling": self.upsampling, "width": self.width}
            if {k: options.get(k, v) for k, v in mine.items()} != mine:
                raise FstError(f"init {self.init!r} has network options {options}, the config asks for {mine}")
        if self.lr_schedule not in ("constant", "cosine"):
            raise FstError(f"lr_schedule must be constant or cosine, not {self.lr_schedule}")
        if self.time_limit:
            parse_duration(self.time_limit)

    @functools.cached_property
    def init_style(self):
        """The style whose network training starts from (``init``), resolved once; None for random weights."""
        if not self.init:
            return None
        from fst.styles import get_style

        return get_style(self.init)

    @property
    def loss(self) -> LossConfig:
        """The perceptual loss this config trains against."""
        return LossConfig.of(self)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        """A hash of the keys that change the trained weights."""
        ignored = set(self.NOT_IN_FINGERPRINT) - ({"steps"} if self.lr_schedule == "cosine" else set())
        relevant = {k: v for k, v in self.to_dict().items() if k not in ignored}
        relevant["style_image_sha256"] = hashlib.sha256(Path(self.style_image).read_bytes()).hexdigest()
        # Runs from before these keys keep their fingerprints.
        for key in ("stability_shift", "stability_still_weight", "saturation_weight"):
            if not relevant[key]:
                del relevant[key]
        # The starting network by its bytes, like the painting; runs without one keep their old fingerprints.
        if relevant.pop("init"):
            relevant["init"] = hashlib.sha256(self.init_style.weights.read_bytes()).hexdigest()
        return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]
