"""scripts/objective_grid.py: Gatys candidates for one painting, cached, with their grid and table."""

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO, SHARED, VAL_PHOTOS
from PIL import Image

pytestmark = pytest.mark.slow  # Gatys optimisation through the script

VGG = str(SHARED / "models" / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5")


def run(tmp_path, *extra):
    command = [sys.executable, REPO / "scripts" / "objective_grid.py", "starry_night", "--photos", VAL_PHOTOS,
               "--photo-names", "000004.jpg", "000033.jpg", "--size", "48", "--iterations", "2", "--cell", "32",
               "--only", "default", "s768", "--cache", tmp_path / "cache", "--out", tmp_path / "out", "--grids", tmp_path / "out",
               "--vgg-weights", VGG, *extra]
    return subprocess.run(command, capture_output=True, text=True)


def figures(tmp_path):
    """Candidate -> (colour, strokes, retention) means from the table; None where nothing is cached."""
    rows = {}
    for line in (tmp_path / "out" / "starry_night.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 6 and cells[2].isdigit():
            rows[cells[0]] = None if cells[3] == "-" else tuple(float(c) for c in cells[3:])
    return rows


def test_candidates_cached_grid_and_table(tmp_path):
    first = run(tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    cache = tmp_path / "cache" / "starry_night"
    assert sorted(p.name for p in (cache / "default").glob("*.png")) == ["000004.png", "000033.png"]
    assert len(list((cache / "s768").glob("*.png"))) == 2 and not (cache / "shipped").exists()
    assert Image.open(cache / "default" / "000004.png").size == (48, 48)
    assert json.loads((cache / "s768" / "options.json").read_text()) == {"style_scale": 1.5}

    rows = figures(tmp_path)
    assert list(rows) == ["network", "default", "shipped", "s768", "s768_deep", "b3_s768"]
    assert rows["shipped"] is None and rows["b3_s768"] is None
    # Both Gatys candidates moved the photo towards the painting's strokes and kept part of the photo.
    for cid in ("default", "s768"):
        colour, strokes, retention = rows[cid]
        assert 0 < strokes <= 1 and 0 < retention <= 1 and colour <= 1, rows
    assert all(np.isfinite(rows["network"])) and max(rows["network"]) <= 1
    grid = np.asarray(Image.open(tmp_path / "out" / "starry_night.jpg"))
    assert grid.shape[1] == 7 * 32 and grid.shape[0] > 2 * 32

    # A cached result is read back, never recomputed: a second run sees a result only the cache holds.
    for cached in (cache / "default").glob("*.png"):
        Image.fromarray(255 - np.asarray(Image.open(cached))).save(cached)
    again = run(tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "starry_night default" not in again.stdout and "starry_night s768" not in again.stdout
    assert figures(tmp_path)["default"] != rows["default"] and figures(tmp_path)["s768"] == rows["s768"]
    table = (tmp_path / "out" / "starry_night.md").read_text()
    (tmp_path / "out" / "starry_night.md").unlink()
    rebuilt = run(tmp_path, "--grid-only")
    assert rebuilt.returncode == 0, rebuilt.stderr[-2000:]
    assert (tmp_path / "out" / "starry_night.md").read_text() == table

    # A candidate whose arguments changed under the same id is refused rather than mixed with old results.
    (cache / "s768" / "options.json").write_text(json.dumps({"style_scale": 2.0}))
    changed = run(tmp_path)
    assert changed.returncode != 0 and "cached with other options" in changed.stderr
