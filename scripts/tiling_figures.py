"""Figures for tiled stylizing and image borders, on real photos with every shipped style.

    python scripts/tiling_figures.py seams      # 2048x1536 collage: tiled against untiled, PSNR and steps
    python scripts/tiling_figures.py borders    # 50 val photos: borders against the photo going on
    python scripts/tiling_figures.py memory     # 2048x1536 collage: time and peak memory, whole and tiled

The collage is 12 photos of ../shared/data/photos/val (256x256) each enlarged to 512x512 (Lanczos),
4 across and 3 down: real photo content at the size of a phone photo.  Crops at a tile boundary go
to runs/tiling/.  "Before" is the same tiling with each tile normalised by its own statistics.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
VAL = Path(os.environ.get("FST_SHARED", REPO.parent / "shared")) / "data" / "photos" / "val"
OUT = REPO / "runs" / "tiling"


def collage() -> np.ndarray:
    photos = sorted(VAL.glob("*.jpg"))[:12]
    tiles = [np.asarray(Image.open(p).convert("RGB").resize((512, 512), Image.Resampling.LANCZOS)) for p in photos]
    return np.concatenate([np.concatenate(tiles[r * 4:(r + 1) * 4], axis=1) for r in range(3)], axis=0)


def band_steps(profile: np.ndarray, width: int) -> np.ndarray:
    """|mean of the `width` values after x - mean of the `width` before|, at every x (largest channel)."""
    c = np.cumsum(np.pad(profile, ((1, 0), (0, 0))), axis=0)
    x = np.arange(width, len(profile) - width + 1)
    after, before = (c[x + width] - c[x]) / width, (c[x] - c[x - width]) / width
    return np.pad(np.abs(after - before).max(axis=1), (width, width - 1))


def boundaries(n: int, tile: int, overlap: int) -> list[int]:
    """Centres of the overlaps between tiles, in image coordinates."""
    from fst import tiling
    from fst.runners.base import MARGIN, pad_amounts

    before, _ = pad_amounts(n, MARGIN)
    windows = tiling.windows(n + sum(pad_amounts(n, MARGIN)), tile, overlap)
    return [(a.stop + b.start) // 2 - before for a, b in zip(windows, windows[1:])]


def seam_figures(out: np.ndarray, whole: np.ndarray, tile: int, overlap: int) -> dict:
    """Largest step of column (and row) means near a tile boundary against the largest anywhere in
    the untiled render, for 1- and 8-pixel bands."""
    figures = {}
    for axis, name in ((0, "columns"), (1, "rows")):
        cuts = boundaries(out.shape[1 - axis], tile, overlap)
        for width in (1, 8):
            steps = band_steps(out.astype(np.float64).mean(axis=axis), width)
            own = band_steps(whole.astype(np.float64).mean(axis=axis), width)
            near = [steps[max(0, b - overlap // 2):b + overlap // 2].max() for b in cuts]
            figures[f"{name}{width}"] = (max(near, default=0.0), own.max())
    return figures


def seams(styles: list[str], tile: int) -> None:
    from fst import images, tiling
    from fst.runners import open_runner

    OUT.mkdir(parents=True, exist_ok=True)
    image = collage()
    Image.fromarray(image).save(OUT / "collage.jpg", quality=95)
    overlap = min(tiling.TILE_OVERLAP, tile // 4)
    cut = boundaries(image.shape[1], tile, overlap)[0]
    print(f"collage {image.shape[1]}x{image.shape[0]}, tile {tile}, overlap {overlap}, first column boundary x={cut}")
    print("style | PSNR before | PSNR after | column step at boundary before / after / own max (1 px; 8 px) "
          "| row step before / after / own max (1 px; 8 px) | seconds whole / tiled")
    for style in styles:
        runner = open_runner(style)
        start = time.perf_counter()
        whole = tiling.run_frames(runner, image[None])[0]
        whole_s = time.perf_counter() - start
        start = time.perf_counter()
        after = tiling.run_tiled(runner, image, tile, overlap)
        tiled_s = time.perf_counter() - start
        before = tiling.run_tiled(lambda batch: runner(batch), image, tile, overlap)
        whole, after, before = (np.clip(np.round(a), 0, 255).astype(np.uint8) for a in (whole, after, before))
        fb, fa = seam_figures(before, whole, tile, overlap), seam_figures(after, whole, tile, overlap)
        cells = [f"{fb[k][0]:.1f} / {fa[k][0]:.1f} / {fa[k][1]:.1f}" for k in ("columns1", "columns8", "rows1", "rows8")]
        print(f"{style} | {images.psnr(before, whole):.1f} | {images.psnr(after, whole):.1f} | {cells[0]}; {cells[1]} | "
              f"{cells[2]}; {cells[3]} | {whole_s:.1f} / {tiled_s:.1f}", flush=True)
        crop = np.s_[200:456, cut - 128:cut + 128]
        row = np.concatenate([whole[crop], before[crop], after[crop]], axis=1)
        Image.fromarray(row).save(OUT / f"boundary_{style}.png")


#: Border figures: the photo's centre crop, this far inside, is stylized alone, and its borders are
#: compared with the same pixels of the whole photo's render, where the photo goes on past them.
INSET = 48
#: How wide a border band is measured, in pixels.
BAND = 3
#: The whole photo's render, the reference, has this margin: its own borders are far from the crop's.
REFERENCE_MARGIN = 64


def sides(values: np.ndarray, k: int = BAND) -> list[np.ndarray]:
    """The outer k rows or columns of an (H, W, ...) array: top, bottom, left, right."""
    return [values[:k], values[-k:], values[:, :k], values[:, -k:]]


def along_edges(image: np.ndarray) -> float:
    """Texture in the border bands: mean absolute step between neighbours along each border."""
    top, bottom, left, right = sides(image.astype(np.float64))
    return float(np.mean([np.abs(np.diff(top, axis=1)).mean(), np.abs(np.diff(bottom, axis=1)).mean(),
                          np.abs(np.diff(left, axis=0)).mean(), np.abs(np.diff(right, axis=0)).mean()]))


def border_figures(runner, photo: np.ndarray, paddings: list[tuple[str, int]]) -> tuple[list[tuple], np.ndarray]:
    """Per padding: mean and worst over the four borders of how far the crop's outer band lands from
    the whole render's (grey levels), its texture along the border over the whole render's, and the
    same distance inside (about 0: both use the whole photo's instance-norm statistics, so only the
    borders differ). Also the crop's bottom right corner, the whole render's first, side by side."""
    from fst import tiling

    whole, (rows, cols) = tiling.pad(photo, REFERENCE_MARGIN)
    fixed = runner.with_statistics_of(whole[None])
    reference = np.clip(fixed(whole[None])[0][rows, cols], 0, 255)[INSET:-INSET, INSET:-INSET]
    crop = photo[INSET:-INSET, INSET:-INSET]
    figures, corners = [], [reference[-48:, -48:]]
    for mode, margin in paddings:
        padded, (rows, cols) = tiling.pad(crop, margin, mode)
        out = np.clip(fixed(padded[None])[0][rows, cols], 0, 255)
        distance = np.abs(out - reference).mean(axis=-1)
        off = [float(band.mean()) for band in sides(distance)]
        figures.append((np.mean(off), max(off), along_edges(out) / along_edges(reference),
                        float(distance[32:-32, 32:-32].mean())))
        corners.append(out[-48:, -48:])
    framed = [np.pad(c, [(2, 2), (2, 2), (0, 0)], constant_values=255) for c in corners]
    return figures, np.concatenate(framed, axis=1).astype(np.uint8)


def borders(styles: list[str], paddings: list[tuple[str, int]]) -> None:
    """Each padding's border figures on the 50 val photos, per style; to runs/tiling/corners_STYLE.png,
    the bottom right corners of the first six crops: the whole render, then one per padding."""
    from fst.runners import open_runner

    OUT.mkdir(parents=True, exist_ok=True)
    photos = [np.asarray(Image.open(p).convert("RGB"), np.float32) for p in sorted(VAL.glob("*.jpg"))]
    size = photos[0].shape[0] - 2 * INSET
    print(f"{len(photos)} val photos; their {size} px centre stylized alone against the same pixels of the whole "
          f"photo's render. Outer {BAND} px: mean (worst) of the four borders of grey levels off; texture "
          "along the borders / the whole render's; inside: grey levels off")
    print("style | " + " | ".join(f"{mode} {margin}" for mode, margin in paddings))
    for style in styles:
        runner = open_runner(style)
        results = [border_figures(runner, photo, paddings) for photo in photos]
        figures = np.mean([f for f, _ in results], axis=0)
        corners = np.concatenate([c for _, c in results[:6]], axis=0)
        Image.fromarray(corners).resize((corners.shape[1] * 3, corners.shape[0] * 3), Image.Resampling.NEAREST
                                        ).save(OUT / f"corners_{style}.png")
        print(f"{style} | " + " | ".join(f"{off:.1f} ({worst:.1f}), {texture:.2f}, {inside:.2f}"
                                         for off, worst, texture, inside in figures), flush=True)


MEMORY_SCRIPT = """
import sys, time, numpy as np, fst
image = np.load(sys.argv[1])
fst.stylize(image[:64, :64], sys.argv[2])
start = time.perf_counter()
fst.stylize(image, sys.argv[2], tile_size=int(sys.argv[3]))
print(f"{time.perf_counter() - start:.1f}")
"""


def memory(style: str, tiles: list[int]) -> None:
    """Seconds and peak resident memory of one stylize call in a fresh process, per tile size."""
    image = collage()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "collage.npy"
        np.save(path, image)
        for tile in tiles:
            proc = subprocess.Popen([sys.executable, "-c", MEMORY_SCRIPT, path, style, str(tile)],
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            _, status, usage = os.wait4(proc.pid, 0)
            seconds = proc.stdout.read().strip()
            mode = "whole" if image.shape[0] * image.shape[1] <= tile * tile else "tiled"
            print(f"tile size {tile} ({mode}): {seconds} s, peak {usage.ru_maxrss / 2**20:.2f} GiB", flush=True)


def main() -> None:
    from fst import list_styles

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=["seams", "borders", "memory"])
    parser.add_argument("--styles", nargs="*", default=None)
    parser.add_argument("--tile", type=int, default=1024)
    parser.add_argument("--paddings", nargs="*", default=["reflect:0", "reflect:16", "edge:16"],
                        help="borders: numpy.pad mode and margin in pixels, as MODE:MARGIN")
    parser.add_argument("--tiles", type=int, nargs="*", default=[4096, 1024])
    args = parser.parse_args()
    styles = args.styles or list_styles()
    if args.what == "seams":
        seams(styles, args.tile)
    elif args.what == "borders":
        borders(styles, [(mode, int(margin)) for mode, margin in (p.split(":") for p in args.paddings)])
    else:
        memory(styles[0], args.tiles)


if __name__ == "__main__":
    main()
