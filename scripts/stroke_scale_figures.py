"""The default stroke scale on photos of growing size: a figure for docs/gallery, and time and memory.

    python scripts/stroke_scale_figures.py                       # great_wave, the figure and the table
    python scripts/stroke_scale_figures.py --style starry_night --no-timing
    python scripts/stroke_scale_figures.py --no-figure                        # only the table
    python scripts/stroke_scale_figures.py --no-timing --no-figure --detail   # only the detail figure

The photo is the gallery's public-domain astronaut (512x512), cut to 4:3 and enlarged with Lanczos to
each size (longer side 512, 1024, 2048 and 4032: 4032x3024 is a 12-megapixel phone photo), so it has
no detail of its own beyond 512 px; nothing larger can be shipped. Writes
docs/gallery/stroke_scale_auto.jpg: for each size, the whole result shrunk to one width, then a
256x256 crop at full resolution from the face, with the default (``stroke_scale="auto"``) and with
``--stroke-scale 1`` (the network on the whole photo, as before the default). With timing, each
``fst run`` is a fresh process: its wall time and peak resident memory are printed as a table.

With --detail, docs/gallery/stroke_scale_detail.jpg shows how a large stroke scale's result is brought
back to full size, on the 512 px photo itself (which, unlike the enlarged copies, has detail of its own)
at K = 4, about what a 12-megapixel photo gets: the painting upsampled alone, upsampled with all the
photo's luminance detail added back (what fst did before), and as ``fst.strokes`` does it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from fst.files import write_atomic
from fst.images import encode, load_image
from fst import images, strokes
from fst.inference import stylize
from fst.strokes import stroke_scale_for
from fst.runners import open_runner

GALLERY = Path(__file__).resolve().parents[1] / "docs" / "gallery"
SIZES = (512, 1024, 2048, 4032)
CELL, CROP = 320, 256
#: Runs `python -m fst run ARGS` and prints its peak resident memory in MiB.
MEASURED = ("import resource, subprocess, sys\n"
            "code = subprocess.run([sys.executable, '-m', 'fst', 'run', *sys.argv[1:]]).returncode\n"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)\n"
            "sys.exit(code)\n")


def photo_at(rgb: np.ndarray, long_side: int) -> np.ndarray:
    """The photo cut to 4:3 (its top three quarters) and resized so its longer side is long_side."""
    h, w = rgb.shape[:2]
    cut = rgb[: w * 3 // 4] if h >= w * 3 // 4 else rgb
    size = (long_side, round(long_side * cut.shape[0] / cut.shape[1]))
    return np.asarray(Image.fromarray(cut).resize(size, Image.Resampling.LANCZOS))


def face_crop(rgb: np.ndarray) -> np.ndarray:
    """A CROP x CROP window at full resolution around the face (at 0.45, 0.3 of the astronaut photo)."""
    h, w = rgb.shape[:2]
    size = min(CROP, h, w)
    top = min(max(0, round(h * 0.3) - size // 2), h - size)
    left = min(max(0, round(w * 0.45) - size // 2), w - size)
    crop = rgb[top:top + size, left:left + size]
    return np.asarray(Image.fromarray(crop).resize((CELL, CELL), Image.Resampling.NEAREST if size < CELL else
                                                   Image.Resampling.LANCZOS))


def figure(style: str, rgb: np.ndarray, out: Path) -> None:
    """Columns: the sizes; rows: the whole auto result, its full-resolution crop, the crop at stroke scale 1."""
    runner = open_runner(style)
    label = 24
    sheet = Image.new("RGB", (CELL * len(SIZES), label + CELL * 3), "white")
    draw = ImageDraw.Draw(sheet)
    for c, size in enumerate(SIZES):
        photo = photo_at(rgb, size)
        auto = stylize(photo, runner)
        plain = stylize(photo, runner, stroke_scale=1)
        k = stroke_scale_for(*photo.shape[:2], "auto", runner)
        whole = Image.fromarray(auto).resize((CELL, round(CELL * auto.shape[0] / auto.shape[1])),
                                             Image.Resampling.LANCZOS)
        draw.text((c * CELL + 6, 6), f"{photo.shape[1]}x{photo.shape[0]}, auto K = {k:.2f}", fill="black")
        sheet.paste(whole, (c * CELL, label + (CELL - whole.height) // 2))
        sheet.paste(Image.fromarray(face_crop(auto)), (c * CELL, label + CELL))
        sheet.paste(Image.fromarray(face_crop(plain)), (c * CELL, label + 2 * CELL))
        print(f"{size}: K = {k:.2f}", flush=True)
    write_atomic(encode(np.asarray(sheet), "JPEG", quality=88), out)


def detail_figure(style: str, rgb: np.ndarray, out: Path, scale: float = 4.0) -> None:
    """Columns: the photo, the painting at 1/scale upsampled alone, with all luminance detail added, as
    fst does it; rows: the whole image and a 2x crop of the face."""
    runner = open_runner(style)
    height, width = rgb.shape[:2]
    small = np.asarray(Image.fromarray(rgb).resize((round(width / scale), round(height / scale)),
                                                   Image.Resampling.LANCZOS))
    painted = stylize(small, runner, stroke_scale=1)

    upsampled = images.resize_float(painted, (width, height))
    detail = images.luma(rgb) - images.resize_float(images.luma(small), (width, height))
    columns = {"photo": rgb, f"painted at 1/{scale:g}, upsampled": images.to_uint8(upsampled),
               "+ all luminance detail (before)": images.to_uint8(upsampled + detail[..., None]),
               "guided upsampling + edges (now)": strokes.at_stroke_scale(lambda _: painted, rgb, scale)}
    label, cell = 24, CELL
    sheet = Image.new("RGB", (cell * len(columns), label + cell * 2), "white")
    draw = ImageDraw.Draw(sheet)
    for c, (title, pixels) in enumerate(columns.items()):
        pixels = images.to_uint8(pixels)
        draw.text((c * cell + 6, 6), title, fill="black")
        sheet.paste(Image.fromarray(pixels).resize((cell, cell), Image.Resampling.LANCZOS), (c * cell, label))
        crop = pixels[round(height * 0.3) - cell // 4: round(height * 0.3) + cell // 4,
                      round(width * 0.45) - cell // 4: round(width * 0.45) + cell // 4]
        sheet.paste(Image.fromarray(crop).resize((cell, cell), Image.Resampling.NEAREST), (c * cell, label + cell))
    write_atomic(encode(np.asarray(sheet), "JPEG", quality=88), out)


def timing(style: str, rgb: np.ndarray) -> str:
    """A Markdown table: wall time and peak memory of `fst run` per size, auto against stroke scale 1."""
    rows = ["| size | K (auto) | auto: s / MiB | --stroke-scale 1: s / MiB |", "| --- | ---: | ---: | ---: |"]
    with tempfile.TemporaryDirectory() as tmp:
        for size in SIZES:
            photo = photo_at(rgb, size)
            src = Path(tmp) / f"{size}.png"
            Image.fromarray(photo).save(src)
            cells = []
            for scale in ("auto", "1"):
                started = time.perf_counter()
                done = subprocess.run([sys.executable, "-c", MEASURED, style, str(src), str(Path(tmp) / "out.jpg"),
                                       "--stroke-scale", scale], capture_output=True, text=True, check=True)
                cells.append(f"{time.perf_counter() - started:.1f} / {done.stdout.split()[-1]}")
            k = stroke_scale_for(*photo.shape[:2], "auto")
            rows.append(f"| {photo.shape[1]}x{photo.shape[0]} | {k:.2f} | {cells[0]} | {cells[1]} |")
            print(rows[-1], flush=True)
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--style", default="great_wave")
    parser.add_argument("--photo", type=Path, default=GALLERY / "astronaut.jpg")
    parser.add_argument("--out", type=Path, default=GALLERY / "stroke_scale_auto.jpg")
    parser.add_argument("--no-timing", action="store_true", help="only the figure")
    parser.add_argument("--no-figure", action="store_true", help="only the timing")
    parser.add_argument("--detail", action="store_true", help="also docs/gallery/stroke_scale_detail.jpg")
    args = parser.parse_args()
    rgb = load_image(args.photo)[0]
    if not args.no_figure:
        figure(args.style, rgb, args.out)
    if args.detail:
        detail_figure(args.style, rgb, GALLERY / "stroke_scale_detail.jpg")
    if not args.no_timing:
        print(timing(args.style, rgb))


if __name__ == "__main__":
    main()
