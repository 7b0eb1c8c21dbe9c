"""`fst train-style`: train a style's network for one painting."""

from __future__ import annotations

import argparse

from fst.cli.options import HelpFormatter, fields_as_options

EXAMPLES = """examples:
  fst train-style configs/starry_night.toml --data ~/coco/train2017
  fst train-style configs/starry_night.toml --data photos/ --steps 2000 --image-size 128
  fst train-style --style painting.jpg --name my_style --data photos/
  KERAS_BACKEND=jax fst train-style configs/great_wave.toml --data photos/ --mixed-precision mixed_bfloat16

Run the same command again after an interruption to resume from the last checkpoint.
"""


def add_parser(sub) -> None:
    p = sub.add_parser("train-style", help="train a style for one painting", epilog=EXAMPLES,
                       formatter_class=HelpFormatter,
                       description="Train the transformation network for one painting on a folder of photos, "
                                   "then install it as a style. Every config key can be overridden below.")
    p.add_argument("config", nargs="?", help="a TOML config (see configs/)")
    p.add_argument("--data", required=True, help="folder of training photos, searched recursively")
    p.add_argument("--style", dest="style_image", help="the painting (instead of, or overriding, the config's)")
    p.add_argument("--run-dir", help="checkpoints, logs and previews (default runs/NAME)")
    p.add_argument("--out", help="where to install the style (default: your style folder, $FST_STYLES_DIR)")
    p.add_argument("--vgg-weights", help="path to Keras' VGG19 notop weights file (else $FST_VGG19_WEIGHTS, the Keras cache, download)")
    p.add_argument("--preview-data", help="folder of photos for the preview grids (default: none)")
    p.add_argument("--restart", action="store_true", help="discard an existing checkpoint instead of resuming")
    config_options(p)
    p.set_defaults(func=command)


def config_options(p: argparse.ArgumentParser) -> None:
    """One --option per TrainConfig field, so any config value can be overridden."""
    from fst.training.config import TrainConfig

    fields_as_options(p.add_argument_group("config overrides"), TrainConfig, defaults=False, skip=("style_image",))


def command(args: argparse.Namespace) -> int:
    import dataclasses

    from fst.quiet import load_keras
    from fst.training.config import TrainConfig

    load_keras()
    from fst.training.train import train_style

    overrides = {f.name: getattr(args, f.name, None) for f in dataclasses.fields(TrainConfig)}
    config = TrainConfig.load(args.config, **overrides)
    style = train_style(config, args.data, run_dir=args.run_dir, out_dir=args.out, vgg_weights=args.vgg_weights,
                        preview_data=args.preview_data, restart=args.restart)
    if style is not None:
        print(f"installed style {style.name!r} at {style.weights}; try: fst run {style.name} photo.jpg out.jpg")
    return 0
