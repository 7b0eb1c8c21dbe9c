"""The styles shipped in weights/: credited, documented, and working as the README's first command uses them."""

import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, SHIPPED
from PIL import Image

from fst import styles
from fst.cli import main

PHOTO = REPO / "docs" / "gallery" / "astronaut.jpg"


def assert_stylized(photo_path, out_path) -> None:
    photo, result = (np.asarray(Image.open(p).convert("RGB"), dtype=float) for p in (photo_path, out_path))
    assert result.shape == photo.shape
    assert np.abs(result - photo).mean() > 10  # restyled, not passed through
    assert np.corrcoef(result.mean(axis=2).ravel(), photo.mean(axis=2).ravel())[0, 1] > 0.3  # the photo's layout kept


def test_the_trained_styles_are_shipped():
    assert {
        "starry_night", "great_wave", "the_scream", "udnie", "shipwreck_of_the_minotaur", "composition_vii",
    } <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_style_is_credited_and_documented(name, capsys):
    meta = styles.get_style(name).meta
    assert styles.get_style(name).weights.resolve() == (REPO / "weights" / f"{name}.weights.h5").resolve()
    assert meta["title"] and meta["artist"] and meta["year"] and meta["license"] == "public domain"
    assert meta["figures"]["steps"] > 0 and meta["figures"]["training_seconds"] > 0
    assert meta["figures"]["photos"] > 0 and "photos/train" in meta["figures"]["data"]  # the training set
    assert (REPO / "configs" / f"{name}.toml").is_file()
    assert f"`{name}`" in (REPO / "weights" / "README.md").read_text()
    assert f"![{name}]({name}.jpg)" in (REPO / "docs" / "gallery" / "README.md").read_text()
    assert main(["styles"]) == 0
    listing = capsys.readouterr().out
    assert any(line.startswith(name) and meta["artist"] in line for line in listing.splitlines())


@pytest.mark.slow  # every shipped network on a 512 px photo (the README's first command stays in the fast lane)
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_style_stylizes_the_sample_photo(name, tmp_path):
    assert main(["run", name, str(PHOTO), str(tmp_path / "out.jpg")]) == 0
    assert_stylized(PHOTO, tmp_path / "out.jpg")


def test_readme_first_command_as_written(tmp_path, monkeypatch):
    """The README's first command, run verbatim (after its `pip install .`) in a folder that has the repo's docs/."""
    first = re.search(r"```bash\n(.*?)\n```", (REPO / "README.md").read_text(), re.S).group(1)
    install, command = (part.strip() for part in first.split("&&"))
    assert install == "pip install ."
    words = shlex.split(command)
    assert words[:2] == ["fst", "run"]
    assert Path(words[4]).is_absolute() and not Path(words[4]).is_relative_to(REPO)  # nothing left in the checkout
    (tmp_path / "docs").symlink_to(REPO / "docs")
    monkeypatch.chdir(tmp_path)
    assert main(words[1:]) == 0
    assert_stylized(tmp_path / words[3], tmp_path / words[4])


def test_the_distribution_name_is_ours_everywhere():
    """On the package index `fst` is an unrelated project: every install line names fst-style."""
    import tomllib

    from fst.errors import DISTRIBUTION, install_hint

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["name"] == DISTRIBUTION != "fst" and project["scripts"] == {"fst": "fst.cli:main"}
    extras = [req.split("[")[0] for reqs in project["optional-dependencies"].values() for req in reqs if "[" in req]
    assert set(extras) <= {DISTRIBUTION, "jax"}
    readme = (REPO / "README.md").read_text()
    installs = re.findall(r'pip install "?([\w.-]+)\[', readme)
    assert installs and set(installs) <= {DISTRIBUTION, "."}, installs
    assert install_hint("serve") == 'pip install "fst-style[serve]"'
