"""`fst train-style`: train a style's network for one painting."""

from __future__ import annotations

import argparse

from fst.cli.options import HelpFormatter, fields_as_options

EXAMPLES = """examples:
  fst train-style configs/starry_night.toml --data ~/coco/train2017 --name my_starry_night
  fst train-style configs/starry_night.toml --data photos/ --steps 2000 --out my_styles/
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
    p.add_argument("--replace", action="store_true",
                   help="install in your style folder under a shipped style's name, in its place")
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

    overrides = {f.name: getattr(args, f.name, None) for f in dataclasses.fields(TrainConfig)}
    config = TrainConfig.load(args.config, **overrides)  # checked before Keras loads
    load_keras()
    from fst.training.train import train_style

    style = train_style(config, args.data, run_dir=args.run_dir, out_dir=args.out, vgg_weights=args.vgg_weights,
                        preview_data=args.preview_data, restart=args.restart, replace=args.replace)
    if style is not None:
        from fst.styles import user_dir

        # By name only where the name finds it: after --out FOLDER, by its path.
        runs_as = style.name if style.weights.parent.resolve() == user_dir().resolve() else style.weights
        print(f"installed style {style.name!r} at {style.weights}; try: fst run {runs_as} photo.jpg out.jpg")
    return 0
