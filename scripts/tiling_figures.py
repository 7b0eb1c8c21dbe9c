"""Figures for tiled stylizing and image borders, on real photos with every shipped style.

    python scripts/tiling_figures.py seams      # 2048x1536 collage: tiled against untiled, PSNR and steps
    python scripts/tiling_figures.py borders    # 50 val photos: step at the border against inside
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


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def band_steps(profile: np.ndarray, width: int) -> np.ndarray:
    """|mean of the `width` values after x - mean of the `width` before|, at every x (largest channel)."""
    c = np.cumsum(np.pad(profile, ((1, 0), (0, 0))), axis=0)
    x = np.arange(width, len(profile) - width + 1)
    after, before = (c[x + width] - c[x]) / width, (c[x] - c[x - width]) / width
    return np.pad(np.abs(after - before).max(axis=1), (width, width - 1))


def boundaries(n: int, tile: int, overlap: int) -> list[int]:
    """Centres of the overlaps between tiles, in image coordinates."""
    from fst import tiling

    before, _ = tiling._pad_amounts(n, tiling.MARGIN)
    windows = tiling._windows(n + sum(tiling._pad_amounts(n, tiling.MARGIN)), tile, overlap)
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
    from fst import tiling
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
        print(f"{style} | {psnr(before, whole):.1f} | {psnr(after, whole):.1f} | {cells[0]}; {cells[1]} | "
              f"{cells[2]}; {cells[3]} | {whole_s:.1f} / {tiled_s:.1f}", flush=True)
        crop = np.s_[200:456, cut - 128:cut + 128]
        row = np.concatenate([whole[crop], before[crop], after[crop]], axis=1)
        Image.fromarray(row).save(OUT / f"boundary_{style}.png")


def edge_figures(out: np.ndarray, k: int = 3) -> tuple[float, float, float, float]:
    """Per-pixel step between the two outermost lines, and colour of the outermost k-pixel band against
    the next k (mean over the border line), each for the worst border; and the same inside (mean)."""
    o = out.astype(np.float64)
    sides = [o, o[::-1], o.transpose(1, 0, 2), o.transpose(1, 0, 2)[::-1]]  # top, bottom, left, right
    pixel = max(np.abs(s[0] - s[1]).mean() for s in sides)
    band = max(np.abs(s[:k].mean(axis=(0, 1)) - s[k:2 * k].mean(axis=(0, 1))).max() for s in sides)
    inner = o[2 * k:-2 * k]
    pixel_in = np.abs(np.diff(inner, axis=0)).mean()
    means = inner.mean(axis=1)
    band_in = np.mean([np.abs(means[x - k:x].mean(0) - means[x:x + k].mean(0)).max() for x in range(k, len(means) - k, k)])
    return pixel, band, pixel_in, band_in


#: Where the reference lines for the border figures are: the same measure, this far inside the image.
INSIDE = 32


def borders(styles: list[str], margins: list[int]) -> None:
    from fst import tiling
    from fst.runners import open_runner

    OUT.mkdir(parents=True, exist_ok=True)
    photos = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(VAL.glob("*.jpg"))]
    print(f"{len(photos)} photos 256x256; worst of the four borders of each photo, averaged over photos: "
          f"pixel step at the edge (the same {INSIDE} px inside), 3-px band colour step at the edge (the same "
          f"{INSIDE} px inside)")
    own = np.mean([(*edge_figures(p)[:2], *edge_figures(p[INSIDE:-INSIDE, INSIDE:-INSIDE])[:2]) for p in photos], axis=0)
    print("the photos themselves | {:.1f} ({:.1f}), {:.1f} ({:.1f})".format(*own))
    print("style | " + " | ".join(f"margin {m}" for m in margins))
    for style in styles:
        runner = open_runner(style)
        cells, shots = [], []
        for margin in margins:
            figures = []
            for photo in photos:
                padded, (rows, cols) = tiling.pad(photo[None], margin)
                out = np.clip(np.round(runner(padded.astype(np.float32))[0, rows, cols]), 0, 255).astype(np.uint8)
                # The same worst-of-four measure on the lines 32 px inside: a fair reference for the edge.
                figures.append((*edge_figures(out)[:2], *edge_figures(out[INSIDE:-INSIDE, INSIDE:-INSIDE])[:2]))
            shots.append(out[-64:, -64:])
            p, b, pi, bi = np.mean(figures, axis=0)
            cells.append(f"{p:.1f} ({pi:.1f}), {b:.1f} ({bi:.1f})")
        print(f"{style} | " + " | ".join(cells), flush=True)
        Image.fromarray(np.concatenate(shots, axis=1)).resize((64 * 4 * len(margins), 256), Image.Resampling.NEAREST
                                                            ).save(OUT / f"corner_{style}.png")


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
    parser.add_argument("--margins", type=int, nargs="*", default=[0, 8, 16])
    parser.add_argument("--tiles", type=int, nargs="*", default=[4096, 1024])
    args = parser.parse_args()
    styles = args.styles or list_styles()
    if args.what == "seams":
        seams(styles, args.tile)
    elif args.what == "borders":
        borders(styles, args.margins)
    else:
        memory(styles[0], args.tiles)


if __name__ == "__main__":
    main()
