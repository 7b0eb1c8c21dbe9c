"""A retrained style beside what it replaced: painting | photo | previous network | new network | Gatys.

    git show 300b691:weights/great_wave.weights.h5 > runs/great_wave_previous.weights.h5
    python scripts/side_by_side.py great_wave runs/great_wave_previous.weights.h5

The photo is the gallery's public-domain astronaut at 512 px; Gatys is 100 L-BFGS iterations of
``fst optimize`` from the photo at the new network's training objective (its TOML's [training]), the
yardstick the network is trained towards; with --cache it is computed once per objective. Writes
docs/gallery/NAME_side_by_side.jpg.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from fst import styles
from fst.files import write_atomic
from fst.images import encode, load_image, load_painting
from fst.inference import stylize
from fst.training.evaluation import gatys_reference, objective_options, painting_path

GALLERY = Path(__file__).resolve().parents[1] / "docs" / "gallery"
CELL, LABEL = 512, 28


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("style", help="the new network: a style name or a .weights.h5 path")
    parser.add_argument("previous", help="the network it replaced (.weights.h5)")
    parser.add_argument("--photo", type=Path, default=GALLERY / "astronaut.jpg")
    parser.add_argument("--paintings", type=Path, default=GALLERY.parents[2] / "shared" / "data" / "styles")
    parser.add_argument("--iterations", type=int, default=100, help="Gatys L-BFGS iterations")
    parser.add_argument("--out", type=Path, default=None, help="default docs/gallery/NAME_side_by_side.jpg")
    parser.add_argument("--cache", type=Path, default=None,
                        help="folder that keeps the Gatys result (as scripts/evaluate_styles.py's --cache)")
    parser.add_argument("--vgg-weights", default=None, help="VGG19 weights file (else $FST_VGG19_WEIGHTS)")
    args = parser.parse_args()

    new, previous = styles.get_style(args.style), styles.get_style(args.previous)
    photo = load_image(args.photo)[0]
    painting = painting_path(new, args.paintings)
    options = objective_options(new)
    gatys, _ = gatys_reference(photo, painting, options, new.painting_size, args.iterations, args.cache,
                               args.vgg_weights)
    shown = load_painting(str(painting), CELL)
    columns = [("painting", shown), ("photo", photo), ("previous network", stylize(photo, previous)),
               ("new network", stylize(photo, new)),
               (f"Gatys, {args.iterations} L-BFGS iterations, style weight {options['style_weight']:g}", gatys)]
    sheet = Image.new("RGB", (CELL * len(columns), LABEL + CELL), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (label, image) in enumerate(columns):
        cell = Image.fromarray(np.asarray(image, np.uint8))
        cell.thumbnail((CELL, CELL), Image.Resampling.LANCZOS)
        sheet.paste(cell, (i * CELL + (CELL - cell.width) // 2, LABEL + (CELL - cell.height) // 2))
        draw.text((i * CELL + 8, 8), label, fill="black")
    out = args.out or GALLERY / f"{new.name}_side_by_side.jpg"
    write_atomic(encode(np.asarray(sheet), "JPEG", quality=88), out)
    print(out)


if __name__ == "__main__":
    main()
