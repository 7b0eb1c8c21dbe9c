"""The training run's callbacks: checkpoints, NaN and time-limit stops, the progress bar, previews.

Each is a ``keras.callbacks.Callback`` that ``fst.training.train`` hands to ``model.fit``.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import h5py
import keras
import numpy as np
from keras import ops

from fst import images
from fst.files import atomic_path, write_atomic
from fst.training import backends

#: The loss terms logged to the CSV, TensorBoard, the progress bar and the style's metadata.
LOSS_TERMS = ("loss", "content", "style", "tv", "stability", "saturation")

log = logging.getLogger(__name__)


class StepCounter(keras.callbacks.Callback):
    """Counts the run's global steps (Keras' own counters restart with each epoch and each resume)."""

    def __init__(self, start_step: int):
        super().__init__()
        self.step = start_step

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1


class Checkpoint(StepCounter):
    """Writes the whole training state atomically at each epoch's end (every checkpoint_every steps, and
    wherever training stops early), unless the epoch's loss is not finite; stops training at `steps`."""

    def __init__(self, path: Path, fingerprint: str, start_step: int, steps: int, elapsed: float):
        super().__init__(start_step)
        self.path, self.fingerprint, self.steps = path, fingerprint, steps
        self.elapsed, self.started = elapsed, time.monotonic()
        self.last_good_step: int | None = None

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        if self.step >= self.steps:  # a resumed run's last epoch may be shorter than the others
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if not math.isfinite((logs or {}).get("loss", float("nan"))):
            return
        with atomic_path(self.path, suffix=".weights.h5") as tmp:
            self.model.save_weights(tmp)
            with h5py.File(tmp, "a") as f:
                f.attrs["step"] = self.step
                f.attrs["fingerprint"] = self.fingerprint
                f.attrs["elapsed_seconds"] = self.total_seconds()
        self.last_good_step = self.step
        log.debug("checkpoint at step %d after %.0f s, loss %.4g", self.step, self.total_seconds(), logs["loss"])

    def total_seconds(self) -> float:
        return self.elapsed + time.monotonic() - self.started


class StopOnNaN(StepCounter):
    """Stops at the first non-finite loss and remembers the step."""

    def __init__(self, start_step: int):
        super().__init__(start_step)
        self.bad_step = None

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.bad_step = self.step
            self.model.stop_training = True


class TimeLimit(keras.callbacks.Callback):
    """Stops after the last step that fits in `seconds` of wall time, checked after every step.

    The next step is projected from the mean of the steps after the first (which includes
    compilation); Keras then ends the epoch, so the checkpoint and the export follow at once.
    """

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds, self.stopped = seconds, False

    def on_train_begin(self, logs=None):
        self.deadline = time.monotonic() + self.seconds
        self.batches, self.after_first = 0, None

    def on_train_batch_end(self, batch, logs=None):
        now = time.monotonic()
        self.batches += 1
        if self.batches == 1:
            self.after_first = now
        per_step = (now - self.after_first) / (self.batches - 1) if self.batches > 1 else 0.0
        if now + per_step > self.deadline:
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


class Preview(StepCounter):
    """Every `every` steps, writes a grid of fixed validation photos stylized by the current network
    (PNG, and TensorBoard)."""

    def __init__(self, photos: np.ndarray, folder: Path, every: int, start_step: int, log_dir: Path | None):
        super().__init__(start_step)
        self.photos, self.folder, self.every, self.log_dir = photos, folder, max(1, every), log_dir

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        if self.step % self.every:
            return
        out = np.asarray(ops.convert_to_numpy(self.model.network(self.photos, training=False)), np.float32)
        grid = np.concatenate([np.concatenate(list(self.photos), 1), np.concatenate(list(out), 1)], 0)
        grid = images.to_uint8(grid)
        write_atomic(images.encode(grid, "PNG"), self.folder / f"preview_{self.step:07d}.png")
        if self.log_dir is not None:
            backends.write_image_summary(self.log_dir, "preview", grid, self.step)
