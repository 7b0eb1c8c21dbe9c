"""Everything that depends on which Keras backend runs: distribution, gradients for the pixel
optimiser, TensorBoard. The network, the losses, the data and the training step stay
backend-neutral (``keras.ops``); this module is where TensorFlow, JAX and PyTorch differ."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

from fst.errors import FstError


def tf_strategy(distribute: str):
    """The tf.distribute strategy for a run (TensorFlow backend), or None.

    ``distribute``: "auto" (every local GPU, or the TF_CONFIG cluster), "mirrored" (local devices, even
    one), "multiworker" (TF_CONFIG) or "none".
    """
    if keras.backend.backend() != "tensorflow" or distribute == "none":
        return None
    import tensorflow as tf

    if "TF_CONFIG" in os.environ and distribute in ("auto", "multiworker"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if distribute == "mirrored":
        devices = gpus or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return None


def worker_folder() -> str | None:
    """Under TF_CONFIG, the sub-folder a non-chief worker keeps its own checkpoints in (None for the chief)."""
    tf_config = json.loads(os.environ.get("TF_CONFIG", "{}"))
    task = tf_config.get("task", {})
    if not task or task.get("type") == "chief":
        return None
    if task.get("type") == "worker" and task.get("index", 0) == 0 and "chief" not in tf_config.get("cluster", {}):
        return None
    return f"{task.get('type')}-{task.get('index', 0)}"


def set_jax_distribution(distribute: str) -> int:
    """Under JAX, shards each batch over all devices (DataParallel); returns the device count (1 elsewhere)."""
    if keras.backend.backend() != "jax" or distribute == "none":
        return 1
    import jax

    if len(jax.devices()) > 1 or distribute == "mirrored":
        keras.distribution.set_distribution(keras.distribution.DataParallel())
    return len(jax.devices())


def tensorboard_available() -> bool:
    """Whether TensorBoard logs can be written (they need TensorFlow, whatever the backend)."""
    try:
        import tensorboard  # noqa: F401
        import tensorflow  # noqa: F401
    except ImportError:
        return False
    return True


def write_image_summary(log_dir: Path, name: str, image: np.ndarray, step: int) -> None:
    """Adds a uint8 HxWx3 image to the TensorBoard log at log_dir/train."""
    import tensorflow as tf

    with tf.summary.create_file_writer(str(log_dir / "train")).as_default():
        tf.summary.image(name, image[None], step=step)


def value_and_grad(objective: Callable) -> Callable[[np.ndarray], tuple[float, np.ndarray, dict]]:
    """Wraps objective(images) -> {"total": ..., ...} into a compiled numpy function
    x -> (total, d total / d x, terms) for the active Keras backend."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function(reduce_retracing=True)
        def step(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                terms = objective(x)
            return terms, tape.gradient(terms["total"], x)

        def run(x):
            terms, grad = step(tf.constant(x))
            return float(terms["total"]), grad.numpy(), {k: float(v) for k, v in terms.items()}

    elif backend == "jax":
        import jax

        def total(x):
            terms = objective(x)
            return terms["total"], terms

        step = jax.jit(jax.value_and_grad(total, has_aux=True))

        def run(x):
            (value, terms), grad = step(x)
            return float(value), np.asarray(grad), {k: float(v) for k, v in terms.items()}

    elif backend == "torch":
        import torch

        def run(x):
            tensor = torch.tensor(x, requires_grad=True, device=keras.backend.get_device() or "cpu")
            terms = objective(tensor)
            terms["total"].backward()
            return float(terms["total"]), tensor.grad.cpu().numpy(), {k: float(v) for k, v in terms.items()}

    else:
        raise FstError(f"the optimiser does not support the {backend} backend")
    return run
