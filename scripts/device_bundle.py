"""Pack what a training run on a lent GPU machine needs and that machine lacks, into one folder.

    python scripts/device_bundle.py .bundle --styles shipwreck_of_the_minotaur starry_night
    python scripts/device_bundle.py /tmp/b --styles the_scream --photos 4 --val-photos 1 --no-wheels

The machine has no internet, no TensorFlow and no Keras, and what travels to it (the tracked
tree plus carried folders) is capped at 64 MiB, so the folder stays under --max-mib (40):

- ``vgg19.h5``: the ImageNet VGG19 convolutions up to block5_conv1 in float16 (``fst.training.vgg.save_cut``);
- ``photos/train``: as many training photos as fit, in name order; ``photos/val``: evaluation photos;
- ``paintings/`` and ``configs/``: each chosen style's painting and config (pointing at it);
- ``wheels/``: Keras and the requirements the machine lacks, for CPython 3.12 on manylinux x86-64;
- ``manifest.json``: what is in it, with sizes and the photo names.

Keep the folder out of git (``.bundle/`` is ignored) and carry it: ``run(..., carry=[".bundle"])``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

from fst.images import find_images
from fst.training.config import TrainConfig
from fst.training.vgg import WEIGHTS_FILE, save_cut

MIB = 1 << 20
#: What the device lacks of Keras' requirements and fst's own (it has numpy, scipy, h5py, pillow, tqdm,
#: ml-dtypes, rich and absl-py), at the versions installed here.
WHEELS = ("keras", "namex", "optree", "packaging", "tomli-w")
VGG_NAME = "vgg19.h5"


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def download_wheels(folder: Path, names: tuple[str, ...]) -> None:
    """The named packages at this machine's versions, as wheels for the device (cp312, manylinux x86-64)."""
    pins = [f"{name}=={metadata.version(name)}" for name in names]
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                    "--python-version", "3.12", "--implementation", "cp", "--abi", "cp312",
                    "--platform", "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64",
                    "--platform", "manylinux_2_28_x86_64",
                    "--dest", str(folder), *pins], check=True)


def load_config(name: str, paintings: Path) -> TrainConfig:
    """configs/NAME.toml, its painting taken from `paintings` by file name."""
    path = REPO / "configs" / f"{name}.toml"
    if not path.is_file():
        raise SystemExit(f"{path}: no such config")
    painting = Path(tomllib.loads(path.read_text(encoding="utf-8")).get("style_image", "")).name
    return TrainConfig.load(path, style_image=str(paintings / painting))


def write_config(source: Path, painting: Path, destination: Path) -> None:
    """The config with its painting path pointing at the bundle's copy (relative to the config)."""
    text = source.read_text(encoding="utf-8")
    text, found = re.subn(r'(?m)^style_image\s*=.*$', f'style_image = "../paintings/{painting.name}"', text)
    if not found:
        raise SystemExit(f"{source}: no style_image line")
    destination.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="the bundle folder to write (replaced if it exists)")
    parser.add_argument("--styles", nargs="+", required=True, help="names of configs in configs/")
    parser.add_argument("--max-mib", type=float, default=40.0, help="size cap of the whole folder (default 40)")
    parser.add_argument("--photos", type=int, default=None, help="at most this many training photos (default: fill)")
    parser.add_argument("--val-photos", type=int, default=10, help="evaluation photos (default 10)")
    parser.add_argument("--train-dir", type=Path, default=SHARED / "data" / "photos" / "train")
    parser.add_argument("--val-dir", type=Path, default=SHARED / "data" / "photos" / "val")
    parser.add_argument("--paintings", type=Path, default=SHARED / "data" / "styles",
                        help="folder with the configs' paintings (by file name)")
    parser.add_argument("--vgg-weights", type=Path, default=SHARED / "models" / WEIGHTS_FILE)
    parser.add_argument("--no-wheels", action="store_true", help="leave the wheels out (a CPU rehearsal)")
    args = parser.parse_args()

    configs = {name: load_config(name, args.paintings) for name in args.styles}
    if args.out.exists():
        shutil.rmtree(args.out)
    for sub in ("photos/train", "photos/val", "paintings", "configs", "wheels"):
        (args.out / sub).mkdir(parents=True)

    save_cut(args.vgg_weights, args.out / VGG_NAME, "block5_conv1", "float16")
    for name, config in configs.items():
        painting = Path(config.style_image)
        shutil.copy(painting, args.out / "paintings" / painting.name)
        write_config(REPO / "configs" / f"{name}.toml", painting, args.out / "configs" / f"{name}.toml")
    if not args.no_wheels:
        download_wheels(args.out / "wheels", WHEELS)
    val = find_images(args.val_dir)[: args.val_photos]
    for path in val:
        shutil.copy(path, args.out / "photos" / "val" / path.name)

    budget = int(args.max_mib * MIB) - folder_size(args.out) - 64 * 1024  # room for the manifest
    train = []
    for path in find_images(args.train_dir):
        if args.photos is not None and len(train) == args.photos:
            break
        size = path.stat().st_size
        if size > budget:
            break
        shutil.copy(path, args.out / "photos" / "train" / path.name)
        train.append(path.name)
        budget -= size

    manifest = {
        "styles": list(configs), "vgg": {"file": VGG_NAME, "deepest": "block5_conv1", "dtype": "float16"},
        "train_photos": {"source": str(args.train_dir), "count": len(train), "names": train},
        "val_photos": {"source": str(args.val_dir), "count": len(val), "names": [p.name for p in val]},
        "wheels": sorted(p.name for p in (args.out / "wheels").glob("*.whl")),
        "sizes_mib": {sub: round(folder_size(args.out / sub) / MIB, 2)
                      for sub in ("photos/train", "photos/val", "paintings", "configs", "wheels")}
                     | {VGG_NAME: round((args.out / VGG_NAME).stat().st_size / MIB, 2)},
    }
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    total = folder_size(args.out) / MIB
    print(f"bundle {args.out}: {total:.1f} MiB (cap {args.max_mib:g}): VGG19 to block5_conv1 float16 "
          f"{manifest['sizes_mib'][VGG_NAME]} MiB, {len(train)} training photos "
          f"({manifest['sizes_mib']['photos/train']} MiB, {train[0] if train else '-'} .. {train[-1] if train else '-'} "
          f"of {args.train_dir}), {len(val)} val photos, {len(configs)} styles, {len(manifest['wheels'])} wheels")
    if total > args.max_mib:
        raise SystemExit(f"bundle is {total:.1f} MiB, over the cap of {args.max_mib:g}")


if __name__ == "__main__":
    main()
