"""Quality harness: each style's own objective, fast network against Gatys optimisation.

    python scripts/evaluate_styles.py great_wave --out docs/evaluation
    python scripts/evaluate_styles.py runs/a/out/a.weights.h5 --limit 8 --iterations 0   # fast network only
    python scripts/evaluate_styles.py runs/a/out/a.weights.h5 --cache runs/gatys   # reuse Gatys results

For every style and every photo (resized so its shorter side is --size), the objective of the
style's training config (content, style and TV weights and layers; style targets from its painting
at its style_size) is computed for (a) the fast network's output and (b) the image that
--iterations L-BFGS iterations of Gatys et al. reach from the photo on the same objective.
fast/Gatys, the ratio of the mean objectives, is the quality measure: 1 means the network is as
good as optimising every photo. The ratio cannot tell a strong style from a faint one (it measures
the network against its own objective), so the table also gives strength, measured one fixed way
for every style: 1 - d(output) / d(photo), where d is the Gram distance to the painting at 512 px,
for colour (block1_conv1, block2_conv1) and strokes (block3_conv1..block5_conv1); and retention,
1 - c(output) / c(flat grey), where c is the content distance to the photo at block4_conv2.
Writes evaluation.md (the table) and contact_NAME.png (photo, fast, Gatys per row) into --out. The Gatys result does not depend on the network: with --cache it
is computed once per objective, photo and iteration count, so evaluating checkpoint after
checkpoint costs only the fast side.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image

from fst import styles
from fst.cli.options import stroke_scale
from fst.files import write_atomic
from fst.gatys import optimize
from fst.images import encode, find_images, load_image, load_painting
from fst.inference import stylize
from fst.training.losses import content_loss, style_loss
from fst.training.objective import LossConfig

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
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

    def __init__(self, painting: Path, vgg_weights: str | None):
        from fst.training.losses import PerceptualLoss

        layers = LossConfig(content_layers=[RETENTION_LAYER], style_layers=list(COLOUR_LAYERS + STROKE_LAYERS))
        self.loss = PerceptualLoss(layers, vgg_weights)
        self.loss.set_style(load_painting(str(painting), STRENGTH_PAINTING_SIZE))

    def _distances(self, image: np.ndarray) -> tuple[list, float, float]:
        """(content features, colour distance, stroke distance) of one image."""
        content, grams = self.loss.features(image[None].astype(np.float32))
        n, targets = len(COLOUR_LAYERS), self.loss.target_grams
        colour = float(style_loss(grams[:n], targets[:n], [1.0] * n))
        strokes = float(style_loss(grams[n:], targets[n:], [1.0] * len(STROKE_LAYERS)))
        return content, colour, strokes

    def __call__(self, photo: np.ndarray, outputs: list[np.ndarray]) -> list[dict[str, float]]:
        content, colour, strokes = self._distances(photo)
        grey = float(content_loss(self._distances(np.full_like(photo, 127))[0], content))
        figures = []
        for image in outputs:
            c, colour_out, strokes_out = self._distances(image)
            figures.append({"colour": 1 - colour_out / colour, "strokes": 1 - strokes_out / strokes,
                            "retention": 1 - float(content_loss(c, content)) / grey})
        return figures


def resize_short_side(rgb: np.ndarray, size: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    scale = size / min(h, w)
    return np.asarray(Image.fromarray(rgb).resize((max(1, round(w * scale)), max(1, round(h * scale))),
                                                  Image.Resampling.LANCZOS))


def painting_path(style: styles.Style, paintings: Path) -> Path:
    """The painting the style was trained on: its recorded path, else the same file name in `paintings`."""
    recorded = Path(style.meta.get("training", {}).get("style_image", ""))
    if recorded.is_file():
        return recorded
    if (paintings / recorded.name).is_file() and recorded.name:
        return paintings / recorded.name
    raise SystemExit(f"{style.name}: painting {str(recorded) or '(not recorded)'} not found; pass --paintings")


def objective_of(style: styles.Style, painting: Path, vgg_weights: str | None):
    """The style's training objective as a PerceptualLoss with its style targets set, and its options."""
    from fst.training.losses import PerceptualLoss

    cfg = style.meta.get("training", {})
    options = {k: cfg[k] for k in ("content_weight", "style_weight", "tv_weight", "content_layers", "style_layers",
                                   "style_layer_weights", "pooling") if k in cfg}
    loss = PerceptualLoss(LossConfig(**options), vgg_weights)
    loss.set_style(load_painting(str(painting), cfg.get("style_size", 512)))
    return loss, options, cfg.get("style_size", 512)


def terms_of(loss, photo: np.ndarray, image: np.ndarray) -> dict[str, float]:
    values = loss(image[None].astype(np.float32), loss.content_targets(photo[None].astype(np.float32)))
    return {k: float(values[k]) for k in TERMS}


def gatys_reference(photo: np.ndarray, painting: Path, options: dict, style_size: int, args) -> tuple[np.ndarray, float]:
    """The image --iterations L-BFGS iterations reach from the photo, and the seconds that took;
    read from --cache when the same objective, photo and iteration count were computed before."""
    key = hashlib.sha256(json.dumps({"options": options, "style_size": style_size, "iterations": args.iterations,
                                     "painting": hashlib.sha256(painting.read_bytes()).hexdigest()},
                                    sort_keys=True).encode() + photo.tobytes()).hexdigest()[:24]
    if args.cache is not None and (args.cache / f"{key}.json").is_file():
        return load_image(args.cache / f"{key}.png")[0], json.loads((args.cache / f"{key}.json").read_text())["seconds"]
    started = time.perf_counter()
    reference = optimize(photo, load_image(painting)[0], max_size=max(photo.shape[:2]),
                         style_scale=style_size / max(photo.shape[:2]), iterations=args.iterations,
                         init="content", progress=False, vgg_weights=args.vgg_weights, **options)
    seconds = time.perf_counter() - started
    if args.cache is not None:
        write_atomic(encode(reference, "PNG"), args.cache / f"{key}.png")
        write_atomic(json.dumps({"seconds": seconds}).encode(), args.cache / f"{key}.json")
    return reference, seconds


def mean(rows: list[dict], key: str) -> float:
    return float(np.mean([r[key] for r in rows])) if rows else float("nan")


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


def evaluate(style_ref: str, photos: list[Path], args) -> tuple[dict, list[list[np.ndarray]]]:
    style = styles.get_style(style_ref)
    painting = painting_path(style, args.paintings)
    loss, options, style_size = objective_of(style, painting, args.vgg_weights)
    strength = Strength(painting, args.vgg_weights)
    fast, gatys, seconds_fast, seconds_gatys, sheet = [], [], [], [], []
    stylize(np.zeros((args.size, args.size, 3), np.uint8), style)  # load and compile once, untimed
    for i, path in enumerate(photos):
        photo = resize_short_side(load_image(path)[0], args.size)
        started = time.perf_counter()
        out = stylize(photo, style, stroke_scale=args.stroke_scale)
        seconds_fast.append(time.perf_counter() - started)
        if args.measure_size:  # measured as seen at that size (a large result on a screen)
            photo, out = resize_short_side(photo, args.measure_size), resize_short_side(out, args.measure_size)
        fast.append(terms_of(loss, photo, out))
        row = [photo, out]
        if args.iterations:
            reference, seconds = gatys_reference(photo, painting, options, style_size, args)
            seconds_gatys.append(seconds)
            gatys.append(terms_of(loss, photo, reference))
            row.append(reference)
        for terms, figures in zip((fast[-1], *gatys[-1:]), strength(photo, row[1:])):
            terms.update(figures)
        if i < args.sheet_rows:
            sheet.append(row)
        print(f"  {style.name} {path.name}: fast {fast[-1]['total']:.4g}"
              + (f", Gatys {gatys[-1]['total']:.4g}" if gatys else ""), flush=True)
    result = {"style": style.name, "photos": len(photos),
              **{f"fast_{k}": mean(fast, k) for k in TERMS + STRENGTHS},
              **{f"gatys_{k}": mean(gatys, k) for k in TERMS + STRENGTHS},
              "fast_seconds": float(np.mean(seconds_fast)),
              "gatys_seconds": float(np.mean(seconds_gatys)) if seconds_gatys else float("nan")}
    result["ratio"] = result["fast_total"] / result["gatys_total"] if gatys else float("nan")
    return result, sheet


def fmt(value: float, spec: str) -> str:
    return "-" if np.isnan(value) else format(value, spec)


def table(results: list[dict], args) -> str:
    gatys = f"Gatys: {args.iterations} L-BFGS iterations from the photo." if args.iterations else "Gatys: not run."
    lines = [f"Objective of each style's training config, mean over the photos at {args.size} px (shorter side); "
             + gatys, "",
             "| style | photos | fast | Gatys | fast/Gatys | content fast / Gatys | style fast / Gatys "
             "| tv fast / Gatys | s/image fast / Gatys | colour fast / Gatys | strokes fast / Gatys "
             "| retention fast / Gatys |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        lines.append(f"| {r['style']} | {r['photos']} | {fmt(r['fast_total'], '.4g')} | {fmt(r['gatys_total'], '.4g')} "
                     f"| {fmt(r['ratio'], '.2f')} | {fmt(r['fast_content'], '.3g')} / {fmt(r['gatys_content'], '.3g')} "
                     f"| {fmt(r['fast_style'], '.3g')} / {fmt(r['gatys_style'], '.3g')} "
                     f"| {fmt(r['fast_tv'], '.3g')} / {fmt(r['gatys_tv'], '.3g')} "
                     f"| {fmt(r['fast_seconds'], '.3f')} / {fmt(r['gatys_seconds'], '.1f')} "
                     + "".join(f"| {fmt(r['fast_' + k], '.2f')} / {fmt(r['gatys_' + k], '.2f')} " for k in STRENGTHS)
                     + "|")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("styles", nargs="+", help="style names or .weights.h5 paths")
    parser.add_argument("--photos", type=Path, default=SHARED / "photos" / "val", help="folder of photos")
    parser.add_argument("--paintings", type=Path, default=SHARED / "styles",
                        help="where to find a painting whose recorded path is not on this machine")
    parser.add_argument("--size", type=int, default=256, help="shorter side of each photo (default 256)")
    parser.add_argument("--iterations", type=int, default=100, help="Gatys L-BFGS iterations (0: fast only)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N photos")
    parser.add_argument("--sheet-rows", type=int, default=6, help="photos on the contact sheet")
    parser.add_argument("--out", type=Path, default=Path("evaluation"))
    parser.add_argument("--cache", type=Path, default=None,
                        help="folder that keeps each Gatys result, to reuse when evaluating again")
    parser.add_argument("--vgg-weights", default=None, help="VGG19 weights file (else $FST_VGG19_WEIGHTS)")
    parser.add_argument("--measure-size", type=int, default=None,
                        help="measure the photo and the result resized to this shorter side (default: --size); "
                             "the strength figures compare with the painting at 512 px, so a result at 2048 px "
                             "is measured as seen at 512")
    parser.add_argument("--stroke-scale", type=stroke_scale, default="auto",
                        help="the fast network's stroke scale (default auto, as fst run; 1 turns it off)")
    args = parser.parse_args()

    photos = find_images(args.photos)[:args.limit]
    if not photos:
        raise SystemExit(f"{args.photos}: no photos")
    results = []
    for style in args.styles:
        result, sheet = evaluate(style, photos, args)
        # Two versions of one style (a checkpoint against the shipped file) get their own sheets.
        repeats = sum(r["style"] == result["style"] for r in results)
        results.append(result)
        args.out.mkdir(parents=True, exist_ok=True)
        name = result["style"] + (f"_{repeats + 1}" if repeats else "")
        write_atomic(encode(np.asarray(contact_sheet(sheet, args.size)), "PNG"), args.out / f"contact_{name}.png")
    report = table(results, args)
    write_atomic(report.encode(), args.out / "evaluation.md")
    print("\n" + report)


if __name__ == "__main__":
    main()
