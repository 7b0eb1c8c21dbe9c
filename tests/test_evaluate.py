"""scripts/evaluate_styles.py: the fast/Gatys quality harness, on a random-weight style."""

import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import REPO, SHARED, VAL_PHOTOS
from PIL import Image

from fst.network import build_network
from fst.styles import save_style

pytestmark = pytest.mark.slow  # Gatys optimisation through the script

VGG = str(SHARED / "models" / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5")


def test_harness_table_and_contact_sheet(tmp_path):
    keras.utils.set_random_seed(0)
    options = {"upsampling": "resize", "width": 0.25}
    # The recorded painting path is from another machine: the harness finds it by name in --paintings.
    training = {"style_image": "/elsewhere/starry_night.jpg", "style_size": 48, "content_weight": 1.0,
                "style_weight": 0.3, "tv_weight": 10.0, "content_layers": ["block2_conv2"],
                "style_layers": ["block1_conv1", "block2_conv1", "block3_conv1"], "style_layer_weights": [1, 1, 1]}
    weights = save_style(build_network(**options), "random", {"training": training}, tmp_path / "styles",
                         options).weights
    command = [sys.executable, REPO / "scripts" / "evaluate_styles.py", weights, "--photos", VAL_PHOTOS,
               "--paintings", SHARED / "data" / "styles", "--limit", "2", "--size", "40", "--iterations", "5",
               "--vgg-weights", VGG, "--cache", tmp_path / "cache"]
    result = subprocess.run([*command, "--out", tmp_path / "eval"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    cells = table_row(tmp_path / "eval")
    fast, gatys, ratio = float(cells[2]), float(cells[3]), float(cells[4])
    # An untrained network is far from what optimising each photo reaches.
    assert gatys < fast and abs(ratio - fast / gatys) < 0.01 and ratio > 1.5
    # Strength and retention: Gatys starts from the photo and keeps its content; random weights do not.
    colour, strokes, retention = ([float(x) for x in c.split("/")] for c in cells[9:12])
    assert all(np.isfinite(colour + strokes)) and max(colour + strokes) <= 1
    assert retention[1] > 0.5 > retention[0]
    sheet = np.asarray(Image.open(tmp_path / "eval" / "contact_random.png"))
    assert sheet.shape == (2 * 40, 3 * 40, 3)

    # Each Gatys result is kept with its time; a second evaluation reads them back instead of optimising.
    assert len(list((tmp_path / "cache").glob("*.png"))) == 2 and len(list((tmp_path / "cache").glob("*.json"))) == 2
    for cached in (tmp_path / "cache").glob("*.png"):
        Image.fromarray(255 - np.asarray(Image.open(cached))).save(cached)  # a result only the cache can give
    again = subprocess.run([*command, "--out", tmp_path / "again"], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-2000:]
    cells_again = table_row(tmp_path / "again")
    assert cells_again[2] == cells[2] and float(cells_again[3]) != gatys
    assert cells_again[8].split("/")[1] == cells[8].split("/")[1]  # the recorded Gatys time


def table_row(folder):
    row = next(line for line in (folder / "evaluation.md").read_text().splitlines() if line.startswith("| random |"))
    return [c.strip() for c in row.strip("|").split("|")]
