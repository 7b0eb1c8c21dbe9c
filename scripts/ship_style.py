"""Ships a trained style: copies it into weights/ with float16 storage and checks its outputs.

    python scripts/ship_style.py runs/export/starry_night.weights.h5
    python scripts/ship_style.py my_style --photos ../shared/data/photos/val --size 1024

Float16 halves the file. The script stylizes the photos (longer side --size) with the original
and the copy and prints how far the two outputs are apart, in grey levels of 0..255.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from fst import styles
from fst.images import find_images, load_image, resize_long_side
from fst.inference import stylize

ROOT = Path(__file__).resolve().parents[1]


def compare(a: styles.Style, b: styles.Style, photos: list[Path], size: int) -> tuple[int, float, float]:
    """(max, mean, share over 2) of |a - b| over the photos' stylized pixels."""
    diffs = []
    for photo in photos:
        rgb = resize_long_side(load_image(photo)[0], size)
        diffs.append(np.abs(stylize(rgb, a).astype(np.int16) - stylize(rgb, b)).ravel())
    d = np.concatenate(diffs)
    return int(d.max()), float(d.mean()), float((d > 2).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("style", help="a style name or a .weights.h5 file (its .toml beside it)")
    parser.add_argument("--out", type=Path, default=ROOT / "weights")
    parser.add_argument("--photos", type=Path, default=ROOT.parent / "shared" / "data" / "photos" / "val")
    parser.add_argument("--limit", type=int, default=10, help="photos to compare on")
    parser.add_argument("--size", type=int, default=512, help="longer side of the compared photos")
    args = parser.parse_args()

    source = styles.get_style(args.style)
    shipped = styles.copy_style(source, args.out, float16=True)
    before, after = source.weights.stat().st_size, shipped.weights.stat().st_size
    print(f"{shipped.weights}: {after / 2**20:.1f} MiB (float32: {before / 2**20:.1f} MiB)")
    largest, mean, share = compare(source, shipped, find_images(args.photos)[: args.limit], args.size)
    print(f"float16 against float32 on {args.limit} photos at {args.size} px: max |difference| {largest}, "
          f"mean {mean:.4f}, {100 * share:.3f}% of values differ by more than 2")


if __name__ == "__main__":
    main()
