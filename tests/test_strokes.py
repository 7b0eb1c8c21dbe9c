"""The stroke scale's way back to full size: colours stop at the photo's edges, edges come back, faint
texture does not."""

import numpy as np
import pytest
from PIL import Image

from fst import images, strokes


def step_photo(height: int = 96, width: int = 128, noise: float = 0.0) -> np.ndarray:
    """Dark left half, bright right half (the edge off the small grid), with optional grain."""
    rgb = np.full((height, width, 3), 40.0)
    rgb[:, 61:] = 210.0
    rgb += np.random.default_rng(0).normal(0.0, noise, (height, width, 1))
    return images.to_uint8(rgb)


def test_guided_upsampling_keeps_colours_on_their_side_of_the_edge():
    photo = step_photo()
    small = np.asarray(Image.fromarray(photo).resize((32, 24), Image.Resampling.LANCZOS))
    painted = np.where(images.luma(small)[..., None] > 125, [0.0, 0.0, 255.0], [255.0, 0.0, 0.0])
    guided = strokes.upsample_guided(painted, images.luma(small), images.luma(photo))
    plain = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(painted[..., c], np.float32), "F")
                                 .resize((128, 96), Image.Resampling.BILINEAR)) for c in range(3)], -1)
    assert guided.shape == (96, 128, 3)
    # Red stays left of the photo's edge (column 61) and blue right of it, to within a pixel; plain
    # upsampling smears them over several.
    mixed = lambda out: int(np.sum((out[0, :, 0] > 25) & (out[0, :, 2] > 25)))
    assert mixed(guided) <= 1 < 3 <= mixed(plain)
    assert np.all(guided[:, :60, 0] > 230) and np.all(guided[:, 62:, 2] > 230)


@pytest.mark.parametrize("scale", [2.0, 4.0])
def test_faint_texture_is_left_to_the_painting(scale):
    photo = step_photo(noise=3.0)
    flat = lambda small: np.full(small.shape, 128.0, np.float32)
    out = strokes.at_stroke_scale(flat, photo, scale)
    assert out.shape == photo.shape
    # The photo's grain (3 grey levels) is not pasted over the painting, which here is flat.
    assert out[:, 10:40].std() < 1.0 and out[:, 90:120].std() < 1.0


@pytest.mark.parametrize("scale", [2.0, 4.0])
def test_edges_come_back_sharp_and_in_place(scale):
    photo = step_photo()
    as_painted = lambda small: small.astype(np.float32)
    out = strokes.at_stroke_scale(as_painted, photo, scale)
    row = out[:, :, 0].mean(axis=0)
    # The largest step is where the photo's is, and nearly all of it within four pixels.
    assert int(np.argmax(np.abs(np.diff(row)))) == 60
    assert row[62] - row[58] > 150


def test_away_from_edges_the_painting_is_upsampled_bicubic():
    """Where the photo is flat the correction vanishes: the painting's marks stay as crisp as bicubic."""
    painted = np.random.default_rng(1).uniform(0.0, 255.0, (37, 53, 3)).astype(np.float32)
    out = strokes.upsample_guided(painted, np.full((37, 53), 90.0, np.float32), np.full((150, 211), 90.0, np.float32))
    bicubic = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(painted[..., c]), "F")
                                   .resize((211, 150), Image.Resampling.BICUBIC)) for c in range(3)], -1)
    assert np.abs(out - bicubic).max() < 0.01
