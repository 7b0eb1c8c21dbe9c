"""Regenerates docs/gallery: the sample photo stylized by every shipped style, and its index.

    python scripts/gallery.py                         # the styles in weights/, into docs/gallery
    python scripts/gallery.py --styles runs/a/out/a.weights.h5 --out /tmp/gallery

The photo is NASA's public-domain portrait of astronaut Eileen Collins (docs/gallery/astronaut.jpg,
as shipped with scikit-image). Writes NAME.jpg for each style and README.md, a table with the
painting's credit beside each image.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from fst import styles
from fst.files import write_atomic
from fst.images import encode, load_image
from fst.inference import stylize

GALLERY = Path(__file__).resolve().parents[1] / "docs" / "gallery"


def shipped_styles() -> list[styles.Style]:
    return [styles.get_style(path) for path in sorted(styles.shipped_dir().glob("*" + styles.SUFFIX))]


def render(style_list: list[styles.Style], photo: Path, out: Path) -> str:
    """Writes NAME.jpg per style into out and returns the Markdown index."""
    rgb = load_image(photo)[0]
    lines = ["# Gallery", "", "Regenerate with `python scripts/gallery.py`. The photo: NASA's public-domain portrait "
             "of astronaut Eileen Collins.", "", f"![photo]({Path(os.path.relpath(photo, out)).as_posix()})", "",
             "| style | painting | |", "| --- | --- | --- |"]
    for style in style_list:
        write_atomic(encode(stylize(rgb, style), "JPEG", quality=90), out / f"{style.name}.jpg")
        credit = ", ".join(x for x in (f"*{style.title}*" if style.title else "", style.artist, style.year) if x)
        licence = f" ({style.license})" if style.license else ""
        lines.append(f"| `{style.name}` | {credit}{licence} | ![{style.name}]({style.name}.jpg) |")
        print(f"{style.name}.jpg", flush=True)
    compared = [s.name for s in style_list if (out / f"{s.name}_side_by_side.jpg").is_file()]
    if compared:
        lines += ["", "## Retrained styles beside what they replaced", "",
                  "Painting, photo, the network before, the network now, and Gatys at the network's training "
                  "objective (`python scripts/side_by_side.py NAME PREVIOUS.weights.h5`).", ""]
        lines += [f"`{name}`:\n\n![{name} side by side]({name}_side_by_side.jpg)\n" for name in compared]
    if (out / "stroke_scale_auto.jpg").is_file():
        lines += ["", "## The same look at any size", "",
                  "The default stroke scale on the photo enlarged to 512, 1024, 2048 and 4032 px: the whole result, "
                  "a 256 px crop at full resolution, and the same crop with `--stroke-scale 1` "
                  "(`python scripts/stroke_scale_figures.py`).", "", "![stroke scale auto](stroke_scale_auto.jpg)"]
    if (out / "stroke_scale_detail.jpg").is_file():
        lines += ["", "How a large stroke scale comes back to full size, on the 512 px photo at K = 4 (the network "
                  "sees 128 px): the painting upsampled alone is soft; adding all the photo's luminance detail back "
                  "(before) pastes the photo's fine texture over it and leaves colour halos at its edges; guided "
                  "upsampling with the photo's edges only (now, `fst/strokes.py`) keeps the edges sharp and the "
                  "marks the painting's (`python scripts/stroke_scale_figures.py --detail`).", "",
                  "![stroke scale detail](stroke_scale_detail.jpg)"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--styles", nargs="*", help="style names or .weights.h5 paths (default: the shipped styles)")
    parser.add_argument("--photo", type=Path, default=GALLERY / "astronaut.jpg")
    parser.add_argument("--out", type=Path, default=GALLERY)
    args = parser.parse_args()

    style_list = [styles.get_style(s) for s in args.styles] if args.styles else shipped_styles()
    if not style_list:
        raise SystemExit(f"no styles in {styles.shipped_dir()}: train one (fst train-style) or pass --styles")
    args.out.mkdir(parents=True, exist_ok=True)
    write_atomic(render(style_list, args.photo, args.out).encode(), args.out / "README.md")


if __name__ == "__main__":
    main()
