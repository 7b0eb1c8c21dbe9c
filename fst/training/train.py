"""Training a style: the transformation network against the VGG19 perceptual loss, with ``model.fit``.

One "epoch" here is ``checkpoint_every`` steps: at its end the training state
(network, optimizer, step) is checkpointed atomically, losses are logged, and
a preview grid is written.  Running the same command again resumes from the
last checkpoint and ends with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import os
import time
from pathlib import Path

import keras
import numpy as np
from keras import ops

from fst.training.config import TrainConfig, parse_duration
from fst.errors import FstError
from fst.files import atomic_path, write_atomic
from fst.images import load_painting

#: The loss terms logged to the CSV, TensorBoard, the progress bar and the style's metadata.
LOSS_TERMS = ("loss", "content", "style", "tv", "stability")

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.weights.h5"


class StyleTrainer(keras.Model):
    """The transformation network plus the frozen loss network; ``fit`` trains the former.

    ``compute_loss`` is overridden (not ``train_step``), so the same model
    trains under the TensorFlow, JAX and PyTorch backends.
    """

    def __init__(self, network: keras.Model, loss, replicas: int = 1, stability_weight: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.network, self.perceptual, self.replicas = network, loss, replicas
        self.stability_weight = stability_weight
        names = ("content", "style", "tv") + (("stability",) if stability_weight else ())
        self.trackers = {k: keras.metrics.Mean(name=k) for k in names}

    def build(self, input_shape):
        self.network.build(input_shape)

    def call(self, images, training=False):
        return self.network(images, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        terms = self.perceptual(y_pred, self.perceptual.content_targets(x))
        if self.stability_weight and y is not None:
            # Gupta et al. 2017: the output for a photo and for the same photo with a little
            # noise (y, made by the data pipeline) should match, so video frames do not flicker.
            noisy = self.network(y, training=training)
            difference = ops.cast(y_pred, "float32") - ops.cast(noisy, "float32")
            terms["stability"] = self.stability_weight * ops.mean(ops.square(difference))
            terms["total"] = terms["total"] + terms["stability"]
        for key, tracker in self.trackers.items():
            tracker.update_state(terms[key])
        # Under tf.distribute each replica's gradient is summed: scale the per-replica mean.
        return terms["total"] / self.replicas

    @property
    def metrics(self):
        return [*super().metrics, *self.trackers.values()]


def _strategy(config: TrainConfig):
    """The tf.distribute strategy for this run (TensorFlow backend), or None."""
    if keras.backend.backend() != "tensorflow" or config.distribute == "none":
        return None
    import tensorflow as tf

    if "TF_CONFIG" in os.environ and config.distribute in ("auto", "multiworker"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if config.distribute == "mirrored":
        devices = gpus or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return None


def _worker_folder() -> str | None:
    """Under TF_CONFIG, the sub-folder a non-chief worker keeps its own checkpoints in (None for the chief)."""
    tf_config = json.loads(os.environ.get("TF_CONFIG", "{}"))
    task = tf_config.get("task", {})
    if not task or task.get("type") == "chief":
        return None
    if task.get("type") == "worker" and task.get("index", 0) == 0 and "chief" not in tf_config.get("cluster", {}):
        return None
    return f"{task.get('type')}-{task.get('index', 0)}"


def _set_jax_distribution(config: TrainConfig) -> int:
    """Under JAX, shards each batch over all devices (DataParallel); returns the device count."""
    if keras.backend.backend() != "jax" or config.distribute == "none":
        return 1
    import jax

    if len(jax.devices()) > 1 or config.distribute == "mirrored":
        keras.distribution.set_distribution(keras.distribution.DataParallel())
    return len(jax.devices())


@contextlib.contextmanager
def _dtype_policy(name: str):
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


class Checkpoint(keras.callbacks.Callback):
    """Writes the whole training state atomically every epoch (= checkpoint_every steps),
    unless the epoch's loss is not finite."""

    def __init__(self, path: Path, fingerprint: str, steps_per_epoch: int, elapsed: float):
        super().__init__()
        self.path, self.fingerprint, self.steps_per_epoch = path, fingerprint, steps_per_epoch
        self.elapsed, self.started = elapsed, time.monotonic()
        self.last_good_step: int | None = None

    def on_epoch_end(self, epoch, logs=None):
        if not math.isfinite((logs or {}).get("loss", float("nan"))):
            return
        import h5py

        with atomic_path(self.path, suffix=".weights.h5") as tmp:
            self.model.save_weights(tmp)
            step = (epoch + 1) * self.steps_per_epoch
            with h5py.File(tmp, "a") as f:
                f.attrs["epoch"] = epoch + 1
                f.attrs["step"] = step
                f.attrs["fingerprint"] = self.fingerprint
                f.attrs["elapsed_seconds"] = self.total_seconds()
        self.last_good_step = step
        log.debug("checkpoint at step %d after %.0f s, loss %.4g", step, self.total_seconds(), logs["loss"])

    def total_seconds(self) -> float:
        return self.elapsed + time.monotonic() - self.started


class StopOnNaN(keras.callbacks.Callback):
    """Stops at the first non-finite loss and remembers the step."""

    def __init__(self, start_step: int):
        super().__init__()
        self.step, self.bad_step = start_step, None

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.bad_step = self.step
            self.model.stop_training = True


class TimeLimit(keras.callbacks.Callback):
    """Stops at the last checkpoint (epoch end) that fits in `seconds` of wall time.

    After each epoch it projects the next one from this epoch's steps after
    the first (which includes compilation) and stops if that would overrun.
    """

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds, self.stopped = seconds, False

    def on_train_begin(self, logs=None):
        self.deadline = time.monotonic() + self.seconds

    def on_epoch_begin(self, epoch, logs=None):
        self.batches, self.after_first = 0, None

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1
        if self.batches == 1:
            self.after_first = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        now = time.monotonic()
        per_step = (now - self.after_first) / (self.batches - 1) if self.batches > 1 else 0.0
        if now + per_step * self.batches > self.deadline:
            self.model.stop_training = self.stopped = True


class Progress(keras.callbacks.Callback):
    """One tqdm bar over all the run's steps, with the latest losses."""

    def __init__(self, total: int, initial: int):
        super().__init__()
        self.total, self.initial = total, initial

    def on_train_begin(self, logs=None):
        from tqdm import tqdm

        self.bar = tqdm(total=self.total, initial=self.initial, unit="step", desc="training", dynamic_ncols=True)

    def on_train_batch_end(self, batch, logs=None):
        self.bar.update(1)
        if logs and batch % 10 == 0:
            self.bar.set_postfix({k: f"{float(v):.4g}" for k, v in logs.items() if k in LOSS_TERMS})

    def on_train_end(self, logs=None):
        self.bar.close()


class Preview(keras.callbacks.Callback):
    """Writes a grid of fixed validation photos stylized by the current network (PNG, and TensorBoard)."""

    def __init__(self, photos: np.ndarray, folder: Path, every_epochs: int, steps_per_epoch: int, log_dir: Path | None):
        super().__init__()
        self.photos, self.folder, self.every = photos, folder, max(1, every_epochs)
        self.steps_per_epoch, self.log_dir = steps_per_epoch, log_dir

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        from fst.images import encode

        step = (epoch + 1) * self.steps_per_epoch
        out = np.asarray(ops.convert_to_numpy(self.model.network(self.photos, training=False)), np.float32)
        grid = np.concatenate([np.concatenate(list(self.photos), 1), np.concatenate(list(out), 1)], 0)
        grid = np.clip(np.round(grid), 0, 255).astype(np.uint8)
        write_atomic(encode(grid, "PNG"), self.folder / f"preview_{step:07d}.png")
        if self.log_dir is not None:
            import tensorflow as tf

            with tf.summary.create_file_writer(str(self.log_dir / "train")).as_default():
                tf.summary.image("preview", grid[None], step=step)


def _preview_photos(folder: Path, size: int, count: int = 4) -> np.ndarray:
    from fst.training.data import random_crop
    from fst.images import find_images, load_image

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


def _tensorboard_available() -> bool:
    try:
        import tensorboard  # noqa: F401
        import tensorflow  # noqa: F401
    except ImportError:
        return False
    return True


def _read_checkpoint(path: Path, fingerprint: str, steps_per_epoch: int) -> tuple[int, float]:
    """(steps done, seconds spent) of an existing checkpoint of this config; (0, 0) if none."""
    if not path.exists():
        return 0, 0.0
    import h5py

    with h5py.File(path, "r") as f:
        if f.attrs.get("fingerprint") != fingerprint:
            raise FstError(f"{path}: checkpoint of a different config; use --restart or another --run-dir")
        # Checkpoints written before the "step" attribute counted epochs of this run's length.
        step = int(f.attrs.get("step", int(f.attrs["epoch"]) * steps_per_epoch))
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
    from fst.training.losses import PerceptualLoss
    from fst.network import build_network

    with _dtype_policy(config.mixed_precision):
        network = build_network(config.upsampling, config.width)
        loss = PerceptualLoss(config.loss, vgg_weights)
        loss.set_style(painting)
        trainer = StyleTrainer(network, loss, replicas=replicas, stability_weight=config.stability_weight)
        learning_rate = config.learning_rate
        if config.lr_schedule == "cosine":
            learning_rate = keras.optimizers.schedules.CosineDecay(config.learning_rate, config.steps, alpha=0.1)
        # Under mixed_float16 compile wraps the optimizer in a LossScaleOptimizer (the trainer's policy).
        trainer.compile(optimizer=keras.optimizers.Adam(learning_rate), jit_compile=config.jit_compile)
        trainer.build((None, None, None, 3))
        trainer.optimizer.build(trainer.trainable_variables)
    return trainer


def train_style(
    config: TrainConfig,
    data: str | os.PathLike,
    run_dir: str | os.PathLike | None = None,
    out_dir: str | os.PathLike | None = None,
    vgg_weights: str | None = None,
    preview_data: str | os.PathLike | None = None,
    verbose: bool = True,
    restart: bool = False,
):
    """Trains (or resumes training) a style and exports it into the registry.

    ``data`` is a folder of photos; checkpoints, logs and previews go into
    ``run_dir`` (default ``runs/NAME``); the finished style is written to
    ``out_dir`` (default: the user's style folder).  Returns the Style (None
    on a non-chief worker of a multi-worker run, which exports nothing).
    """
    from fst.training.data import PhotoBatches
    from fst.styles import get_style, save_style

    run_dir = Path(run_dir or Path("runs") / config.name)
    worker = _worker_folder()
    if worker is not None:  # every worker checkpoints (identical state) but only the chief's is the run's
        run_dir = run_dir / worker
    checkpoint_path = run_dir / CHECKPOINT
    fingerprint = config.fingerprint()
    steps_per_epoch = min(config.checkpoint_every, config.steps)
    epochs = config.steps // steps_per_epoch

    if restart:
        checkpoint_path.unlink(missing_ok=True)
    initial_step, elapsed = _read_checkpoint(checkpoint_path, fingerprint, steps_per_epoch)
    if initial_step < config.steps and initial_step % steps_per_epoch:
        raise FstError(f"{checkpoint_path}: at step {initial_step}, which is not a multiple of checkpoint_every "
                       f"({steps_per_epoch}); resume with the checkpoint_every it was trained with")
    if initial_step > config.steps:
        log.warning("%s: the checkpoint is at step %d, past steps = %d; exporting it as it is",
                    checkpoint_path, initial_step, config.steps)
    initial_epoch = initial_step // steps_per_epoch
    start = get_style(config.init) if config.init else None

    keras.utils.set_random_seed(config.seed)
    dataset = PhotoBatches(data, config.image_size, config.batch_size, config.steps, config.seed,
                           start=initial_step, noise=config.stability_noise if config.stability_weight else 0.0,
                           cache=config.cache_photos, workers=config.workers, use_multiprocessing=False,
                           max_queue_size=8)
    painting = load_painting(config.style_image, config.style_size)
    run_dir.mkdir(parents=True, exist_ok=True)  # only once the photos and the painting are known good

    strategy = _strategy(config)
    jax_devices = _set_jax_distribution(config)
    replicas = strategy.num_replicas_in_sync if strategy is not None else 1
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        trainer = build_trainer(config, painting, vgg_weights, replicas)
        network = trainer.network
        if initial_step:
            trainer.load_weights(checkpoint_path)
            log.info("resuming %s from step %d", config.name, initial_step)
        elif start is not None:
            network.load_weights(start.weights)
            log.info("starting %s from the network of %s", config.name, config.init)

    checkpoint = Checkpoint(checkpoint_path, fingerprint, steps_per_epoch, elapsed)
    stop = StopOnNaN(initial_step)
    log_dir = run_dir / "logs" if _tensorboard_available() else None
    callbacks = [stop, checkpoint, keras.callbacks.CSVLogger(str(run_dir / "losses.csv"), append=True)]
    preview_folder = Path(preview_data) if preview_data else None
    if preview_folder is not None:
        callbacks.append(Preview(_preview_photos(preview_folder, config.image_size), run_dir / "previews",
                                 config.preview_every // steps_per_epoch, steps_per_epoch, log_dir))
    if log_dir is not None:
        callbacks.append(keras.callbacks.TensorBoard(str(log_dir), write_graph=False))
    time_limit = TimeLimit(parse_duration(config.time_limit)) if config.time_limit else None
    if time_limit is not None:
        callbacks.append(time_limit)
    if verbose:
        callbacks.append(Progress(config.steps, min(initial_step, config.steps)))

    if initial_epoch < epochs:
        # Batch order comes from the dataset (seeded by step), so Keras must not shuffle it.
        trainer.fit(dataset, epochs=epochs, initial_epoch=initial_epoch, steps_per_epoch=steps_per_epoch,
                    shuffle=False, callbacks=callbacks, verbose=0)
    if stop.bad_step is not None:
        kept = f"the last good checkpoint (step {checkpoint.last_good_step or initial_step})"
        raise FstError(f"loss became NaN or infinite at step {stop.bad_step}; stopped, keeping {kept} in {checkpoint_path}; "
                       "try a lower learning_rate")
    if dataset.skipped:
        log.warning("%d unreadable training photos were skipped", len(dataset.skipped))

    if worker is not None:
        return None
    steps_done = max(config.steps, initial_step)
    if time_limit is not None and time_limit.stopped and checkpoint.last_good_step < config.steps:
        steps_done = checkpoint.last_good_step
        log.info("time limit %s reached: stopping %s at step %d of %d", config.time_limit, config.name,
                 steps_done, config.steps)
    meta = {
        "title": config.title, "artist": config.artist, "year": str(config.year), "license": config.license,
        "training": {k: v for k, v in config.to_dict().items() if k not in ("title", "artist", "year", "license")},
        "figures": {
            "steps": steps_done,
            "training_seconds": round(checkpoint.total_seconds(), 1),
            "final_losses": _final_losses(run_dir / "losses.csv"),
            "backend": keras.backend.backend(),
            "replicas": max(replicas, jax_devices),
            "data": str(Path(data).resolve()),
            "photos": len(dataset.files),
            "skipped_photos": len(dataset.skipped),
        },
    }
    if steps_done < config.steps:
        meta["figures"]["stopped_on_time"] = True
    if start is not None:
        # The steps the starting network had already been trained for (itself perhaps fine-tuned).
        figures = start.meta.get("figures", {})
        meta["figures"]["init_steps"] = int(figures.get("steps", 0)) + int(figures.get("init_steps", 0))
    options = {"upsampling": config.upsampling, "width": config.width}
    return save_style(network, config.name, meta, out_dir, options)
