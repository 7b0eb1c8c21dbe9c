"""The style registry: names, paths, options stored with the weights, caching, packaging."""

import os
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from conftest import REPO, SHIPPED, make_style

import fst
from fst import styles
from fst.errors import FstError


def test_list_and_resolve(tiny_style):
    assert "tiny" in fst.list_styles()
    by_name, by_path = styles.get_style("tiny"), styles.get_style(str(tiny_style))
    assert by_name.weights == by_path.weights and by_name.artist == "Nobody"
    assert styles.load_model("tiny") is styles.load_model(tiny_style)


def test_network_options_travel_with_the_weights(tmp_path):
    path = make_style("resized", tmp_path, seed=3, upsampling="resize", width=0.5)
    alone = tmp_path / "elsewhere"
    alone.mkdir()
    shutil.copy(path, alone / path.name)  # without its TOML
    style = styles.get_style(alone / path.name)
    assert style.network_options == {"upsampling": "resize", "width": 0.5}
    model = styles.load_model(style)
    assert model.get_layer("conv1").layers[1].kernel.shape == (9, 9, 3, 16)
    image = np.random.default_rng(0).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    np.testing.assert_array_equal(fst.stylize(image, style), fst.stylize(image, path))


def test_float16_copy_halves_the_file_and_keeps_the_output(tmp_path, photo_array):
    source = styles.get_style(make_style("half", tmp_path / "trained", seed=5, width=0.5))
    shipped = styles.copy_style(source, tmp_path / "shipped", float16=True)
    assert shipped.name == "half" and shipped.artist == "Nobody" and shipped.network_options == source.network_options
    assert shipped.weights.stat().st_size < 0.6 * source.weights.stat().st_size
    before, after = fst.stylize(photo_array, source), fst.stylize(photo_array, shipped)
    assert not np.array_equal(styles.load_model(source).get_weights()[0], styles.load_model(shipped).get_weights()[0])
    assert np.abs(before.astype(int) - after).max() <= 4


def test_unknown_style_suggests():
    with pytest.raises(FstError, match="did you mean"):
        styles.get_style("tinyy")
    with pytest.raises(FstError, match="no such style weights file"):
        styles.get_style("missing/thing.weights.h5")


@pytest.mark.slow  # builds a wheel
def test_wheel_ships_the_weights_folder(tmp_path):
    """A wheel built from the repo installs weights/ as fst/weights (not only an editable install)."""
    src = tmp_path / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(".venv", ".git", "build", "*.egg-info", "__pycache__", "runs"))
    make_style("packaged", src / "weights")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "dist"), str(src)], check=True)
    wheel = next((tmp_path / "dist").glob("fst_style-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "fst/weights/packaged.weights.h5" in names and "fst/weights/packaged.toml" in names
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    env = {**os.environ, "PYTHONPATH": str(target), "FST_STYLES_DIR": str(tmp_path / "none")}
    listed = subprocess.run([sys.executable, "-c", "import fst; print(fst.list_styles())"],
                            capture_output=True, text=True, env=env, cwd=tmp_path, check=True)
    assert all(f"fst/weights/{name}.weights.h5" in names for name in SHIPPED)
    assert all(f"fst/weights/{name}.jpg" in names for name in SHIPPED)  # the paintings' thumbnails
    assert {f"fst/serve/static/{f}" for f in ("index.html", "style.css", "app.js")} <= set(names)
    assert listed.stdout.strip() == str(sorted([*SHIPPED, "packaged"]))
