"""The style registry: named, documented, trained transformation networks.

A style is ``NAME.weights.h5`` (the network's weights, with its options in
the file's attributes) beside ``NAME.toml`` (the painting's credit and
licence, the training config and figures).  Styles are found in the package's
shipped ``weights/`` folder and in the user's style folder
(``$FST_STYLES_DIR``, by default ``~/.local/share/fst/styles``); a path to a
``.weights.h5`` file works wherever a name does.
"""

from __future__ import annotations

import difflib
import functools
import json
import logging
import os
import re
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fst.errors import FstError
from fst.files import atomic_path, write_atomic

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

log = logging.getLogger(__name__)

SUFFIX = ".weights.h5"
NETWORK_ATTR = "fst_network"
_HERE = Path(__file__).resolve().parent
#: A style name is a plain file name: it becomes NAME.weights.h5, NAME.toml and runs/NAME.
NAME_RULE = "letters, digits, '_' and '-', starting with a letter or digit, at most 64 characters"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def check_name(name: str) -> str:
    """The name, if it is a plain style name (``NAME_RULE``); else a one-line error, before any work."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise FstError(f"style name {name!r}: use {NAME_RULE}")
    return name


def shipped_dir() -> Path:
    """The styles installed with the package (``fst/weights`` in a wheel, ``weights/`` in a checkout)."""
    for candidate in (_HERE / "weights", _HERE.parent / "weights"):
        if candidate.is_dir():
            return candidate
    return _HERE / "weights"


def user_dir() -> Path:
    """The user's own styles: ``$FST_STYLES_DIR``, else ``$XDG_DATA_HOME/fst/styles``.

    A ``$FST_STYLES_DIR`` that names a file is a one-line error, not a folder silently ignored.
    """
    if os.environ.get("FST_STYLES_DIR"):
        folder = Path(os.environ["FST_STYLES_DIR"]).expanduser()
        if folder.exists() and not folder.is_dir():
            raise FstError(f"FST_STYLES_DIR={os.environ['FST_STYLES_DIR']}: is a file, not a folder of styles")
        return folder
    data_home = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data_home) / "fst" / "styles"


def is_shipped(name: str) -> bool:
    """Whether a style of this name ships with the package."""
    return (shipped_dir() / f"{name}{SUFFIX}").is_file()


@dataclass(frozen=True)
class Style:
    """A trained style: its weights file and its metadata."""

    name: str
    weights: Path
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def title(self) -> str:
        return self.meta.get("title", "")

    @property
    def artist(self) -> str:
        return self.meta.get("artist", "")

    @property
    def year(self) -> str:
        return str(self.meta.get("year", ""))

    @property
    def license(self) -> str:
        return self.meta.get("license", "")

    @property
    def training(self) -> dict[str, Any]:
        """How the network was trained: the config it was trained with (objective, recipe, painting);
        empty when the TOML records none."""
        return dict(self.meta.get("training", {}))

    @property
    def figures(self) -> dict[str, Any]:
        """What training measured: steps, photos, time, final losses (empty when not recorded)."""
        return dict(self.meta.get("figures", {}))

    @property
    def painting(self) -> Path | None:
        """The painting the network was trained on, as recorded (it may not be on this machine)."""
        recorded = self.training.get("style_image")
        return Path(recorded) if recorded else None

    @property
    def painting_size(self) -> int:
        """The size the painting had in the training objective (``style_size``, in pixels)."""
        return int(self.training.get("style_size", 512))

    @property
    def stroke_reference(self) -> int | None:
        """The shorter side at which the style's strokes look as made to (``fst.strokes``), if set."""
        return self.meta.get("stroke_reference")

    @property
    def shadows_shipped(self) -> bool:
        """A user style that takes the place of the shipped style of its name."""
        folder = self.weights.parent.resolve()
        return folder == user_dir().resolve() and folder != shipped_dir().resolve() and is_shipped(self.name)

    @property
    def thumbnail(self) -> Path | None:
        """A small JPEG of the painting beside the weights (``NAME.jpg``), if there is one."""
        path = self.weights.with_name(f"{self.name}.jpg")
        return path if path.is_file() else None

    @property
    def network_options(self) -> dict[str, Any]:
        """The options build_network needs, read from the weights file (falling back to the TOML)."""
        import h5py

        with h5py.File(self.weights, "r") as f:
            stored = f.attrs.get(NETWORK_ATTR)
        if stored is not None:
            return json.loads(stored)
        return dict(self.meta.get("network", {}))


def _read_meta(weights: Path) -> dict[str, Any]:
    toml_path = weights.with_name(weights.name[: -len(SUFFIX)] + ".toml")
    if not toml_path.is_file():
        return {}
    try:
        return tomllib.loads(toml_path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
        raise FstError(f"{toml_path}: invalid style metadata ({str(exc).splitlines()[0]})") from None


def _scan(folder: Path) -> dict[str, Path]:
    """The styles in a folder by name; a file whose name is not a plain style name is left out with a warning."""
    if not folder.is_dir():
        return {}
    found = {}
    for path in sorted(folder.glob("*" + SUFFIX)):
        name = path.name[: -len(SUFFIX)]
        if _NAME.fullmatch(name):
            found[name] = path
        else:
            log.warning("skipped %s: a style name uses %s", path, NAME_RULE)
    return found


def _style_paths() -> dict[str, Path]:
    """Every style's weights file by name; a user style of a shipped style's name takes precedence."""
    return {**_scan(shipped_dir()), **_scan(user_dir())}


def find_styles() -> list[Style]:
    """All known styles, by name.  A style whose metadata cannot be read is left out with one warning
    line, so that one broken file in the style folder does not stop the others."""
    found = []
    for name, path in sorted(_style_paths().items()):
        try:
            found.append(Style(name, path, _read_meta(path)))
        except FstError as exc:
            log.warning("skipped style %r: %s", name, exc)
    return found


def list_styles() -> list[str]:
    """The names of the shipped and user styles."""
    return [style.name for style in find_styles()]


def get_style(style: str | os.PathLike | Style) -> Style:
    """Resolves a style name or a path to a ``.weights.h5`` file."""
    if isinstance(style, Style):
        return style
    text = os.fspath(style)
    if text.endswith(SUFFIX) or os.sep in text:
        path = Path(text).expanduser()
        if not path.is_file():
            raise FstError(f"{text}: no such style weights file")
        return Style(path.name[: -len(SUFFIX)], path, _read_meta(path))
    if Path(text).suffix:  # a style name has no dot: this is a file fst cannot run
        raise FstError(f"{text}: not a style fst can run; give a style name (see `fst styles`), a {SUFFIX} "
                       f"file, or an exported .onnx or .xml")
    known = _style_paths()
    if text in known:
        return Style(text, known[text], _read_meta(known[text]))
    close = difflib.get_close_matches(text, known, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else (
        f"; known styles: {', '.join(known)}" if known else "; no styles are installed (see `fst train-style`)"
    )
    raise FstError(f"unknown style {text!r}{hint}")


def load_model(style: str | os.PathLike | Style):
    """The style's transformation network with its weights, cached per process."""
    resolved = get_style(style)
    stat = resolved.weights.stat()
    return _load_model(str(resolved.weights.resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _load_model(path: str, mtime_ns: int, size: int):
    from fst.quiet import load_keras

    load_keras()
    from fst.network import build_network

    style = Style(Path(path).name[: -len(SUFFIX)], Path(path))
    try:
        with warnings.catch_warnings():  # Keras warns once per layer it cannot match before it raises
            warnings.simplefilter("ignore")
            model = build_network(**style.network_options)
            model.load_weights(path)
    except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FstError(f"{path}: not the weights of an fst style network ({reason})") from None
    return model


def save_style(model, name: str, meta: dict[str, Any], folder: Path | str | None = None,
               network_options: dict[str, Any] | None = None) -> Style:
    """Writes ``NAME.weights.h5`` and ``NAME.toml`` into folder (the user folder by default), atomically."""
    import h5py
    import tomli_w

    check_name(name)
    folder = Path(folder) if folder is not None else user_dir()
    folder.mkdir(parents=True, exist_ok=True)
    options = dict(network_options or meta.get("network", {}))
    meta = {**meta, "name": name, "network": options}
    weights = folder / f"{name}{SUFFIX}"

    with atomic_path(weights, suffix=SUFFIX) as tmp:
        model.save_weights(tmp, overwrite=True)
        with h5py.File(tmp, "a") as f:
            f.attrs[NETWORK_ATTR] = json.dumps(options)
    write_atomic(tomli_w.dumps(meta).encode("utf-8"), weights.with_name(f"{name}.toml"))
    return Style(name, weights, meta)


def copy_style(style: str | os.PathLike | Style, folder: Path | str, float16: bool = False) -> Style:
    """Copies a style's weights and metadata into folder; ``float16`` halves the file by storing
    the float32 weights at half precision (they are cast back to float32 when loaded)."""
    import h5py
    import numpy as np

    source = get_style(style)
    weights = Path(folder) / f"{check_name(source.name)}{SUFFIX}"

    def copy_group(src, dst) -> None:
        dst.attrs.update(src.attrs)
        for key, item in src.items():
            if isinstance(item, h5py.Group):
                copy_group(item, dst.create_group(key))
            else:
                data = item[()]
                if float16 and data.dtype == np.float32:
                    data = data.astype(np.float16)
                dst.create_dataset(key, data=data)

    with atomic_path(weights, suffix=SUFFIX) as tmp:
        with h5py.File(source.weights, "r") as src, h5py.File(tmp, "w") as dst:
            copy_group(src, dst)
    metadata = source.weights.with_name(f"{source.name}.toml")
    if metadata.is_file():
        write_atomic(metadata.read_bytes(), weights.with_name(metadata.name))
    return get_style(weights)
