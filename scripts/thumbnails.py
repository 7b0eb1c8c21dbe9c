"""Writes a small JPEG of each shipped style's painting beside its weights (weights/NAME.jpg).

    python scripts/thumbnails.py                 # every style in weights/ whose TOML names its painting
    python scripts/thumbnails.py udnie --size 256

The painting is the TOML's ``training.style_image``; the web page (``fst serve``) shows the thumbnail
on the style's card. Only public-domain paintings are shipped.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

from PIL import Image

from fst import styles
from fst.files import write_atomic

ROOT = Path(__file__).resolve().parents[1]


def thumbnail(painting: Path, size: int, quality: int) -> bytes:
    """The painting shrunk so its longer side is `size`, as JPEG bytes."""
    with Image.open(painting) as img:
        img = img.convert("RGB")
        img.thumbnail((size, size), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        img.save(buffer, format="JPEG", quality=quality, optimize=True, progressive=True)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="style names (default: every style in --weights)")
    parser.add_argument("--weights", type=Path, default=ROOT / "weights")
    parser.add_argument("--size", type=int, default=256, help="longer side in pixels (default 256)")
    parser.add_argument("--quality", type=int, default=85)
    args = parser.parse_args()

    found = {p.name.removesuffix(styles.SUFFIX): p for p in sorted(args.weights.glob("*" + styles.SUFFIX))}
    for name in args.names or list(found):
        style = styles.get_style(found.get(name, name))
        painting = style.painting
        if style.license != "public domain" or painting is None or not painting.is_file():
            print(f"{name}: skipped (licence {style.license or 'unknown'!r}, painting {painting!r})")
            continue
        data = thumbnail(painting, args.size, args.quality)
        out = style.weights.with_name(f"{style.name}.jpg")
        write_atomic(data, out)
        print(f"{name}: {out} ({len(data) // 1024} KiB)")


if __name__ == "__main__":
    main()
