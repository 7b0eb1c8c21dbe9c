"""How good a style's network is, measured: its own objective against Gatys optimisation, and a fixed
strength measure that every training decision and every figure in docs/ relies on.

For every photo (resized so its shorter side is ``size``), the objective of the style's training config
(content, style and TV weights and layers; style targets from its painting at its style_size) is
computed for (a) the fast network's output and (b) the image that ``iterations`` L-BFGS iterations of
Gatys et al. reach from the photo on the same objective. fast/Gatys, the ratio of the mean objectives,
is the quality measure: 1 means the network is as good as optimising every photo. The ratio cannot
tell a strong style from a faint one (it measures the network against its own objective), so strength
is measured one fixed way for every style: 1 - d(output) / d(photo), where d is the Gram distance to
the painting at 512 px, for colour (block1_conv1, block2_conv1) and strokes (block3_conv1..block5_conv1);
and retention, 1 - c(output) / c(flat grey), where c is the content distance to the photo at block4_conv2.
``scripts/evaluate_styles.py`` is the command.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image

from fst import styles
from fst.errors import FstError
from fst.files import write_atomic
from fst.images import encode, load_image, load_painting, resize_short_side
from fst.inference import stylize
from fst.strokes import AUTO
from fst.training.objective import LossConfig

TERMS = ("total", "content", "style", "tv")
#: The fixed strength measure: the painting's size, the colour and stroke layers, the retention layer.
STRENGTH_PAINTING_SIZE = 512
COLOUR_LAYERS = ("block1_conv1", "block2_conv1")
STROKE_LAYERS = ("block3_conv1", "block4_conv1", "block5_conv1")
RETENTION_LAYER = "block4_conv2"
STRENGTHS = ("colour", "strokes", "retention")


class Strength:
    """How far outputs moved from the photo towards the painting's Gram statistics (colour, strokes),
    and how much of the photo's content they kept (retention), on one fixed VGG19 objective."""

    def __init__(self, painting: Path, vgg_weights: str | None = None):
        from fst.training.losses import PerceptualLoss

        layers = LossConfig(content_layers=[RETENTION_LAYER], style_layers=list(COLOUR_LAYERS + STROKE_LAYERS))
        self.loss = PerceptualLoss(layers, vgg_weights)
        self.loss.set_style(load_painting(str(painting), STRENGTH_PAINTING_SIZE))

    def _distances(self, image: np.ndarray) -> tuple[list, float, float]:
        """(content features, colour distance, stroke distance) of one image."""
        from fst.training.losses import style_loss

        content, grams = self.loss.features(image[None].astype(np.float32))
        n, targets = len(COLOUR_LAYERS), self.loss.target_grams
        colour = float(style_loss(grams[:n], targets[:n], [1.0] * n))
        strokes = float(style_loss(grams[n:], targets[n:], [1.0] * len(STROKE_LAYERS)))
        return content, colour, strokes

    def __call__(self, photo: np.ndarray, outputs: list[np.ndarray]) -> list[dict[str, float]]:
        from fst.training.losses import content_loss

        content, colour, strokes = self._distances(photo)
        grey = float(content_loss(self._distances(np.full_like(photo, 127))[0], content))
        figures = []
        for image in outputs:
            c, colour_out, strokes_out = self._distances(image)
            figures.append({"colour": 1 - colour_out / colour, "strokes": 1 - strokes_out / strokes,
                            "retention": 1 - float(content_loss(c, content)) / grey})
        return figures


def painting_path(style: styles.Style, paintings: Path | None) -> Path:
    """The painting the style was trained on: its recorded path, else the same file name in ``paintings``."""
    recorded = style.painting
    if recorded is not None and recorded.is_file():
        return recorded
    if recorded is not None and paintings is not None and (paintings / recorded.name).is_file():
        return paintings / recorded.name
    raise FstError(f"{style.name}: painting {recorded or '(not recorded)'} not found; pass the paintings folder")


def objective_options(style: styles.Style) -> dict:
    """The loss options of the style's training objective, as its TOML records them."""
    return {k: v for k, v in style.training.items()
            if k in ("content_weight", "style_weight", "tv_weight", "content_layers", "style_layers",
                     "style_layer_weights", "pooling")}


def objective_of(style: styles.Style, painting: Path, vgg_weights: str | None = None):
    """The style's training objective as a PerceptualLoss with its style targets set, and its options."""
    from fst.training.losses import PerceptualLoss

    options = objective_options(style)
    loss = PerceptualLoss(LossConfig(**options), vgg_weights)
    loss.set_style(load_painting(str(painting), style.painting_size))
    return loss, options


def terms_of(loss, photo: np.ndarray, image: np.ndarray) -> dict[str, float]:
    """The objective's terms for one image against its photo."""
    values = loss(image[None].astype(np.float32), loss.content_targets(photo[None].astype(np.float32)))
    return {k: float(values[k]) for k in TERMS}


def gatys_reference(photo: np.ndarray, painting: Path, options: dict, style_size: int, iterations: int,
                    cache: Path | None = None, vgg_weights: str | None = None) -> tuple[np.ndarray, float]:
    """The image ``iterations`` L-BFGS iterations reach from the photo, and the seconds that took; read
    from ``cache`` when the same objective, photo and iteration count were computed before (the result
    does not depend on the network, so evaluating checkpoint after checkpoint costs only the fast side)."""
    from fst.training.gatys import optimize

    key = hashlib.sha256(json.dumps({"options": options, "style_size": style_size, "iterations": iterations,
                                     "painting": hashlib.sha256(painting.read_bytes()).hexdigest()},
                                    sort_keys=True).encode() + photo.tobytes()).hexdigest()[:24]
    if cache is not None and (cache / f"{key}.json").is_file():
        return load_image(cache / f"{key}.png")[0], json.loads((cache / f"{key}.json").read_text())["seconds"]
    started = time.perf_counter()
    reference = optimize(photo, load_image(painting)[0], max_size=max(photo.shape[:2]),
                         style_scale=style_size / max(photo.shape[:2]), iterations=iterations,
                         init="content", progress=False, vgg_weights=vgg_weights, **options)
    seconds = time.perf_counter() - started
    if cache is not None:
        write_atomic(encode(reference, "PNG"), cache / f"{key}.png")
        write_atomic(json.dumps({"seconds": seconds}).encode(), cache / f"{key}.json")
    return reference, seconds


def _mean(rows: list[dict], key: str) -> float:
    return float(np.mean([r[key] for r in rows])) if rows else float("nan")


def evaluate(style_ref: str | Path | styles.Style, photos: list[Path], *, size: int, iterations: int = 100,
             paintings: Path | None = None, cache: Path | None = None, vgg_weights: str | None = None,
             sheet_rows: int = 6, stroke_scale: float | str = AUTO,
             measure_size: int | None = None) -> tuple[dict, list[list[np.ndarray]]]:
    """One style on the photos: mean objective terms and strengths of the fast network (and of Gatys with
    ``iterations`` > 0), and contact-sheet rows (photo, fast, Gatys) for the first ``sheet_rows``.
    ``measure_size`` measures the photo and the result resized to that shorter side (a large result as
    seen on a screen: the strength figures compare with the painting at 512 px)."""
    style = styles.get_style(style_ref)
    painting = painting_path(style, paintings)
    loss, options = objective_of(style, painting, vgg_weights)
    strength = Strength(painting, vgg_weights)
    fast, gatys, seconds_fast, seconds_gatys, sheet = [], [], [], [], []
    stylize(np.zeros((size, size, 3), np.uint8), style)  # load and compile once, untimed
    for i, path in enumerate(photos):
        photo = resize_short_side(load_image(path)[0], size)
        started = time.perf_counter()
        out = stylize(photo, style, stroke_scale=stroke_scale)
        seconds_fast.append(time.perf_counter() - started)
        if measure_size:
            photo, out = resize_short_side(photo, measure_size), resize_short_side(out, measure_size)
        fast.append(terms_of(loss, photo, out))
        row = [photo, out]
        if iterations:
            reference, seconds = gatys_reference(photo, painting, options, style.painting_size, iterations, cache,
                                                 vgg_weights)
            seconds_gatys.append(seconds)
            gatys.append(terms_of(loss, photo, reference))
            row.append(reference)
        for terms, figures in zip((fast[-1], *gatys[-1:]), strength(photo, row[1:])):
            terms.update(figures)
        if i < sheet_rows:
            sheet.append(row)
        print(f"  {style.name} {path.name}: fast {fast[-1]['total']:.4g}"
              + (f", Gatys {gatys[-1]['total']:.4g}" if gatys else ""), flush=True)
    result = {"style": style.name, "photos": len(photos),
              **{f"fast_{k}": _mean(fast, k) for k in TERMS + STRENGTHS},
              **{f"gatys_{k}": _mean(gatys, k) for k in TERMS + STRENGTHS},
              "fast_seconds": float(np.mean(seconds_fast)),
              "gatys_seconds": float(np.mean(seconds_gatys)) if seconds_gatys else float("nan")}
    result["ratio"] = result["fast_total"] / result["gatys_total"] if gatys else float("nan")
    return result, sheet


def _fmt(value: float, spec: str) -> str:
    return "-" if np.isnan(value) else format(value, spec)


def table(results: list[dict], size: int, iterations: int) -> str:
    """The results of ``evaluate`` as a Markdown table."""
    gatys = f"Gatys: {iterations} L-BFGS iterations from the photo." if iterations else "Gatys: not run."
    lines = [f"Objective of each style's training config, mean over the photos at {size} px (shorter side); "
             + gatys, "",
             "| style | photos | fast | Gatys | fast/Gatys | content fast / Gatys | style fast / Gatys "
             "| tv fast / Gatys | s/image fast / Gatys | colour fast / Gatys | strokes fast / Gatys "
             "| retention fast / Gatys |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        lines.append(f"| {r['style']} | {r['photos']} | {_fmt(r['fast_total'], '.4g')} | {_fmt(r['gatys_total'], '.4g')} "
                     f"| {_fmt(r['ratio'], '.2f')} | {_fmt(r['fast_content'], '.3g')} / {_fmt(r['gatys_content'], '.3g')} "
                     f"| {_fmt(r['fast_style'], '.3g')} / {_fmt(r['gatys_style'], '.3g')} "
                     f"| {_fmt(r['fast_tv'], '.3g')} / {_fmt(r['gatys_tv'], '.3g')} "
                     f"| {_fmt(r['fast_seconds'], '.3f')} / {_fmt(r['gatys_seconds'], '.1f')} "
                     + "".join(f"| {_fmt(r['fast_' + k], '.2f')} / {_fmt(r['gatys_' + k], '.2f')} " for k in STRENGTHS)
                     + "|")
    return "\n".join(lines) + "\n"


def contact_sheet(rows: list[list[np.ndarray]], cell: int) -> Image.Image:
    """One row per photo, one square cell (centre crop) per image."""
    sheet = Image.new("RGB", (cell * len(rows[0]), cell * len(rows)), "white")
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            h, w = image.shape[:2]
            side = min(h, w)
            crop = image[(h - side) // 2:(h - side) // 2 + side, (w - side) // 2:(w - side) // 2 + side]
            sheet.paste(Image.fromarray(crop).resize((cell, cell), Image.Resampling.LANCZOS), (c * cell, r * cell))
    return sheet
