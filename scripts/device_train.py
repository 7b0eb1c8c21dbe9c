"""Train, evaluate and pack several styles in one call on a lent GPU machine (JAX, no TensorFlow).

    python3 scripts/device_train.py .bundle --styles the_scream udnie --budget 480

Run from the repository root, with the folder ``scripts/device_bundle.py`` wrote. It extracts the
bundle's wheels into a temporary site folder and starts again with it on PYTHONPATH, then, under one
budget of wall time:

1. probes throughput (``--probe`` seconds in all; 0 skips): training images/s at 256 px for each
   --probe-batches in bfloat16 and float32, and inference frames/s on 1920x1080 frames;
2. trains each style with ``fst.training.train.train_style`` (the GPU recipe: --image-size crops, the
   painting at its config's style size, --precision, XLA, the shipped style as the start unless
   --scratch), each stopped by ``time_limit`` so the budget holds;
3. evaluates the new style and the shipped one on the bundle's val photos at each --eval-sizes
   (the ``scripts/evaluate_styles.py`` figures: fast against Gatys on the style's own objective);
4. writes into --out (``$OUT``) after each style, so a run cut at its limit still returns what it
   finished: ``styles.tar`` (float16 ``.weights.h5`` + ``.toml``), ``losses.tar``, ``evaluation.md``,
   ``contact.png`` (photo, shipped, new, Gatys at the largest size), ``probe.json`` and ``log.txt``.

Every line is printed with the seconds since the start, unbuffered.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: Wall time of the first start (kept across the re-start under another backend).
STARTED = float(os.environ.setdefault("FST_DEVICE_STARTED", str(time.time())))


def say(message: str, out: Path | None = None) -> None:
    """Prints a timestamped line and appends it to out/log.txt."""
    line = f"[{time.time() - STARTED:7.1f}s] {message}"
    print(line, flush=True)
    if out is not None:
        with open(out / "log.txt", "a") as log:
            log.write(line + "\n")


def install_wheels(wheels: Path, site: Path) -> None:
    """Extracts each wheel (a zip of the installed files) into site."""
    for wheel in sorted(wheels.glob("*.whl")):
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(site)


def restart_with_wheels(args: argparse.Namespace) -> Path:
    """On the first start, installs the bundle's wheels into a temporary site folder and starts this
    script again with the checkout and that folder first on PYTHONPATH (before the machine's own
    packages); returns the work folder in the restarted process."""
    if "FST_DEVICE_WORK" in os.environ:
        return Path(os.environ["FST_DEVICE_WORK"])
    work = Path(tempfile.mkdtemp(prefix="fst-device-"))
    install_wheels(args.bundle / "wheels", work / "site")
    os.environ["FST_DEVICE_WORK"] = str(work)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), str(work / "site"),
                                                             os.environ.get("PYTHONPATH")]))
    os.execv(sys.executable, [sys.executable, __file__, *sys.argv[1:]])


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", type=Path, help="the folder scripts/device_bundle.py wrote")
    parser.add_argument("--styles", nargs="+", default=None, help="styles to train (default: all in the bundle)")
    parser.add_argument("--budget", type=float, default=480.0, help="seconds for everything (default 480)")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "device_out")))
    parser.add_argument("--backend", default="jax", help="Keras backend (default jax)")
    parser.add_argument("--probe", type=float, default=40.0, help="seconds for the throughput probe (0: none)")
    parser.add_argument("--probe-batches", nargs="+", type=int, default=[8, 16, 32])
    parser.add_argument("--probe-frame", default="1920x1080", help="frame size of the inference probe, WxH")
    parser.add_argument("--image-size", type=int, default=256, help="training crop size (default 256)")
    parser.add_argument("--batch-size", type=int, default=8, help="training batch (default 8)")
    parser.add_argument("--precision", default="mixed_bfloat16", help="mixed_precision for training")
    parser.add_argument("--checkpoint-every", type=int, default=400, help="steps between checkpoints")
    parser.add_argument("--lr-schedule", default="constant", help="constant, or cosine over --max-steps")
    parser.add_argument("--max-steps", type=int, default=200_000, help="steps a style may take at most")
    parser.add_argument("--scratch", action="store_true", help="train from random weights, not the shipped style")
    parser.add_argument("--eval-sizes", nargs="+", type=int, default=[256],
                        help="evaluation sizes (default 256; 512 costs several times more)")
    parser.add_argument("--eval-photos", type=int, default=10, help="val photos to evaluate on (default 10; 0: none)")
    parser.add_argument("--gatys-iterations", type=int, default=100)
    parser.add_argument("--eval-seconds", type=float, default=150.0,
                        help="time kept back for each style's evaluation (default 150: on an H200, 10 photos "
                             "at 256 px with 100 Gatys iterations took 118 s)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    work = restart_with_wheels(args)
    wheels = sorted(p.name for p in (args.bundle / "wheels").glob("*.whl"))
    os.environ["KERAS_BACKEND"] = args.backend
    os.environ["FST_VGG19_WEIGHTS"] = str((args.bundle / "vgg19.h5").resolve())
    os.environ["FST_STYLES_DIR"] = str(work / "styles")

    try:
        import keras

        keras.ops.convert_to_numpy(keras.ops.matmul(keras.ops.ones((2, 2)), keras.ops.ones((2, 2))))
    except Exception:
        if args.backend != "jax":
            raise
        # Keras may not work with the machine's JAX: PyTorch is the other backend such machines have.
        import traceback

        say(f"Keras under JAX failed; restarting under the torch backend:\n{traceback.format_exc()}", args.out)
        os.execv(sys.executable, [sys.executable, __file__, *sys.argv[1:], "--backend", "torch"])
    say(f"keras {keras.__version__} on {keras.backend.backend()}; wheels: {', '.join(wheels) or 'none'}", args.out)
    if args.backend == "jax":
        import jax

        say(f"jax {jax.__version__}, devices: {jax.devices()}", args.out)
    import logging

    logging.basicConfig(level=logging.INFO, format="%(message)s",
                        handlers=[logging.StreamHandler(_Say(args.out))])
    logging.getLogger("fst.training.train").setLevel(logging.DEBUG)

    from fst.training.config import TrainConfig

    names = args.styles or sorted(p.stem for p in (args.bundle / "configs").glob("*.toml"))
    configs = {name: TrainConfig.load(args.bundle / "configs" / f"{name}.toml") for name in names}
    if args.probe > 0:
        probe = attempt(args.out, "probe", run_probe, args, configs[names[0]]) or {}
        (args.out / "probe.json").write_text(json.dumps(probe, indent=1) + "\n")

    results, sheet = [], []
    for i, name in enumerate(names):
        left = args.budget - (time.time() - STARTED)
        evaluation = args.eval_seconds if args.eval_photos else 0.0
        seconds = (left - evaluation * (len(names) - i)) / (len(names) - i)
        if seconds < 10:
            say(f"{name}: only {seconds:.0f} s left for training; stopping here", args.out)
            break
        style = attempt(args.out, f"{name} training", train, args, name, configs[name], seconds, work)
        if style is None:
            continue
        pack_styles(args.out, work / "ship")
        pack_losses(args.out, work / "runs")
        if not args.eval_photos:
            continue
        rows, cells = attempt(args.out, f"{name} evaluation", evaluate, args, name, style, work) or ([], [])
        results += rows
        sheet += cells
        write_report(args.out, results, sheet, args)
    say(f"done in {time.time() - STARTED:.0f} s", args.out)


def attempt(out: Path, what: str, function, *args):
    """function(*args), or None with the traceback in the log: one failed phase must not cost the others."""
    try:
        return function(*args)
    except Exception:
        import traceback

        say(f"{what} failed:\n{traceback.format_exc()}", out)
        return None


class _Say(io.TextIOBase):
    """A stream for logging that goes through say()."""

    def __init__(self, out: Path):
        self.out = out

    def write(self, text: str) -> int:
        if text.strip():
            say(text.rstrip(), self.out)
        return len(text)


def run_probe(args, config) -> dict:
    """Training images/s per batch size and precision at --image-size, and inference frames/s at 1080p."""
    import numpy as np

    from fst.images import find_images, load_image, load_painting
    from fst.training.train import build_trainer

    photos = np.stack([load_image(p)[0] for p in find_images(args.bundle / "photos" / "train")[:32]])
    photos = photos[:, : args.image_size, : args.image_size].astype("float32")
    painting = load_painting(config.style_image, config.style_size)
    deadline = time.monotonic() + args.probe
    probe = {"inference": probe_inference(args, config.name, deadline), "training": []}
    # Both precisions at the middle batch first, so a short probe still compares them.
    middle = sorted(args.probe_batches)[len(args.probe_batches) // 2]
    runs = sorted(((p, b) for p in (args.precision, "none") for b in args.probe_batches), key=lambda r: r[1] != middle)
    for precision, batch in runs:
        if probe["training"] and time.monotonic() > deadline:  # the first always runs
            say(f"probe: out of time before {precision} batch {batch}", args.out)
            break
        trial = dataclasses.replace(config, mixed_precision=precision, batch_size=batch, jit_compile=True)
        trainer = build_trainer(trial, painting)
        x = np.resize(photos, (batch, *photos.shape[1:]))
        started = time.monotonic()
        trainer.train_on_batch(x, x)
        compiled = time.monotonic() - started
        steps, started = 0, time.monotonic()
        while steps < 3 or time.monotonic() - started < min(3.0, args.probe / len(runs)):
            trainer.train_on_batch(x, x)
            steps += 1
        rate = steps * batch / (time.monotonic() - started)
        probe["training"].append({"precision": precision, "batch": batch, "images_per_s": round(rate, 1),
                                  "compile_s": round(compiled, 1)})
        say(f"probe: training {precision} batch {batch} at {args.image_size} px: {rate:.1f} images/s "
            f"(compiled in {compiled:.1f} s)", args.out)
    return probe


def probe_inference(args, name: str, deadline: float) -> list[dict]:
    """Frames/s of the shipped network on --probe-frame frames (padded to multiples of 4), float32 and bfloat16."""
    import numpy as np

    from fst.network import build_network
    from fst.styles import get_style
    from fst.training.train import dtype_policy

    style = get_style(REPO / "weights" / f"{name}.weights.h5")
    width, height = (int(n) for n in args.probe_frame.split("x"))
    frames = np.random.default_rng(0).uniform(0, 255, (4, -(-height // 4) * 4, -(-width // 4) * 4, 3))
    frames = frames.astype("float32")
    rates = []
    for precision in ("none", args.precision):
        if rates and time.monotonic() > deadline:  # the first always runs
            say(f"probe: out of time before inference in {precision}", args.out)
            break
        with dtype_policy(precision):
            model = build_network(**style.network_options)
        model.load_weights(style.weights)
        np.asarray(model.predict_on_batch(frames))
        count, started = 0, time.monotonic()
        while count < 8 or time.monotonic() - started < 1.0:
            np.asarray(model.predict_on_batch(frames))
            count += len(frames)
        rate = count / (time.monotonic() - started)
        rates.append({"precision": precision, "frames_per_s": round(rate, 1), "size": args.probe_frame, "batch": 4})
        say(f"probe: inference {precision} {args.probe_frame} batch 4: {rate:.1f} frames/s", args.out)
    return rates


def train(args, name: str, config, seconds: float, work: Path):
    """Trains one style for about `seconds` and returns the Style (float16 copy in work/ship)."""
    from fst.styles import copy_style
    from fst.training.train import train_style

    shipped = REPO / "weights" / f"{name}.weights.h5"
    init = "" if args.scratch or not shipped.is_file() else str(shipped)
    steps = args.max_steps - args.max_steps % args.checkpoint_every
    config = dataclasses.replace(config, image_size=args.image_size, batch_size=args.batch_size,
                              mixed_precision=args.precision, jit_compile=True, init=init, steps=steps,
                              lr_schedule=args.lr_schedule,
                              checkpoint_every=args.checkpoint_every, preview_every=steps,
                              time_limit=f"{seconds:.0f}s", cache_photos=True, workers=8)
    say(f"{name}: training {seconds:.0f} s at {args.image_size} px, batch {args.batch_size}, {args.precision}, "
        f"from {'scratch' if not init else 'the shipped weights'}", args.out)
    started = time.monotonic()
    # work/styles is this kit's own style folder: the new network is meant to take the shipped one's place.
    style = train_style(config, args.bundle / "photos" / "train", run_dir=work / "runs" / name,
                        out_dir=work / "styles", verbose=False, replace=True)
    took = time.monotonic() - started
    steps_done = style.figures["steps"]
    say(f"{name}: {steps_done} steps in {took:.0f} s, {steps_done * args.batch_size / took:.1f} images/s "
        f"(start-up and compilation included); final losses {style.figures['final_losses']}", args.out)
    return copy_style(style, work / "ship", float16=True)


def pack_styles(out: Path, ship: Path) -> None:
    """styles.tar: every finished style's float16 weights and metadata (about 3.4 MB a style)."""
    with tarfile.open(out / "styles.tar.part", "w") as tar:
        for path in sorted(ship.iterdir()):
            tar.add(path, arcname=path.name)
    os.replace(out / "styles.tar.part", out / "styles.tar")


def pack_losses(out: Path, runs: Path) -> None:
    with tarfile.open(out / "losses.tar.part", "w") as tar:
        for csv in sorted(runs.glob("*/losses.csv")):
            tar.add(csv, arcname=f"{csv.parent.name}.csv")
    os.replace(out / "losses.tar.part", out / "losses.tar")


def evaluate(args, name: str, style, work: Path) -> tuple[list[dict], list[list]]:
    """The evaluation figures for the shipped and the new network at each size; contact rows at the last."""
    from fst.images import find_images
    from fst.training.evaluation import evaluate as evaluate_style

    photos = find_images(args.bundle / "photos" / "val")[: args.eval_photos]
    rows, cells = [], []
    for size in args.eval_sizes:
        options = dict(size=size, iterations=args.gatys_iterations, cache=work / "gatys",
                       paintings=args.bundle / "paintings", sheet_rows=2)
        started = time.monotonic()
        shipped_sheet = []
        if (REPO / "weights" / f"{name}.weights.h5").is_file():
            shipped, shipped_sheet = evaluate_style(str(REPO / "weights" / f"{name}.weights.h5"), photos, **options)
            rows.append({**shipped, "style": f"{name} (shipped)", "size": size})
        new, new_sheet = evaluate_style(str(style.weights), photos, **options)
        rows.append({**new, "style": f"{name} (new)", "size": size})
        say(f"{name} at {size} px: fast/Gatys {new['ratio']:.2f} new"
            + (f", {rows[-2]['ratio']:.2f} shipped" if shipped_sheet else "")
            + f" ({time.monotonic() - started:.0f} s)", args.out)
        if size == args.eval_sizes[-1]:
            cells = [[row[0], *([old[1]] if shipped_sheet else []), *row[1:]]
                     for row, old in zip(new_sheet, shipped_sheet or new_sheet)]
    return rows, cells


def write_report(out: Path, results: list[dict], sheet: list, args) -> None:
    import numpy as np

    from fst.files import write_atomic
    from fst.images import encode
    from fst.training.evaluation import contact_sheet, table

    text = []
    for size in args.eval_sizes:
        at_size = [r for r in results if r["size"] == size]
        if at_size:
            text.append(table(at_size, size, args.gatys_iterations))
    write_atomic("\n".join(text).encode(), out / "evaluation.md")
    if sheet:
        width = max(len(row) for row in sheet)
        sheet = [row + [row[-1]] * (width - len(row)) for row in sheet]
        cell = min(256, args.eval_sizes[-1])
        write_atomic(encode(np.asarray(contact_sheet(sheet, cell)), "PNG"), out / "contact.png")


if __name__ == "__main__":
    main()
