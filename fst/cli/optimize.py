"""`fst optimize`: Gatys et al.'s pixel optimisation, no trained style needed."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from fst.cli.options import HelpFormatter, fields_as_options

EXAMPLES = """examples:
  fst optimize photo.jpg painting.jpg out.png
  fst optimize photo.jpg painting.jpg out.png --max-size 1024 --coarse-size 512 --iterations 400
  fst optimize photo.jpg painting.jpg out.png --optimizer adam --init noise --seed 3 --checkpoint-every 50
  fst optimize photo.jpg painting.jpg out.png --style-layers relu1_1 relu2_1 --style-weight 200
"""


def add_parser(sub) -> None:
    p = sub.add_parser("optimize", help="stylize by optimising the pixels (Gatys et al.; slow, any painting)",
                       epilog=EXAMPLES, formatter_class=HelpFormatter,
                       description="Optimise an image so its VGG19 features match CONTENT's and its Gram "
                                   "matrices match STYLE's. Needs no trained style.")
    p.add_argument("content", help="the photo")
    p.add_argument("style", help="the painting")
    p.add_argument("dst", help="output image (format from its extension)")
    p.add_argument("--max-size", type=int, default=512, help="longer side of the output (default 512)")
    p.add_argument("--iterations", type=int, default=300, help="optimiser iterations (default 300)")
    p.add_argument("--optimizer", choices=["lbfgs", "adam"], default="lbfgs", help="the optimiser")
    p.add_argument("--learning-rate", type=float, default=5.0, help="Adam step in pixel units (default 5)")
    p.add_argument("--init", choices=["content", "style", "noise"], default="content",
                   help="the image the optimisation starts from")
    p.add_argument("--seed", type=int, default=0, help="seed for --init noise")
    p.add_argument("--style-scale", type=float, default=1.0, help="painting size relative to the output")
    p.add_argument("--coarse-size", type=int, help="optimise at this size first, then upscale and continue")
    loss_options(p)
    p.add_argument("--preserve-color", action="store_true", help="keep the photo's colours")
    p.add_argument("--checkpoint-every", type=int, metavar="N", help="also write DST_N.png every N iterations")
    p.add_argument("--overwrite", action="store_true", help="allow writing over the input file")
    p.add_argument("--vgg-weights", help="path to Keras' VGG19 notop weights file (else $FST_VGG19_WEIGHTS, the Keras cache, download)")
    p.set_defaults(func=command)


def loss_options(p: argparse.ArgumentParser) -> None:
    from fst.training.objective import LossConfig

    fields_as_options(p.add_argument_group("objective"), LossConfig, defaults=True)


def command(args: argparse.Namespace) -> int:
    import dataclasses

    from fst import images
    from fst.files import write_atomic
    from fst.quiet import load_keras

    load_keras()
    from fst.training.gatys import optimize
    from fst.training.objective import LossConfig

    loss = LossConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(LossConfig)})
    fmt = images.check_destination(args.dst, args.content, args.overwrite)
    dst = Path(args.dst)

    def checkpoint(iteration: int, image) -> None:
        write_atomic(images.encode(image, fmt), dst.with_name(f"{dst.stem}_{iteration}{dst.suffix}"))

    history: list[dict] = []
    started = time.perf_counter()
    out = optimize(args.content, args.style, loss=loss, max_size=args.max_size, style_scale=args.style_scale,
                   optimizer=args.optimizer, iterations=args.iterations, learning_rate=args.learning_rate, init=args.init, seed=args.seed,
                   coarse_size=args.coarse_size, preserve_color=args.preserve_color,
                   checkpoint_every=args.checkpoint_every, checkpoint=checkpoint, vgg_weights=args.vgg_weights,
                   history=history)
    write_atomic(images.encode(out, fmt), dst)
    last = history[-1]
    print(f"fst: {len(history)} iterations in {time.perf_counter() - started:.1f} s, loss {history[0]['total']:.4g} "
          f"-> {last['total']:.4g} (content {last['content']:.4g}, style {last['style']:.4g}, tv {last['tv']:.4g}) "
          f"-> {dst}", file=sys.stderr)
    return 0
