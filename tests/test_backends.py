"""The same weights give the same pixels under the JAX backend as under TensorFlow."""

import os
import subprocess
import sys

import numpy as np
import pytest

import fst

pytestmark = pytest.mark.slow  # a second Keras backend in a child process

SCRIPT = """
import sys, numpy as np, keras, fst
assert keras.backend.backend() == sys.argv[1]
image = np.load(sys.argv[2])
np.save(sys.argv[3], fst.stylize(image, sys.argv[4]))
"""


@pytest.mark.parametrize("backend", ["jax"])
def test_same_output_under_other_backend(tiny_style, photo_array, tmp_path, backend):
    pytest.importorskip(backend)
    image = photo_array[:101, :77]
    np.save(tmp_path / "in.npy", image)
    env = {**os.environ, "KERAS_BACKEND": backend}
    subprocess.run([sys.executable, "-c", SCRIPT, backend, tmp_path / "in.npy", tmp_path / "out.npy", tiny_style],
                   check=True, env=env)
    other = np.load(tmp_path / "out.npy").astype(int)
    here = fst.stylize(image, tiny_style).astype(int)
    assert np.abs(other - here).max() <= 2 and np.abs(other - here).mean() < 0.05
