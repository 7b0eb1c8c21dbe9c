"""Training a style: the transformation network against the VGG19 perceptual loss, with ``model.fit``.

One "epoch" here is ``checkpoint_every`` steps: at its end the training state
(network, optimizer, step) is checkpointed atomically and losses are logged; a
time limit ends the epoch early, after any step.  Running the same command again resumes from the
last checkpoint and ends with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import csv
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import keras
import numpy as np
from keras import ops

from fst import styles
from fst.errors import FstError
from fst.images import find_images, load_image, load_painting
from fst.network import build_network
from fst.training import backends
from fst.training.callbacks import LOSS_TERMS, Checkpoint, Preview, Progress, StopOnNaN, TimeLimit
from fst.training.config import SHIFT_BORDER, TrainConfig, parse_duration
from fst.training.data import PhotoBatches, random_crop
from fst.training.losses import PerceptualLoss

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.weights.h5"
#: Where ``150 * tanh(x) + 127.5`` leaves 0..255: |x| = atanh(127.5 / 150).
SATURATION_EDGE = float(np.arctanh(127.5 / 150.0))


class StyleTrainer(keras.Model):
    """The transformation network plus the frozen loss network; ``fit`` trains the former.

    ``compute_loss`` is overridden (not ``train_step``), so the same model
    trains under the TensorFlow, JAX and PyTorch backends.
    """

    def __init__(self, network: keras.Model, loss, replicas: int = 1, stability_weight: float = 0.0,
                 stability_shift: int = 0, stability_still_weight: float = 0.0, saturation_weight: float = 0.0,
                 **kwargs):
        super().__init__(**kwargs)
        self.network, self.perceptual, self.replicas = network, loss, replicas
        self.stability_weight, self.stability_shift = stability_weight, stability_shift
        self.stability_still_weight = stability_still_weight
        self.saturation_weight = saturation_weight
        if saturation_weight:  # the same layers, also giving what goes into the output's tanh
            self.with_logits = keras.Model(network.input, [network.output, network.get_layer("pixels").input])
        names = (("content", "style", "tv") + (("stability",) if stability_weight else ())
                 + (("saturation",) if saturation_weight else ()))
        self.trackers = {k: keras.metrics.Mean(name=k) for k in names}

    def build(self, input_shape):
        self.network.build(input_shape)

    def call(self, images, training=False):
        """The network's pixels; with a saturation weight, (pixels, what went into their tanh)."""
        if self.saturation_weight:
            return tuple(self.with_logits(images, training=training))
        return self.network(images, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        logits = None
        if self.saturation_weight:
            y_pred, logits = y_pred
        terms = self.perceptual(y_pred, self.perceptual.content_targets(x))
        if self.stability_weight and y is not None:
            # Gupta et al. 2017: the output for a photo and for the same photo with a little
            # noise (y, made by the data pipeline) should match, so video frames do not flicker.
            terms["stability"] = self._instability(y_pred, y, training)
            terms["total"] = terms["total"] + terms["stability"]
        if logits is not None:
            # A pixel whose tanh is saturated gets no gradient from the other terms and stays (a black or
            # white blob that grows); this term is zero on the display range and pulls the rest back to it.
            beyond = ops.relu(ops.abs(ops.cast(logits, "float32")) - SATURATION_EDGE)
            terms["saturation"] = self.saturation_weight * ops.mean(ops.square(beyond))
            terms["total"] = terms["total"] + terms["saturation"]
        for key, tracker in self.trackers.items():
            tracker.update_state(terms[key])
        # Under tf.distribute each replica's gradient is summed: scale the per-replica mean.
        return terms["total"] / self.replicas

    def _instability(self, y_pred, y, training):
        """The weighted stability term. Unshifted: the output for the photo against the output for its
        noisy copy. Shifted (``stability_shift``): against the output for a copy also moved by (dy, dx)
        pixels, moved back alike and away from the borders, so the strokes move with a panning scene
        instead of shimmering at the network's four stride phases; with ``stability_still_weight`` the
        unmoved noisy copy is compared too, so a still scene's sensor noise stays as steady as without
        the shift."""
        y_pred = ops.cast(y_pred, "float32")
        if not self.stability_shift:
            return self.stability_weight * self._noise_gap(y_pred, y, training)
        moved, offsets, *still = y
        out = ops.cast(self.network(moved, training=training), "float32")
        batch, height, width, channels = ops.shape(out)
        size = (batch, height - 2 * SHIFT_BORDER - self.stability_shift,
                width - 2 * SHIFT_BORDER - self.stability_shift, channels)
        dy, dx = ops.cast(offsets[0, 0], "int32"), ops.cast(offsets[0, 1], "int32")
        expected = ops.slice(y_pred, (0, SHIFT_BORDER + dy, SHIFT_BORDER + dx, 0), size)
        got = ops.slice(out, (0, SHIFT_BORDER, SHIFT_BORDER, 0), size)
        gap = self.stability_weight * ops.mean(ops.square(expected - got))
        if still:
            gap = gap + self.stability_still_weight * self._noise_gap(y_pred, still[0], training)
        return gap

    def _noise_gap(self, y_pred, noisy, training):
        """Mean squared difference between the output for the photo and for its noisy copy."""
        return ops.mean(ops.square(y_pred - ops.cast(self.network(noisy, training=training), "float32")))

    @property
    def metrics(self):
        return [*super().metrics, *self.trackers.values()]


@contextlib.contextmanager
def dtype_policy(name: str):
    """Builds the layers made inside under a mixed-precision policy ("none": the current one) and
    restores the global policy after, so later models in the process (evaluation) stay float32.
    Gram matrices and losses are computed in float32 whatever the policy (``fst.training.losses``)."""
    previous = keras.mixed_precision.global_policy()
    if name != "none":
        keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _preview_photos(folder: Path, size: int, count: int = 4) -> np.ndarray:
    rng = np.random.default_rng(0)
    photos = []
    for path in find_images(folder):
        try:
            photos.append(random_crop(load_image(path)[0], size, rng))
        except FstError:
            continue
        if len(photos) == count:
            break
    return np.stack(photos).astype(np.float32)


def _read_checkpoint(path: Path, fingerprint: str, steps_per_epoch: int) -> tuple[int, float]:
    """(steps done, seconds spent) of an existing checkpoint of this config; (0, 0) if none."""
    if not path.exists():
        return 0, 0.0
    with h5py.File(path, "r") as f:
        if f.attrs.get("fingerprint") != fingerprint:
            raise FstError(f"{path}: checkpoint of a different config; restart it (--restart) or use another run folder (--run-dir)")
        # Checkpoints written before the "step" attribute counted epochs of this run's length.
        step = int(f.attrs["step"]) if "step" in f.attrs else int(f.attrs["epoch"]) * steps_per_epoch
        return step, float(f.attrs["elapsed_seconds"])


def _final_losses(csv_path: Path) -> dict[str, float]:
    """The last logged content, style, TV and total losses; none when the log is gone (a checkpoint
    copied on its own to another run folder still exports)."""
    if not csv_path.is_file():
        return {}
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {k: round(float(v), 6) for k, v in rows[-1].items() if k in LOSS_TERMS} if rows else {}


def build_trainer(config: TrainConfig, painting: np.ndarray, vgg_weights: str | None = None,
                  replicas: int = 1) -> StyleTrainer:
    """A compiled StyleTrainer for the config's network, objective, optimizer and precision, with
    untrained weights; `painting` is RGB at the style size."""
    with dtype_policy(config.mixed_precision):
        network = build_network(config.upsampling, config.width)
        loss = PerceptualLoss(config.loss, vgg_weights)
        loss.set_style(painting)
        trainer = StyleTrainer(network, loss, replicas=replicas, stability_weight=config.stability_weight,
                               stability_shift=config.stability_shift,
                               stability_still_weight=config.stability_still_weight,
                               saturation_weight=config.saturation_weight)
        learning_rate = config.learning_rate
        if config.lr_schedule == "cosine":
            learning_rate = keras.optimizers.schedules.CosineDecay(config.learning_rate, config.steps, alpha=0.1)
        # Under mixed_float16 compile wraps the optimizer in a LossScaleOptimizer (the trainer's policy).
        trainer.compile(optimizer=keras.optimizers.Adam(learning_rate), jit_compile=config.jit_compile)
        trainer.build((None, None, None, 3))
        trainer.optimizer.build(trainer.trainable_variables)
    return trainer


@dataclass
class _Run:
    """Where a run keeps its state and how far it got."""

    folder: Path
    worker: str | None  # a non-chief worker of a multi-worker run: checkpoints of its own, exports nothing
    fingerprint: str
    steps_per_epoch: int
    epochs: int  # left to run, from the checkpoint's step
    initial_step: int
    elapsed: float

    @property
    def checkpoint(self) -> Path:
        return self.folder / CHECKPOINT


def _resume(config: TrainConfig, run_dir: str | os.PathLike | None, restart: bool) -> _Run:
    """The run folder and the step its checkpoint of this config reached (0 for a new run)."""
    folder = Path(run_dir or Path("runs") / config.name)
    worker = backends.worker_folder()
    if worker is not None:  # every worker checkpoints (identical state) but only the chief's is the run's
        folder = folder / worker
    steps_per_epoch = min(config.checkpoint_every, config.steps)
    run = _Run(folder, worker, config.fingerprint(), steps_per_epoch, 0, 0, 0.0)
    if restart:
        run.checkpoint.unlink(missing_ok=True)
    run.initial_step, run.elapsed = _read_checkpoint(run.checkpoint, run.fingerprint, steps_per_epoch)
    # Epochs from where the checkpoint stopped (perhaps mid-interval, on a time limit); Checkpoint ends the last.
    run.epochs = -(-max(0, config.steps - run.initial_step) // steps_per_epoch)
    if run.initial_step > config.steps:
        log.warning("%s: the checkpoint is at step %d, past steps = %d; exporting it as it is",
                    run.checkpoint, run.initial_step, config.steps)
    return run


def _callbacks(config: TrainConfig, run: _Run, preview_data, verbose: bool) -> tuple[list, Checkpoint,
                                                                                        StopOnNaN, TimeLimit | None]:
    """The callbacks handed to fit, and the three whose state decides how the run ends."""
    checkpoint = Checkpoint(run.checkpoint, run.fingerprint, run.initial_step, config.steps, run.elapsed)
    stop = StopOnNaN(run.initial_step)
    log_dir = run.folder / "logs" if backends.tensorboard_available() else None
    callbacks = [stop, checkpoint, keras.callbacks.CSVLogger(str(run.folder / "losses.csv"), append=True)]
    if preview_data:
        callbacks.append(Preview(_preview_photos(Path(preview_data), config.image_size), run.folder / "previews",
                                 config.preview_every, run.initial_step, log_dir))
    if log_dir is not None:
        callbacks.append(keras.callbacks.TensorBoard(str(log_dir), write_graph=False))
    time_limit = TimeLimit(parse_duration(config.time_limit)) if config.time_limit else None
    if time_limit is not None:
        callbacks.append(time_limit)
    if verbose:
        callbacks.append(Progress(config.steps, min(run.initial_step, config.steps)))
    return callbacks, checkpoint, stop, time_limit


def _export(config: TrainConfig, network: keras.Model, run: _Run, steps_done: int, seconds: float,
            dataset: PhotoBatches, data: str | os.PathLike, replicas: int, out_dir) -> styles.Style:
    """Writes the trained network and its metadata (credits, config, figures) into the registry."""
    figures = {
        "steps": steps_done,
        "training_seconds": round(seconds, 1),
        "final_losses": _final_losses(run.folder / "losses.csv"),
        "backend": keras.backend.backend(),
        "replicas": replicas,
        "data": str(Path(data).resolve()),
        "photos": len(dataset.files),
        "skipped_photos": len(dataset.skipped),
    }
    if steps_done < config.steps:
        figures["stopped_on_time"] = True
    if config.init_style is not None:
        # The steps the starting network had already been trained for (itself perhaps fine-tuned).
        start = config.init_style.figures
        figures["init_steps"] = int(start.get("steps", 0)) + int(start.get("init_steps", 0))
    meta = {
        "title": config.title, "artist": config.artist, "year": str(config.year), "license": config.license,
        "training": {k: v for k, v in config.to_dict().items() if k not in ("title", "artist", "year", "license")},
        "figures": figures,
    }
    options = {"upsampling": config.upsampling, "width": config.width}
    return styles.save_style(network, config.name, meta, out_dir, options)


def train_style(
    config: TrainConfig,
    data: str | os.PathLike,
    run_dir: str | os.PathLike | None = None,
    out_dir: str | os.PathLike | None = None,
    vgg_weights: str | None = None,
    preview_data: str | os.PathLike | None = None,
    verbose: bool = True,
    restart: bool = False,
    replace: bool = False,
):
    """Trains (or resumes training) a style and exports it into the registry.

    ``data`` is a folder of photos; checkpoints, logs and previews go into
    ``run_dir`` (default ``runs/NAME``); the finished style is written to
    ``out_dir`` (default: the user's style folder).  A style of a shipped style's name goes into the
    user's folder, in the shipped one's place, only with ``replace``.  Returns the Style (None
    on a non-chief worker of a multi-worker run, which exports nothing).
    """
    installs_in = Path(out_dir) if out_dir is not None else styles.user_dir()
    if styles.is_shipped(config.name) and installs_in.resolve() == styles.user_dir().resolve() and not replace:
        raise FstError(f"{config.name!r} is a shipped style: your network would take its place in "
                       f"{styles.user_dir()}; pass --replace for that, or --name another name, or --out FOLDER")
    run = _resume(config, run_dir, restart)
    keras.utils.set_random_seed(config.seed)
    dataset = PhotoBatches(data, config.image_size, config.batch_size, config.steps, config.seed,
                           start=run.initial_step, noise=config.stability_noise if config.stability_weight else 0.0,
                           shift=config.stability_shift if config.stability_weight else 0,
                           still=bool(config.stability_still_weight),
                           cache=config.cache_photos, workers=config.workers, use_multiprocessing=False,
                           max_queue_size=8)
    painting = load_painting(config.style_image, config.style_size)
    run.folder.mkdir(parents=True, exist_ok=True)

    strategy = backends.tf_strategy(config.distribute)
    jax_devices = backends.set_jax_distribution(config.distribute)
    replicas = strategy.num_replicas_in_sync if strategy is not None else 1
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        trainer = build_trainer(config, painting, vgg_weights, replicas)
        if run.initial_step:
            trainer.load_weights(run.checkpoint)
            log.info("resuming %s from step %d", config.name, run.initial_step)
        elif config.init_style is not None:
            trainer.network.load_weights(config.init_style.weights)
            log.info("starting %s from the network of %s", config.name, config.init)

    callbacks, checkpoint, stop, time_limit = _callbacks(config, run, preview_data, verbose)
    if run.epochs:
        # Batch order comes from the dataset (seeded by step), so Keras must not shuffle it.
        first = run.initial_step // run.steps_per_epoch
        trainer.fit(dataset, epochs=first + run.epochs, initial_epoch=first,
                    steps_per_epoch=run.steps_per_epoch, shuffle=False, callbacks=callbacks, verbose=0)
    if stop.bad_step is not None:
        kept = f"the last good checkpoint (step {checkpoint.last_good_step or run.initial_step})"
        raise FstError(f"loss became NaN or infinite at step {stop.bad_step}; stopped, keeping {kept} in "
                       f"{run.checkpoint}; try a lower learning_rate")
    if dataset.skipped:
        log.warning("%d unreadable training photos were skipped", len(dataset.skipped))
    if run.worker is not None:
        return None
    steps_done = max(config.steps, run.initial_step)
    if time_limit is not None and time_limit.stopped and checkpoint.last_good_step < config.steps:
        steps_done = checkpoint.last_good_step
        log.info("time limit %s reached: stopping %s at step %d of %d", config.time_limit, config.name,
                 steps_done, config.steps)
    return _export(config, trainer.network, run, steps_done, checkpoint.total_seconds(), dataset, data,
                   max(replicas, jax_devices), out_dir)
