"""The GPU kit, rehearsed on this CPU: the cut VGG19 file, training without TensorFlow, and
scripts/device_bundle.py + scripts/device_train.py end to end from a copy of the tree."""

import json
import os
import shutil
import subprocess
import sys
import tarfile
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10, as in fst.training.config
    import tomli as tomllib

import numpy as np
import pytest
from conftest import REPO, SHARED, VAL_PHOTOS
from PIL import Image

pytestmark = pytest.mark.slow  # the GPU kit rehearsed end to end

VGG = SHARED / "models" / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
PAINTING = SHARED / "data" / "styles" / "starry_night.jpg"

#: Put on PYTHONPATH, this makes every import of tensorflow fail, as on the GPU machines.
BLOCKER = '''
import sys

class NoTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ImportError(f"No module named {name!r} (blocked by the test)")

sys.meta_path.insert(0, NoTensorFlow())
'''


@pytest.fixture(scope="module")
def no_tensorflow(tmp_path_factory):
    """An environment in which `import tensorflow` fails and Keras runs on JAX."""
    pytest.importorskip("jax")
    folder = tmp_path_factory.mktemp("blocker")
    (folder / "sitecustomize.py").write_text(BLOCKER)
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(folder)}
    blocked = subprocess.run([sys.executable, "-c", "import tensorflow"], capture_output=True, text=True, env=env)
    assert blocked.returncode != 0 and "blocked by the test" in blocked.stderr
    return env


def test_cut_vgg_file_gives_the_full_files_features(tmp_path):
    from fst.errors import FstError
    from fst.training.vgg import build_vgg, save_cut

    save_cut(VGG, tmp_path / "cut.h5", "block5_conv1")
    assert (tmp_path / "cut.h5").stat().st_size < 0.35 * VGG.stat().st_size
    photo = np.asarray(Image.open(VAL_PHOTOS / "000002.jpg").convert("RGB").resize((64, 64)), np.float32)[None]
    layers = ["block1_conv1", "block3_conv1", "block5_conv1"]
    full = build_vgg(layers, vgg_weights=str(VGG))(photo)
    cut = build_vgg(layers, vgg_weights=str(tmp_path / "cut.h5"))(photo)
    for a, b in zip(full, cut, strict=True):
        a, b = np.asarray(a), np.asarray(b)
        assert np.abs(a - b).max() <= 2e-3 * np.abs(a).max()  # float16 weights: about 3 significant digits

    save_cut(VGG, tmp_path / "short.h5", "relu3_1")
    with pytest.raises(FstError, match="end at block3_conv1; the losses need block5_conv1"):
        build_vgg(layers, vgg_weights=str(tmp_path / "short.h5"))


def test_training_under_jax_without_tensorflow(tmp_path, no_tensorflow):
    data = tmp_path / "photos"
    data.mkdir()
    for i in range(1, 5):
        shutil.copy(VAL_PHOTOS / f"{i:06d}.jpg", data)
    result = subprocess.run(
        [sys.executable, "-m", "fst.cli", "train-style", "--name", "t", "--style", str(PAINTING), "--data", str(data),
         "--run-dir", str(tmp_path / "run"), "--out", str(tmp_path / "out"), "--vgg-weights", str(VGG),
         "--steps", "2", "--checkpoint-every", "2", "--image-size", "64", "--batch-size", "2", "--width", "0.25",
         "--style-size", "128", "--workers", "1"],
        capture_output=True, text=True, env=no_tensorflow)
    assert result.returncode == 0, result.stderr
    meta = tomllib.loads((tmp_path / "out" / "t.toml").read_text())
    assert meta["figures"]["backend"] == "jax" and meta["figures"]["steps"] == 2
    assert (tmp_path / "out" / "t.weights.h5").is_file()


def test_device_kit_rehearsal(tmp_path, no_tensorflow):
    """The bundle and device_train.py, run as on the GPU machine: from a copy of what travels there
    (git's tracked and unignored files) plus the bundle, with HOME elsewhere and no VGG path set. The
    budget is far above what two steps need, so a busy machine cannot stop training early."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.splitlines()
    tree = tmp_path / "tree"
    for name in files:
        if (REPO / name).is_file():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(REPO / name, tree / name)

    bundle = tree / ".bundle"
    made = subprocess.run([sys.executable, "scripts/device_bundle.py", str(bundle), "--styles", "starry_night",
                           "--photos", "4", "--val-photos", "1", "--no-wheels", "--vgg-weights", str(VGG),
                           "--train-dir", str(SHARED / "data" / "photos" / "train"), "--val-dir", str(VAL_PHOTOS),
                           "--paintings", str(PAINTING.parent)],
                          cwd=tree, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    assert "4 training photos" in made.stdout and "MiB (cap 40)" in made.stdout
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["train_photos"]["count"] == 4 and manifest["vgg"]["deepest"] == "block5_conv1"

    env = {k: v for k, v in no_tensorflow.items() if k not in ("FST_VGG19_WEIGHTS", "KERAS_HOME", "FST_STYLES_DIR")}
    env.update(HOME=str(tmp_path / "home"), PYTHONUNBUFFERED="1")
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "scripts/device_train.py", ".bundle", "--out", str(out), "--budget", "900",
                          "--probe", "1", "--probe-batches", "2", "--probe-frame", "64x48", "--image-size", "64",
                          "--batch-size", "2", "--checkpoint-every", "2", "--max-steps", "2", "--eval-sizes", "64",
                          "--eval-photos", "1", "--gatys-iterations", "2", "--eval-seconds", "5"],
                         cwd=tree, capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "failed" not in run.stdout, run.stdout
    assert sorted(p.name for p in out.iterdir()) == ["contact.png", "evaluation.md", "log.txt", "losses.tar",
                                                     "probe.json", "styles.tar"], run.stdout
    with tarfile.open(out / "styles.tar") as tar:
        assert sorted(tar.getnames()) == ["starry_night.toml", "starry_night.weights.h5"]
        meta = tomllib.loads(tar.extractfile("starry_night.toml").read().decode())
    assert meta["figures"]["steps"] == 2 and meta["figures"]["backend"] == "jax", run.stdout
    assert meta["training"]["mixed_precision"] == "mixed_bfloat16" and meta["figures"]["init_steps"] > 0
    report = (out / "evaluation.md").read_text()
    assert "| starry_night (shipped) | 1 |" in report and "| starry_night (new) | 1 |" in report
    assert Image.open(out / "contact.png").size == (4 * 64, 64)  # photo, shipped, new, Gatys
    probe = json.loads((out / "probe.json").read_text())
    assert probe["training"][0]["images_per_s"] > 0 and probe["inference"][0]["frames_per_s"] > 0
