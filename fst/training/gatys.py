"""Gatys et al. (2015): optimise an image's pixels so its VGG19 features match a photo's
content and a painting's Gram matrices.  Slow, needs no training, works for any painting,
and is the quality reference for the fast networks.  Uses the losses of ``fst.training.losses``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import keras
import numpy as np
from PIL import Image
from tqdm import tqdm

from fst import images
from fst.errors import FstError
from fst.images import as_pixels, resize_long_side
from fst.training.backends import value_and_grad
from fst.training.losses import PerceptualLoss
from fst.training.objective import MIN_SIDE, LossConfig


def _initial_image(init: str, content: np.ndarray, style: np.ndarray, seed: int) -> np.ndarray:
    if init == "content":
        return content.astype(np.float32)
    if init == "style":
        h, w = content.shape[:2]
        return np.asarray(Image.fromarray(style).resize((w, h), Image.Resampling.BICUBIC), np.float32)
    if init == "noise":
        return np.random.default_rng(seed).uniform(0, 255, content.shape).astype(np.float32)
    raise FstError(f"init must be content, style or noise, not {init!r}")


def _run_lbfgs(fn, x0: np.ndarray, iterations: int, on_iteration) -> np.ndarray:
    from scipy.optimize import fmin_l_bfgs_b

    shape = x0.shape

    def f(flat):
        value, grad, terms = fn(flat.reshape(shape).astype(np.float32))
        f.terms = terms
        return value, grad.astype(np.float64).ravel()

    def callback(flat):
        on_iteration(flat.reshape(shape).astype(np.float32), f.terms)

    bounds = [(0.0, 255.0)] * x0.size
    result, _, _ = fmin_l_bfgs_b(f, x0.astype(np.float64).ravel(), bounds=bounds, maxiter=iterations,
                                 maxfun=iterations * 2, callback=callback, factr=0.0, pgtol=0.0)
    return result.reshape(shape).astype(np.float32)


def _run_adam(fn, x0: np.ndarray, iterations: int, learning_rate: float, on_iteration) -> np.ndarray:
    image = keras.Variable(x0, dtype="float32")
    optimizer = keras.optimizers.Adam(learning_rate)
    optimizer.build([image])
    for _ in range(iterations):
        _, grad, terms = fn(np.asarray(keras.ops.convert_to_numpy(image)))
        optimizer.apply_gradients([(keras.ops.convert_to_tensor(grad), image)])
        image.assign(keras.ops.clip(image, 0.0, 255.0))
        on_iteration(np.asarray(keras.ops.convert_to_numpy(image)), terms)
    return np.asarray(keras.ops.convert_to_numpy(image))


def optimize(
    content,
    style,
    *,
    loss: LossConfig | None = None,
    max_size: int = 512,
    style_scale: float = 1.0,
    optimizer: str = "lbfgs",
    iterations: int = 300,
    learning_rate: float = 5.0,
    init: str = "content",
    seed: int = 0,
    coarse_size: int | None = None,
    preserve_color: bool = False,
    checkpoint_every: int | None = None,
    checkpoint: Callable[[int, np.ndarray], None] | None = None,
    vgg_weights: str | None = None,
    progress: bool = True,
    history: list | None = None,
    **loss_options,
) -> np.ndarray:
    """Stylizes `content` with `style` by optimising the pixels; returns uint8 RGB.

    The objective is ``loss`` (``fst.training.objective.LossConfig``: Gatys et al.'s by default), or
    LossConfig's fields given as keywords (``style_weight=200``, ``content_layers=["relu4_2"]``).
    The output's longer side is ``max_size`` (never larger than the photo);
    the painting is resized so its longer side is ``style_scale`` times the
    output's.  ``optimizer`` is "lbfgs" (scipy's L-BFGS-B, pixels bounded to
    0..255) or "adam" (``learning_rate`` in pixel units).  ``init`` starts from
    the "content", the "style" or seeded "noise".  ``coarse_size`` first
    optimises at that size for half the iterations and continues at full size.
    ``checkpoint(iteration, image)`` is called every ``checkpoint_every``
    iterations; ``history`` collects each iteration's loss terms.
    """
    unknown = sorted(set(loss_options) - {f.name for f in dataclasses.fields(LossConfig)})
    if unknown:
        raise FstError(f"unknown optimize options: {', '.join(unknown)}")
    loss = dataclasses.replace(loss, **loss_options) if loss else LossConfig(**loss_options)
    if loss.content_weight == 0 and loss.style_weight == 0 and loss.tv_weight == 0:
        raise FstError("all loss weights are zero: nothing to optimise")
    if optimizer not in ("lbfgs", "adam"):
        raise FstError(f"optimizer must be lbfgs or adam, not {optimizer!r}")
    if iterations < 1:
        raise FstError(f"iterations must be at least 1, not {iterations}")
    for key, value in (("max_size", max_size), ("coarse_size", coarse_size or MIN_SIDE)):
        if value < MIN_SIDE:
            raise FstError(f"{key} must be at least {MIN_SIDE} pixels, not {value}")
    if not 0 < style_scale < math.inf:
        raise FstError(f"style_scale must be a positive number, not {style_scale}")
    photo = as_pixels(content, "content")[0]
    painting = as_pixels(style, "style")[0]
    size = min(max_size, max(photo.shape[:2]))
    if min(photo.shape[:2]) * size / max(photo.shape[:2]) < MIN_SIDE:
        raise FstError(f"content: {photo.shape[1]}x{photo.shape[0]} at a longer side of {size} has a shorter side "
                       f"under {MIN_SIDE} pixels, too small for VGG19; give a larger max_size or photo")
    loss = PerceptualLoss(loss, vgg_weights)

    stages = [(coarse_size, iterations // 2), (size, iterations - iterations // 2)] if (
        coarse_size and coarse_size < size and iterations > 1) else [(size, iterations)]
    image, done = None, 0
    bar = tqdm(total=iterations, desc="optimizing", unit="it", disable=not progress, dynamic_ncols=True)
    for stage_size, stage_iterations in stages:
        target = resize_long_side(photo, stage_size)
        loss.set_style(resize_long_side(painting, max(1, round(style_scale * stage_size))))
        content_targets = loss.content_targets(target[None].astype(np.float32))
        fn = value_and_grad(lambda x: loss(x[None], content_targets))
        if image is None:
            x0 = _initial_image(init, target, painting, seed)
        else:
            x0 = np.asarray(Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).resize(
                (target.shape[1], target.shape[0]), Image.Resampling.BICUBIC), np.float32)

        def on_iteration(x, terms):
            nonlocal done
            done += 1
            if history is not None:
                history.append(terms)
            bar.update(1)
            bar.set_postfix(loss=f"{terms['total']:.4g}")
            if checkpoint is not None and checkpoint_every and done % checkpoint_every == 0:
                checkpoint(done, images.to_uint8(x))

        x0 = x0.astype(np.float32)
        if optimizer == "lbfgs":
            image = _run_lbfgs(fn, x0, stage_iterations, on_iteration)
        else:
            image = _run_adam(fn, x0, stage_iterations, learning_rate, on_iteration)
    bar.close()
    if preserve_color:
        image = images.preserve_colors(image, resize_long_side(photo, size))
    return images.to_uint8(image)
