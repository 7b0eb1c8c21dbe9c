"""Shared fixtures: the real data in ../shared and small styles with random weights."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FST_SHARED", REPO.parent / "shared"))
VAL_PHOTOS = SHARED / "data" / "photos" / "val"
#: The trained styles in the repository's weights/ folder.
SHIPPED = sorted(p.name.removesuffix(".weights.h5") for p in (REPO / "weights").glob("*.weights.h5"))

# Keep the tests away from the user's own style folder (removed when the session ends).
STYLES_DIR = tempfile.mkdtemp(prefix="fst-test-styles-")
os.environ["FST_STYLES_DIR"] = STYLES_DIR
# The VGG19 weights from ../shared unless given: the README's test command needs nothing else.
os.environ.setdefault("FST_VGG19_WEIGHTS", str(SHARED / "models" / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"))


def pytest_sessionfinish(session, exitstatus) -> None:
    shutil.rmtree(STYLES_DIR, ignore_errors=True)


def ctrl_c_default() -> None:
    """For a child process (``preexec_fn``): SIGINT at its default, as under a terminal. A job started with
    & by a shell without job control (nohup, CI wrappers) inherits SIGINT ignored, and Python then keeps
    ignoring Ctrl-C, so a test that sends it would see nothing happen."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def make_style(name: str, folder: Path, seed: int = 0, **network) -> Path:
    """Saves a transformation network with seeded random weights as a style; returns its weights path."""
    import keras

    from fst.network import build_network
    from fst.styles import save_style

    keras.utils.set_random_seed(seed)
    options = {"upsampling": "transpose", "width": 0.25, **network}
    model = build_network(**options)
    meta = {"title": "Test Pattern", "artist": "Nobody", "year": 2026, "license": "public domain"}
    return save_style(model, name, meta, folder, options).weights


@pytest.fixture(scope="session")
def tiny_style() -> Path:
    """A quarter-width style with random weights, registered in the test style folder."""
    return make_style("tiny", Path(os.environ["FST_STYLES_DIR"]))


@pytest.fixture(scope="session")
def val_photo() -> Path:
    path = VAL_PHOTOS / "000001.jpg"
    assert path.is_file(), f"missing {path}: tests need ../shared beside the checkout"
    return path


@pytest.fixture
def photo_array(val_photo) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(val_photo).convert("RGB"))
