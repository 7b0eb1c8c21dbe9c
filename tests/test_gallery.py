"""scripts/gallery.py: every style renders the sample photo, and the index credits its painting."""

import subprocess
import sys

import pytest
from conftest import REPO, make_style
from PIL import Image

pytestmark = pytest.mark.slow  # every shipped style through the gallery script

PHOTO = REPO / "docs" / "gallery" / "astronaut.jpg"


def test_gallery_renders_each_style_with_its_credit(tmp_path):
    weights = make_style("pattern", tmp_path / "styles")
    result = subprocess.run([sys.executable, REPO / "scripts" / "gallery.py", "--styles", weights,
                             "--out", tmp_path / "gallery"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert Image.open(tmp_path / "gallery" / "pattern.jpg").size == Image.open(PHOTO).size
    index = (tmp_path / "gallery" / "README.md").read_text()
    assert "| `pattern` | *Test Pattern*, Nobody, 2026 (public domain) | ![pattern](pattern.jpg) |" in index
