"""Flicker of a style on video-like input: how much the stylized frames change per unit of input change.

    python scripts/flicker.py starry_night
    python scripts/flicker.py runs/a/out/a.weights.h5 runs/b/out/b.weights.h5 --photo photo.jpg --size 256

Two clips are made from one photo (default: the first photo of ../shared/data/photos/val):

* still: the photo repeated for --frames frames, each with independent Gaussian noise of std
  --sigma (on 0..255), as a sensor would add;
* pan: a window moving --speed pixels per frame across the photo.

flicker = mean |S(f_t) - S(f_t-1)| / mean |f_t - f_t-1|, averaged over t, where S is the style.
For the pan, S(f_t) is first shifted back by the known motion, so a style that simply moves its
strokes with the scene scores 0; the denominator is the raw frame difference. A border of
--margin pixels is left out (the window's edges show new content). Lower is steadier.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from fst.inference import stylize_frames

DEFAULT_PHOTO = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "photos" / "val" / "000001.jpg"


def still_clip(photo: np.ndarray, frames: int, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noisy = photo[None].astype(np.float32) + rng.normal(0.0, sigma, (frames, *photo.shape))
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


def pan_clip(wide: np.ndarray, size: int, frames: int, speed: int) -> np.ndarray:
    return np.stack([wide[:, i * speed:i * speed + size] for i in range(frames)])


def stylize(clip: np.ndarray, style: str, batch_size: int = 4) -> np.ndarray:
    return np.concatenate([stylize_frames(clip[i:i + batch_size], style) for i in range(0, len(clip), batch_size)])


def flicker(clip: np.ndarray, stylized: np.ndarray, shift: int, margin: int) -> float:
    """Mean over t of mean|S_t - S_t-1| (S_t shifted back by `shift` px) / mean|f_t - f_t-1|."""
    c, s = clip.astype(np.float32), stylized.astype(np.float32)
    w = clip.shape[2]
    inner = (slice(margin, -margin or None), slice(margin, w - shift - margin))
    ratios = []
    for t in range(1, len(clip)):
        out = np.abs(s[t][:, :w - shift] - s[t - 1][:, shift:])[inner].mean()
        inp = np.abs(c[t] - c[t - 1])[margin:-margin or None, margin:-margin or None].mean()
        ratios.append(out / inp)
    return float(np.mean(ratios))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("styles", nargs="+", help="style names or .weights.h5 paths")
    parser.add_argument("--photo", type=Path, default=DEFAULT_PHOTO)
    parser.add_argument("--size", type=int, default=256, help="frame side in pixels (square)")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--sigma", type=float, default=3.0)
    parser.add_argument("--speed", type=int, default=1, help="pan speed in pixels per frame")
    parser.add_argument("--margin", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from fst.images import load_image

    rgb = load_image(args.photo)[0]
    width = args.size + args.speed * (args.frames - 1)
    photo = np.asarray(Image.fromarray(rgb).resize((args.size, args.size), Image.Resampling.LANCZOS))
    wide = np.asarray(Image.fromarray(rgb).resize((width, args.size), Image.Resampling.LANCZOS))
    still = still_clip(photo, args.frames, args.sigma, args.seed)
    pan = pan_clip(wide, args.size, args.frames, args.speed)
    print(f"{args.photo.name}, {args.size}x{args.size}, {args.frames} frames; still: noise sigma {args.sigma}; "
          f"pan: {args.speed} px/frame\n")
    print("| style | flicker, still + noise | flicker, pan |")
    print("| --- | ---: | ---: |")
    for style in args.styles:
        still_flicker = flicker(still, stylize(still, style), 0, args.margin)
        pan_flicker = flicker(pan, stylize(pan, style), args.speed, args.margin)
        print(f"| {Path(style).name} | {still_flicker:.2f} | {pan_flicker:.2f} |")


if __name__ == "__main__":
    main()
