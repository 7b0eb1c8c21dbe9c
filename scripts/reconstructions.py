"""What each VGG19 layer keeps: the reconstruction figures of Gatys et al. (2015).

    python scripts/reconstructions.py photo.jpg painting.jpg out_dir/ [--size 256 --iterations 200]

Writes two grids into out_dir:
  content_reconstructions.png  the photo rebuilt from noise using the features of one layer
                               (relu1_2, relu2_2, relu3_2, relu4_2, relu5_2): deeper layers keep
                               the layout and lose the exact pixels;
  style_reconstructions.png    the painting's texture rebuilt from noise from the Gram matrices
                               of growing sets of layers (relu1_1; + relu2_1; ... + relu5_1):
                               more layers, larger-scale structure.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from fst.files import write_atomic
from fst.images import encode, load_image, resize_long_side
from fst.training.gatys import optimize

CONTENT_LAYERS = ["relu1_2", "relu2_2", "relu3_2", "relu4_2", "relu5_2"]
STYLE_LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]


def grid(images: list[np.ndarray]) -> np.ndarray:
    """Images side by side (resized to the first one's height), with a white gap."""
    from PIL import Image

    h = images[0].shape[0]
    gap = np.full((h, 8, 3), 255, np.uint8)
    row = []
    for image in images:
        if image.shape[0] != h:
            image = np.asarray(Image.fromarray(image).resize((round(image.shape[1] * h / image.shape[0]), h)))
        row += [image, gap]
    return np.concatenate(row[:-1], axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photo")
    parser.add_argument("painting")
    parser.add_argument("out_dir")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vgg-weights")
    args = parser.parse_args()
    out = Path(args.out_dir)
    common = {"max_size": args.size, "iterations": args.iterations, "init": "noise", "seed": args.seed,
              "tv_weight": 0.0, "vgg_weights": args.vgg_weights}

    photo = load_image(args.photo)[0]
    content = [optimize(photo, args.painting, content_layers=[layer], style_weight=0.0, **common)
               for layer in CONTENT_LAYERS]
    write_atomic(encode(grid([resize_long_side(photo, args.size), *content]), "PNG"),
                 out / "content_reconstructions.png")

    painting = load_image(args.painting)[0]
    style = [optimize(photo, painting, style_layers=STYLE_LAYERS[: n + 1], content_weight=0.0, **common)
             for n in range(len(STYLE_LAYERS))]
    write_atomic(encode(grid(style), "PNG"), out / "style_reconstructions.png")
    print(f"wrote {out / 'content_reconstructions.png'} and {out / 'style_reconstructions.png'}")


if __name__ == "__main__":
    main()
