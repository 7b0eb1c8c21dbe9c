"""The perceptual objective's settings: which VGG19 layers, and how each term is weighted.

One ``LossConfig`` configures ``fst.training.losses.PerceptualLoss`` for Gatys optimisation
(``fst.training.gatys``, these defaults) and for training (``TrainConfig`` extends it with its own defaults).
It lives apart from the losses so that reading it (the CLI's options, a config file) needs no Keras.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from fst.errors import FstError

#: The smallest side VGG19 can read (a training crop, a painting, a Gatys image): its poolings halve it
#: four times on the way to block5_conv1.
MIN_SIDE = 16
#: Gatys et al.'s objective, the default of ``fst optimize``: content at relu4_2, style at relu1_1..relu5_1.
CONTENT_WEIGHT = 1.0
STYLE_WEIGHT = 50.0
TV_WEIGHT = 10.0
CONTENT_LAYERS = ("block4_conv2",)
STYLE_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")
POOLING = ("max", "avg")
#: What each setting does, for --help.
HELP = {
    "content_weight": "weight of the content term",
    "style_weight": "weight of the Gram style term",
    "tv_weight": "weight of total variation (smoothness)",
    "content_layers": "VGG19 layers whose features the output keeps from the photo",
    "style_layers": "VGG19 layers whose Gram matrices the output takes from the painting",
    "style_layer_weights": "one weight per style layer (default 1 each)",
    "pooling": "VGG19's pooling: max, or avg",
}


@dataclass
class LossConfig:
    """Content + weighted Gram style + total variation over VGG19 layers (names like block4_conv2 or relu4_2)."""

    content_weight: float = field(default=CONTENT_WEIGHT, metadata={"help": HELP["content_weight"]})
    style_weight: float = field(default=STYLE_WEIGHT, metadata={"help": HELP["style_weight"]})
    tv_weight: float = field(default=TV_WEIGHT, metadata={"help": HELP["tv_weight"]})
    content_layers: list[str] = field(default_factory=lambda: list(CONTENT_LAYERS),
                                      metadata={"help": HELP["content_layers"]})
    style_layers: list[str] = field(default_factory=lambda: list(STYLE_LAYERS), metadata={"help": HELP["style_layers"]})
    style_layer_weights: list[float] | None = field(default=None, metadata={
        "element": float, "help": HELP["style_layer_weights"]})
    pooling: str = field(default="max", metadata={"choices": POOLING, "help": HELP["pooling"]})

    def __post_init__(self):
        if self.style_layer_weights is None:
            self.style_layer_weights = [1.0] * len(self.style_layers)
        if len(self.style_layer_weights) != len(self.style_layers):
            raise FstError(f"{len(self.style_layer_weights)} style layer weights for "
                           f"{len(self.style_layers)} style layers")
        if self.pooling not in POOLING:
            raise FstError(f"pooling must be max or avg, not {self.pooling!r}")

    @classmethod
    def of(cls, settings: Any) -> "LossConfig":
        """The loss settings found in a mapping (a style's TOML) or a dataclass (a TrainConfig);
        the defaults for the rest."""
        values = settings if isinstance(settings, dict) else vars(settings)
        return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})
