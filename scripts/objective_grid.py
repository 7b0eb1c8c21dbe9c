"""Choose a painting's objective by looking at what Gatys optimisation makes of it.

    python scripts/objective_grid.py starry_night              # compute what is missing, then the grid
    python scripts/objective_grid.py starry_night --grid-only  # only the grid and table, from the cache
    python scripts/objective_grid.py udnie --photo-names 000033.jpg --only default --no-grid  # one result

Gatys optimisation shows what a perfect network would output for an objective, so it can choose the
objective before any training. For one painting, every candidate objective (a few ``fst.optimize``
keyword arguments under a short id) runs --iterations L-BFGS iterations from each photo at --size px.
Each result is kept as runs/objectives/NAME/CANDIDATE/PHOTO.png and never recomputed, so a stopped
run resumes where it stopped. The candidates: ``default``, the objective of ``fst optimize`` (content
block4_conv2, style weight 50, painting as large as the image); ``shipped``, the objective the shipped
network was trained on (from weights/NAME.toml, its painting at its style_size in pixels; configs/NAME.toml
now asks for the objective chosen here, which the next retraining ships); then
variations for larger, more visible strokes. The grid (photo and shipped network first, then one
column per candidate) goes to runs/objectives/NAME.jpg with each image's strength and retention
(``fst.training.evaluation.Strength``), and the table to docs/objectives/NAME.md. The grid stays
out of the repository: it shows the val photos, whose rights are their owners' (never copy them into
the project); anyone with ../shared rebuilds it with --grid-only.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from fst import styles
from fst.files import write_atomic
from fst.images import encode, load_image, resize_short_side
from fst.training.evaluation import STRENGTHS, Strength, painting_path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
#: Faces (000004, 000034, 000028), buildings (000033, 000046), a landscape (000043), in an order
#: that covers each kind early, since the photos are computed one after another.
PHOTOS = ("000004.jpg", "000033.jpg", "000043.jpg", "000034.jpg", "000028.jpg", "000046.jpg")
#: Variations tried on every painting, beside default and shipped: the painting at 768 px on a 512 px
#: image paints strokes 1.5 times larger; block5_conv1 (whose Gram distance is about 1/10,000 of
#: block4_conv1's, so it counts for nothing at weight 1) weighted up for the painting's large
#: structures; content at block3_conv3 keeps edges sharper than block4_conv2 for faces.
VARIATIONS = {
    "s768": {"style_scale": 1.5},
    "s768_deep": {"style_scale": 1.5, "style_layer_weights": [0.5, 0.5, 1.0, 1.0, 1000.0]},
    "b3_s768": {"style_scale": 1.5, "content_layers": ["block3_conv3"]},
}
#: Per painting, candidates that replace or add to VARIATIONS. Udnie's large flat shapes seemed faint at
#: style weight 50 in the small grid; ten times the weight facets a little more but keeps less of the face.
EXTRA: dict[str, dict[str, dict]] = {"udnie": {"sw500": {"style_weight": 500.0}}}


def candidates(style: styles.Style, size: int) -> dict[str, dict]:
    """Candidate id -> fst.optimize keyword arguments, default and shipped first."""
    shipped = {k: v for k, v in style.training.items()
               if k in ("content_weight", "style_weight", "tv_weight", "content_layers", "style_layers",
                        "style_layer_weights", "pooling")}
    shipped["style_scale"] = style.painting_size / size
    return {"default": {}, "shipped": shipped, **VARIATIONS, **EXTRA.get(style.name, {})}


def describe(options: dict, size: int) -> str:
    """The arguments that differ from fst.optimize's defaults, with the painting's size in pixels."""
    shown = {k: v for k, v in options.items() if k != "style_scale"}
    shown["painting"] = f"{round(options.get('style_scale', 1.0) * size)} px"
    return ", ".join(f"{k}={v}" for k, v in shown.items())


def compute(name: str, folder: Path, options: dict, photos: dict[str, np.ndarray], painting: np.ndarray, args) -> None:
    """Runs Gatys for every photo that has no cached result under `folder`."""
    from fst.training.gatys import optimize

    recorded = folder / "options.json"
    if not recorded.is_file():
        write_atomic(json.dumps(options).encode(), recorded)
    elif json.loads(recorded.read_text()) != options:
        raise SystemExit(f"{folder}: cached with other options ({recorded.read_text()}); rename the candidate")
    for photo_name, photo in photos.items():
        out = folder / f"{Path(photo_name).stem}.png"
        if out.is_file():
            continue
        started = time.perf_counter()
        result = optimize(photo, painting, max_size=args.size, iterations=args.iterations, init="content",
                          progress=False, vgg_weights=args.vgg_weights, **options)
        write_atomic(encode(result, "PNG"), out)
        print(f"{name} {folder.name} {photo_name}: {time.perf_counter() - started:.0f} s", flush=True)


def cell_image(image: np.ndarray, cell: int) -> Image.Image:
    """The centre square of an image, at cell x cell."""
    h, w = image.shape[:2]
    side = min(h, w)
    crop = image[(h - side) // 2:(h - side) // 2 + side, (w - side) // 2:(w - side) // 2 + side]
    return Image.fromarray(crop).resize((cell, cell), Image.Resampling.LANCZOS)


def grid(painting: np.ndarray, columns: list[str], rows: list[list[np.ndarray | None]],
         figures: list[list[dict | None]], cell: int) -> Image.Image:
    """Candidates across, photos down; each image labelled with colour / strokes / retention."""
    font = ImageFont.load_default(size=max(12, cell // 16))
    head, foot = cell // 2, cell // 12 + 4
    sheet = Image.new("RGB", (cell * len(columns), head + (cell + foot) * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    thumb = Image.fromarray(painting)
    thumb.thumbnail((cell, head), Image.Resampling.LANCZOS)
    sheet.paste(thumb, ((cell - thumb.width) // 2, (head - thumb.height) // 2))
    for c, label in enumerate(columns[1:], 1):
        draw.text((c * cell + 6, head // 2), label, fill="black", font=font, anchor="lm")
    for r, (row, numbers) in enumerate(zip(rows, figures)):
        y = head + r * (cell + foot)
        for c, (image, figure) in enumerate(zip(row, numbers)):
            if image is None:
                draw.text((c * cell + cell // 2, y + cell // 2), "not yet", fill="grey", font=font, anchor="mm")
                continue
            sheet.paste(cell_image(image, cell), (c * cell, y))
            if figure is not None:
                text = " ".join(f"{k[0]} {figure[k]:.2f}" for k in STRENGTHS)
                draw.text((c * cell + 4, y + cell + 2), text, fill="black", font=font)
    return sheet


def mean(values: list[float]) -> str:
    return f"{np.mean(values):.2f}" if values else "-"


def table(name: str, ids: list[str], options: dict[str, dict], figures: dict[str, dict[str, dict]],
          photo_names: list[str], args) -> str:
    """The candidates' mean figures, then each photo's."""
    lines = [f"# Objective candidates for {name}", "",
             f"Gatys: {args.iterations} L-BFGS iterations from each photo at {args.size} px (shorter side); "
             f"`network` is the shipped fast network at the same size. Figures from `Strength` in "
             f"scripts/evaluate_styles.py: colour and strokes = 1 - Gram distance to the painting (512 px) / "
             f"the photo's, retention = 1 - content distance (block4_conv2) / a flat grey image's. "
             f"The stroke figure compares with the painting at 512 px, so a candidate whose painting is larger "
             f"can score lower for strokes that look larger. "
             f"Grid: runs/objectives/{name}.jpg (c / s / r under each image; not in the repository, as it shows "
             "the val photos: rebuild it with --grid-only).", "",
             "| candidate | arguments (beside fst.optimize's defaults) | photos | colour | strokes | retention |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    for cid in ids:
        done = list(figures[cid].values())
        arguments = describe(options[cid], args.size) if cid in options else "the shipped weights"
        lines.append(f"| {cid} | {arguments} | {len(done)} | "
                     + " | ".join(mean([f[k] for f in done]) for k in STRENGTHS) + " |")
    lines += ["", "Per photo (colour / strokes / retention):", "",
              "| photo | " + " | ".join(ids) + " |", "| --- |" + " ---: |" * len(ids)]
    for photo_name in photo_names:
        cells = []
        for cid in ids:
            f = figures[cid].get(photo_name)
            cells.append(" / ".join(f"{f[k]:.2f}" for k in STRENGTHS) if f else "-")
        lines.append(f"| {photo_name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def build(style: styles.Style, painting_file: Path, options: dict[str, dict], photos: dict[str, np.ndarray],
          args) -> None:
    """Figures, grid and table from the cached results and the shipped network."""
    from fst.inference import stylize

    strength = Strength(painting_file, args.vgg_weights)
    ids = ["network", *options]
    figures: dict[str, dict[str, dict]] = {cid: {} for cid in ids}
    rows, numbers = [], []
    for photo_name, photo in photos.items():
        images = {"network": stylize(photo, style)}
        for cid in options:
            cached = args.cache / style.name / cid / f"{Path(photo_name).stem}.png"
            if cached.is_file():
                images[cid] = load_image(cached)[0]
        done = [cid for cid in ids if cid in images]
        for cid, figure in zip(done, strength(photo, [images[cid] for cid in done])):
            figures[cid][photo_name] = figure
        rows.append([photo, *(images.get(cid) for cid in ids)])
        numbers.append([None, *(figures[cid].get(photo_name) for cid in ids)])
    painting = load_image(painting_file)[0]
    sheet = grid(painting, ["photo", *ids], rows, numbers, args.cell)
    write_atomic(encode(np.asarray(sheet), "JPEG", quality=args.quality), args.grids / f"{style.name}.jpg")
    report = table(style.name, ids, options, figures, list(photos), args)
    write_atomic(report.encode(), args.out / f"{style.name}.md")
    print(report)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("styles", nargs="+", help="shipped style names, done one after another")
    parser.add_argument("--photos", type=Path, default=SHARED / "photos" / "val", help="folder of the photos")
    parser.add_argument("--photo-names", nargs="+", default=list(PHOTOS), help="photos in that folder")
    parser.add_argument("--paintings", type=Path, default=SHARED / "styles",
                        help="where to find a painting whose recorded path is not on this machine")
    parser.add_argument("--size", type=int, default=512, help="shorter side of each photo (default 512)")
    parser.add_argument("--iterations", type=int, default=100, help="L-BFGS iterations (default 100)")
    parser.add_argument("--only", nargs="+", default=None, metavar="ID", help="compute only these candidates")
    stage = parser.add_mutually_exclusive_group()
    stage.add_argument("--grid-only", action="store_true", help="only build the grid and table from the cache")
    stage.add_argument("--no-grid", action="store_true",
                        help="only compute; build the grid and table later with --grid-only (for partial runs "
                             "over some --photo-names, whose table would list only those photos)")
    parser.add_argument("--cache", type=Path, default=ROOT / "runs" / "objectives")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "objectives", help="where the tables go")
    parser.add_argument("--grids", type=Path, default=ROOT / "runs" / "objectives",
                        help="where the grids go (they show the photos: keep them out of the repository)")
    parser.add_argument("--cell", type=int, default=256, help="grid cell size in pixels (default 256)")
    parser.add_argument("--quality", type=int, default=85, help="grid JPEG quality (default 85)")
    parser.add_argument("--vgg-weights", default=None, help="VGG19 weights file (else $FST_VGG19_WEIGHTS)")
    args = parser.parse_args()

    photos = {n: resize_short_side(load_image(args.photos / n)[0], args.size) for n in args.photo_names}
    for name in args.styles:
        style = styles.get_style(name)
        painting_file = painting_path(style, args.paintings)
        options = candidates(style, args.size)
        if not args.grid_only:
            painting = load_image(painting_file)[0]
            # One photo at a time for every candidate, so an unfinished run still compares them all;
            # shipped last, as its result is the closest to the photo and tells the least.
            for photo_name, photo in photos.items():
                for cid, kwargs in sorted(options.items(), key=lambda item: item[0] == "shipped"):
                    if args.only is None or cid in args.only:
                        compute(style.name, args.cache / style.name / cid, kwargs, {photo_name: photo}, painting, args)
        if not args.no_grid:
            build(style, painting_file, options, photos, args)


if __name__ == "__main__":
    main()
