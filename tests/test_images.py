"""Image I/O: formats, modes, EXIF orientation, alpha, atomic and safe writes."""

import os

import numpy as np
import pytest
from PIL import Image

from fst import images
from fst.errors import FstError
from fst.files import write_atomic


def save_image(rgb, dst, alpha=None, quality=95, src=None, overwrite=False):
    """Writes an image the way `fst run` does: destination checked first, then an atomic write."""
    fmt = images.check_destination(dst, src, overwrite)
    write_atomic(images.encode(rgb, fmt, alpha, quality), dst)


@pytest.mark.parametrize("ext", [".jpg", ".png", ".webp", ".bmp", ".tif"])
def test_formats_roundtrip(tmp_path, photo_array, ext):
    path = tmp_path / f"photo{ext}"
    save_image(photo_array, path, quality=98)
    rgb, alpha = images.load_image(path)
    assert rgb.shape == photo_array.shape and rgb.dtype == np.uint8 and alpha is None
    assert np.abs(rgb.astype(int) - photo_array).mean() < 3


def test_exif_orientation_is_applied(tmp_path, photo_array):
    wide = photo_array[:100, :200]
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = tmp_path / "rotated.jpg"
    Image.fromarray(wide).save(path, exif=exif)
    rgb, _ = images.load_image(path)
    assert rgb.shape == (200, 100, 3)


@pytest.mark.parametrize("mode", ["L", "P", "CMYK", "I;16", "LA"])
def test_modes_become_rgb(tmp_path, photo_array, mode):
    source = Image.fromarray(photo_array[:64, :64])
    if mode == "I;16":
        grey = np.asarray(source.convert("L"), dtype=np.uint16) * 257
        img, ext = Image.fromarray(grey), ".png"
    else:
        img, ext = source.convert(mode), (".jpg" if mode == "CMYK" else ".png")
    path = tmp_path / f"image{ext}"
    img.save(path)
    rgb, alpha = images.load_image(path)
    assert rgb.shape == (64, 64, 3) and rgb.dtype == np.uint8
    assert (alpha is not None) == (mode == "LA")
    if mode == "I;16":
        np.testing.assert_array_equal(rgb[..., 0], np.asarray(source.convert("L")))


def test_alpha_is_kept_on_formats_that_carry_it(tmp_path, photo_array):
    alpha = np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (64, 1))
    save_image(photo_array[:64, :64], tmp_path / "a.png", alpha=alpha)
    save_image(photo_array[:64, :64], tmp_path / "a.jpg", alpha=alpha)
    _, png_alpha = images.load_image(tmp_path / "a.png")
    _, jpg_alpha = images.load_image(tmp_path / "a.jpg")
    np.testing.assert_array_equal(png_alpha, alpha)
    assert jpg_alpha is None


def write(path, data):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "make,reason",
    [
        (lambda d: d / "missing.jpg", "no such file"),
        (lambda d: d, "is a directory"),
        (lambda d: write(d / "empty.jpg", b""), "empty file"),
        (lambda d: write(d / "text.jpg", b"hello"), "not an image"),
    ],
)
def test_bad_input_messages(tmp_path, make, reason):
    path = make(tmp_path)
    with pytest.raises(FstError, match=reason) as info:
        images.load_image(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_truncated_image(tmp_path, val_photo):
    path = tmp_path / "cut.jpg"
    path.write_bytes(val_photo.read_bytes()[:3000])
    with pytest.raises(FstError, match="truncated"):
        images.load_image(path)


def test_failed_write_leaves_no_file(tmp_path, photo_array, monkeypatch):
    dst = tmp_path / "out" / "x.png"

    def explode(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", explode)
    with pytest.raises(FstError, match="No space left"):
        save_image(photo_array, dst)
    assert list(dst.parent.iterdir()) == []


def test_interrupted_write_leaves_no_file_and_keeps_old(tmp_path, photo_array, monkeypatch):
    dst = tmp_path / "x.png"
    dst.write_bytes(b"previous")

    def interrupt(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupt)
    with pytest.raises(KeyboardInterrupt):
        save_image(photo_array, dst)
    assert dst.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]


def test_output_permissions_follow_umask_or_the_replaced_file(tmp_path, photo_array):
    old = os.umask(0o022)
    try:
        save_image(photo_array, tmp_path / "new.png")
        replaced = tmp_path / "old.png"
        replaced.write_bytes(b"previous")
        replaced.chmod(0o640)
        save_image(photo_array, replaced)
    finally:
        os.umask(old)
    assert (tmp_path / "new.png").stat().st_mode & 0o777 == 0o644
    assert replaced.stat().st_mode & 0o777 == 0o640 and replaced.read_bytes() != b"previous"


def test_never_overwrites_source_unless_asked(tmp_path, photo_array):
    src = tmp_path / "photo.png"
    save_image(photo_array, src)
    before = src.read_bytes()
    with pytest.raises(FstError, match="--overwrite"):
        save_image(photo_array[::-1], src, src=src)
    assert src.read_bytes() == before
    save_image(photo_array[::-1], src, src=src, overwrite=True)
    assert src.read_bytes() != before


def test_unknown_extension_and_unwritable_destination(tmp_path, photo_array):
    with pytest.raises(FstError, match="no image writer"):
        save_image(photo_array, tmp_path / "x.xyz")
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    with pytest.raises(FstError, match="cannot write"):
        save_image(photo_array, blocker / "x.png")


def test_as_pixels_takes_paths_pil_images_and_arrays(tmp_path, photo_array):
    path = tmp_path / "photo.png"
    save_image(photo_array, path)
    for source in (path, str(path), Image.open(path), photo_array, photo_array.astype(np.float32) / 255,
                   photo_array.astype(np.int64)):
        rgb, alpha = images.as_pixels(source)
        assert rgb.dtype == np.uint8 and alpha is None
        np.testing.assert_array_equal(rgb, photo_array)
    rgb, alpha = images.as_pixels(np.dstack([photo_array, np.full(photo_array.shape[:2], 7, np.uint8)]))
    assert rgb.shape == photo_array.shape and (alpha == 7).all()
    grey, _ = images.as_pixels(np.full((5, 6), 1.0))
    assert grey.shape == (5, 6, 3) and (grey == 255).all()
    with pytest.raises(FstError, match=r"^photo: expected an HxWx3 image, got an array of shape \(4, 4, 2\)$"):
        images.as_pixels(np.zeros((4, 4, 2)), "photo")
