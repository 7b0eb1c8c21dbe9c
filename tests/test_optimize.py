"""The Gatys pixel optimiser on small images with the real VGG19 weights."""

import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import SHARED, VAL_PHOTOS
from PIL import Image

from fst.errors import FstError
from fst.images import psnr
from fst.training.gatys import optimize

pytestmark = pytest.mark.slow  # Gatys optimisation through VGG19

VGG = str(SHARED / "models" / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5")
PAINTING = SHARED / "data" / "styles" / "starry_night.jpg"


@pytest.fixture(scope="module")
def photo():
    return np.asarray(Image.open(VAL_PHOTOS / "000002.jpg").resize((48, 48), Image.Resampling.LANCZOS))


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_objective_falls(photo, optimizer):
    history = []
    out = optimize(photo, PAINTING, max_size=48, iterations=15, optimizer=optimizer, history=history,
                   vgg_weights=VGG, progress=False)
    assert out.shape == photo.shape and out.dtype == np.uint8
    assert len(history) == 15 and history[-1]["total"] < 0.3 * history[0]["total"]


def test_content_reconstruction_from_noise_approaches_the_photo(photo):
    history = []
    noise = np.random.default_rng(0).uniform(0, 255, photo.shape)
    out = optimize(photo, PAINTING, max_size=48, iterations=40, content_layers=["relu2_2"], style_weight=0,
                   tv_weight=0, init="noise", history=history, vgg_weights=VGG, progress=False)
    assert psnr(out, photo) > psnr(noise, photo) + 3
    assert history[-1]["content"] < 0.05 * history[0]["content"]


def test_style_reconstruction_lowers_the_gram_distance(photo):
    history = []
    optimize(photo, PAINTING, max_size=48, iterations=30, content_weight=0, tv_weight=0, init="noise",
             style_layers=["relu1_1", "relu2_1", "relu3_1"], history=history, vgg_weights=VGG, progress=False)
    assert history[-1]["style"] < 0.05 * history[0]["style"]


def test_checkpoints_and_coarse_to_fine(photo, tmp_path):
    saved = []
    out = optimize(photo, PAINTING, max_size=48, coarse_size=24, iterations=6, checkpoint_every=2,
                   checkpoint=lambda i, image: saved.append((i, image.shape)), vgg_weights=VGG, progress=False)
    assert out.shape == photo.shape
    assert [i for i, _ in saved] == [2, 4, 6] and saved[0][1] == (24, 24, 3) and saved[-1][1] == (48, 48, 3)


def test_command_writes_checkpoints(tmp_path):
    small = tmp_path / "photo.png"
    Image.open(VAL_PHOTOS / "000002.jpg").resize((40, 32)).save(small)
    result = subprocess.run([sys.executable, "-m", "fst.cli", "optimize", small, PAINTING, tmp_path / "out.png",
                             "--max-size", "40", "--iterations", "4", "--checkpoint-every", "2", "--vgg-weights", VGG],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.glob("out*.png")) == ["out.png", "out_2.png", "out_4.png"]
    assert Image.open(tmp_path / "out.png").size == (40, 32)
    assert re.search(r"fst: 4 iterations in [\d.]+ s, loss \S+ -> \S+ \(content \S+, style \S+, tv \S+\)",
                     result.stderr), result.stderr[-500:]


@pytest.mark.parametrize("kwargs,reason", [
    ({"content": "missing.jpg"}, "no such file"),
    ({"content_weight": 0, "style_weight": 0, "tv_weight": 0}, "all loss weights are zero"),
    ({"style_layers": ["relu9_9"]}, "unknown VGG19 layer"),
])
def test_bad_input(photo, kwargs, reason):
    args = {"content": photo, "style": PAINTING, "max_size": 32, "iterations": 1, "vgg_weights": VGG,
            "progress": False, **kwargs}
    with pytest.raises(FstError, match=reason) as info:
        optimize(args.pop("content"), args.pop("style"), **args)
    assert "\n" not in str(info.value)


def test_corrupt_painting_is_one_line_exit_2(tmp_path, photo):
    bad = tmp_path / "painting.jpg"
    bad.write_bytes(PAINTING.read_bytes()[:1500])
    Image.fromarray(photo).save(tmp_path / "photo.png")
    result = subprocess.run([sys.executable, "-m", "fst.cli", "optimize", tmp_path / "photo.png", bad,
                             tmp_path / "out.png", "--vgg-weights", VGG], capture_output=True, text=True)
    assert result.returncode == 2 and "painting.jpg" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out.png").exists()


def test_fst_optimize_is_the_function():
    import fst
    import fst.training.gatys

    assert callable(fst.optimize) and fst.optimize is optimize is fst.training.gatys.optimize
