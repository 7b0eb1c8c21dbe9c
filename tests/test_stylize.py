"""Stylizing arrays: any size, alignment, tiling, max size, strength, colour preservation."""

import io

import numpy as np
import pytest
from PIL import Image

import fst
from fst.images import preserve_colors


def periodic_image(h, w, period=16, seed=0):
    """An image that repeats every `period` pixels, so any large window has the same statistics."""
    cell = np.random.default_rng(seed).integers(0, 256, (period, period, 3), dtype=np.uint8)
    return np.tile(cell, (-(-h // period), -(-w // period), 1))[:h, :w]


@pytest.mark.parametrize("size", [(1, 1), (2, 3), (333, 517), (517, 333), (64, 64), (7, 130)])
def test_any_size_comes_back_at_input_size(tiny_style, size):
    image = np.random.default_rng(0).integers(0, 256, (*size, 3), dtype=np.uint8)
    out = fst.stylize(image, tiny_style)
    assert out.shape == image.shape and out.dtype == np.uint8


def test_output_is_aligned_with_input(tiny_style):
    """A window of a periodic image, padded internally to a multiple of 4, gives the same pixels
    as the whole image at the same coordinates (interior): no shift from the pad and crop."""
    whole = periodic_image(256, 256)
    out_whole = fst.stylize(whole, tiny_style).astype(float)
    # 250 rows/cols are padded by 1 before: the window at 5 then sits on the same 4-pixel grid as the whole.
    window = whole[5:255, 5:255]
    out_window = fst.stylize(window, tiny_style).astype(float)
    inner = np.s_[40:-40, 40:-40]
    error = lambda dy, dx: np.abs(out_window[inner] - out_whole[5 + dy : 255 + dy, 5 + dx : 255 + dx][inner]).mean()
    aligned = error(0, 0)
    for dy, dx in [(1, 0), (-1, 0), (0, 1), (0, -1)]:
        assert error(dy, dx) > 5 * aligned, (aligned, dy, dx, error(dy, dx))


def test_tiles_blend_to_the_untiled_result(tiny_style):
    """A runner without whole-image statistics (any runner but Keras') runs each tile on its own
    statistics: on an image whose statistics are the same in every window, tiling changes little
    (a random network amplifies the tile borders' reflection padding far more than a trained one)."""
    from fst.runners import open_runner

    runner = open_runner(tiny_style)
    image = periodic_image(300, 261)
    full = fst.stylize(image, tiny_style).astype(float)
    tiled = fst.stylize(image, lambda batch: runner(batch), tile_size=160).astype(float)
    assert tiled.shape == full.shape
    flipped = fst.stylize(image[::-1, ::-1].copy(), tiny_style)[::-1, ::-1].astype(float)
    assert np.abs(tiled - full).mean() < 0.2 * np.abs(flipped - full).mean()
    # No seam: the step between neighbouring columns is no larger at tile borders than elsewhere.
    steps = np.abs(np.diff(tiled, axis=1)).mean(axis=(0, 2))
    assert steps.max() < 1.5 * np.median(steps) + 10


def test_max_size_and_pil_roundtrip(tiny_style, val_photo):
    image = Image.open(val_photo).resize((300, 200))
    out = fst.stylize(image, tiny_style, max_size=150)
    assert isinstance(out, Image.Image) and out.size == (150, 100)


def test_strength_zero_returns_original(tiny_style, photo_array):
    out = fst.stylize(photo_array, tiny_style, strength=0.0)
    assert np.abs(out.astype(int) - photo_array).max() <= 1
    half = fst.stylize(photo_array, tiny_style, strength=0.5).astype(float)
    full = fst.stylize(photo_array, tiny_style).astype(float)
    assert np.abs(half - (full + photo_array) / 2).max() <= 1.0


def test_preserve_color_keeps_chrominance(tiny_style, photo_array):
    out = fst.stylize(photo_array, tiny_style, preserve_color=True).astype(float)
    to_ycc = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
    chroma_out, chroma_in = (out @ to_ycc.T)[..., 1:], (photo_array.astype(float) @ to_ycc.T)[..., 1:]
    unclipped = (out > 2).all(-1) & (out < 253).all(-1)
    assert np.abs(chroma_out - chroma_in)[unclipped].mean() < 1.0
    plain = fst.stylize(photo_array, tiny_style).astype(float)
    luma = lambda a: a @ to_ycc[0]
    assert np.abs(luma(out) - luma(plain))[unclipped].mean() < 1.0


def test_preserve_colors_of_identical_images_is_identity():
    image = np.random.default_rng(0).uniform(0, 255, (8, 8, 3))
    np.testing.assert_allclose(preserve_colors(image, image), image, atol=1e-3)


def test_rgba_array_keeps_alpha(tiny_style):
    rgba = np.random.default_rng(0).integers(0, 256, (20, 30, 4), dtype=np.uint8)
    out = fst.stylize(rgba, tiny_style)
    assert out.shape == (20, 30, 4)
    np.testing.assert_array_equal(out[..., 3], rgba[..., 3])


@pytest.mark.parametrize("scale", [2, 4, 2.5])
def test_stroke_scale_keeps_size_alignment_and_alpha(photo_array, scale):
    """A trained style at a stroke scale: same size, RGBA alpha passed through, edges where the photo
    has them (the output's luminance matches the photo's best unshifted), and strokes larger: the
    output's fine texture (its difference from a 3x3 blur of itself) is weaker than at scale 1."""
    photo = np.asarray(Image.fromarray(photo_array).resize((333, 517)))
    alpha = np.random.default_rng(0).integers(0, 256, (517, 333, 1), dtype=np.uint8)
    out = fst.stylize(np.dstack([photo, alpha]), "starry_night", stroke_scale=scale)
    assert out.shape == (517, 333, 4) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[..., 3:], alpha)

    luma = lambda rgb: rgb[..., :3].astype(float) @ [0.299, 0.587, 0.114]
    target, got = luma(photo)[8:-8, 8:-8], luma(out)
    def match(dy, dx):
        return np.corrcoef(target.ravel(), got[8 + dy : 509 + dy, 8 + dx : 325 + dx].ravel())[0, 1]
    assert all(match(0, 0) > match(dy, dx) for dy, dx in [(2, 0), (-2, 0), (0, 2), (0, -2)])

    def texture(rgb):
        y = luma(rgb)
        blurred = sum(np.roll(np.roll(y, dy, 0), dx, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1)) / 9
        return np.abs(y - blurred)[2:-2, 2:-2].mean()
    assert texture(out) < 0.8 * texture(fst.stylize(photo, "starry_night"))


@pytest.mark.parametrize("size", [(1031, 777), (517, 1201)])
def test_auto_stroke_scale_on_odd_sizes(photo_array, size):
    """The default stroke scale follows the photo: K is the shorter side over 512, so 1031x777 is
    stylized at K = 777/512 and 517x1201 at K = 517/512, with the size, the alpha and the edges kept."""
    from fst import inference, runners, tiling

    width, height = size
    runner = runners.open_runner("starry_night")  # resolved once, as for many images
    photo = np.asarray(Image.fromarray(photo_array).resize(size))
    alpha = np.random.default_rng(1).integers(0, 256, (height, width, 1), dtype=np.uint8)
    out = fst.stylize(np.dstack([photo, alpha]), runner)
    assert out.shape == (height, width, 4) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[..., 3:], alpha)
    np.testing.assert_array_equal(out[..., :3], fst.stylize(photo, runner, stroke_scale=min(size) / 512))

    luma = lambda rgb: rgb[..., :3].astype(float) @ [0.299, 0.587, 0.114]
    target, got = luma(photo)[8:-8, 8:-8], luma(out)
    def match(dy, dx):
        return np.corrcoef(target.ravel(), got[8 + dy: height - 8 + dy, 8 + dx: width - 8 + dx].ravel())[0, 1]
    assert all(match(0, 0) > match(dy, dx) for dy, dx in [(2, 0), (-2, 0), (0, 2), (0, -2)])

    assert inference.stroke_scale_for(height, width, "auto", runner) == pytest.approx(min(size) / 512)
    small = photo[:300, :400]
    plain = fst.stylize(small, runner, stroke_scale=1)  # --stroke-scale 1: the network on the whole photo
    np.testing.assert_array_equal(plain, inference.images.to_uint8(tiling.run_image(runner, small, 1536)))
    np.testing.assert_array_equal(fst.stylize(small, runner), plain)  # auto is 1 up to 512 px


@pytest.mark.parametrize("scale", [0.5, 0, 65])
def test_stroke_scale_out_of_range_is_an_error(tiny_style, scale):
    with pytest.raises(fst.FstError, match="stroke scale must be 'auto' or between 1 and 64"):
        fst.stylize(np.zeros((8, 8, 3), np.uint8), tiny_style, stroke_scale=scale)


def test_bytes_come_back_as_bytes_in_the_input_format(tiny_style, val_photo):
    data = val_photo.read_bytes()
    out = fst.stylize(data, tiny_style, max_size=100)
    assert isinstance(out, bytes) and out[:3] == b"\xff\xd8\xff"  # JPEG in, JPEG out
    png = fst.stylize(data, tiny_style, max_size=100, format="png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    decoded = np.asarray(Image.open(io.BytesIO(png)))
    assert max(decoded.shape[:2]) == 100
    np.testing.assert_array_equal(decoded, fst.stylize(val_photo, tiny_style, max_size=100))


def test_a_runner_stands_in_for_the_network(photo_array):
    """Anything that maps a padded float batch to pixels can replace the Keras model (fst.runners)."""
    shapes = []

    def invert(batch):
        shapes.append(batch.shape)
        return 255.0 - batch

    image = photo_array[:50, :70]
    np.testing.assert_array_equal(fst.stylize(image, invert), 255 - image)
    # 50x70 with the 16-pixel mirrored margin on each side, then up to a multiple of 4.
    assert shapes == [(1, 84, 104, 3)] and all(side % 4 == 0 for side in shapes[0][1:3])


def test_an_options_value_and_keywords_agree(tiny_style, photo_array):
    """Options made once and passed down give what the same keywords give; a keyword overrides them."""
    from fst.options import StylizeOptions

    options = StylizeOptions(strength=0.5, max_size=64)
    given = fst.stylize(photo_array, tiny_style, options=options)
    assert given.shape[:2] == (64, 64)
    np.testing.assert_array_equal(given, fst.stylize(photo_array, tiny_style, strength=0.5, max_size=64))
    np.testing.assert_array_equal(fst.stylize(photo_array, tiny_style, options=options, strength=1.0),
                                  fst.stylize(photo_array, tiny_style, max_size=64))
