"""Training photos: any folder of images, searched recursively, as seeded batches of random crops."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import keras
import numpy as np
from PIL import Image

from fst.errors import FstError
from fst.images import find_images, load_image

log = logging.getLogger(__name__)


def random_crop(rgb: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Resizes the shorter side to `size` and takes a random size x size crop."""
    h, w = rgb.shape[:2]
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    if (nh, nw) != (h, w):
        rgb = np.asarray(Image.fromarray(rgb).resize((nw, nh), Image.Resampling.BILINEAR))
    y, x = rng.integers(0, nh - size + 1), rng.integers(0, nw - size + 1)
    return rgb[y : y + size, x : x + size]


class PhotoBatches(keras.utils.PyDataset):
    """Batches of random square crops (float32 RGB 0..255) from a folder of photos.

    Batch ``i`` is a pure function of (seed, start + i): the data order does
    not depend on workers or on where a resumed run starts, so a run killed
    and resumed sees exactly the batches an uninterrupted one would.  Files
    are reshuffled every pass over the folder.  Unreadable files are skipped
    (another photo takes their place) and counted in ``skipped``.  With
    ``noise`` > 0 each batch comes as (photos, photos + Gaussian noise of that
    standard deviation), for the stability term; with ``shift`` > 0 as well the noisy copy is moved up
    and left by (dy, dx), each 0 to ``shift`` pixels and the same for the whole batch (its bottom and
    right edges mirrored back to size), and comes as (noisy, offsets) with (dy, dx) on every row of
    ``offsets``; with ``still`` too, as (noisy moved, offsets, noisy unmoved).  With ``cache`` the
    decoded photos stay in memory after their first read.
    """

    def __init__(self, folder: str | Path, image_size: int, batch_size: int, steps: int,
                 seed: int = 0, start: int = 0, noise: float = 0.0, shift: int = 0, still: bool = False,
                 cache: bool = False, **kwargs):
        super().__init__(**kwargs)
        folder = Path(folder)
        if not folder.is_dir():
            raise FstError(f"{folder}: no such folder of training photos")
        self.files = find_images(folder)
        if not self.files:
            raise FstError(f"{folder}: no images found for training")
        self.image_size, self.batch_size, self.seed = image_size, batch_size, seed
        self.steps, self.start, self.noise, self.shift, self.still = steps, start, noise, shift, still
        self.skipped: set[Path] = set()
        self._lock = threading.Lock()
        self._orders: dict[int, np.ndarray] = {}
        self._cache: dict[Path, np.ndarray] | None = {} if cache else None

    def __len__(self) -> int:
        return self.steps - self.start

    def _order(self, epoch: int) -> np.ndarray:
        """The shuffled file order of one pass over the folder (computed once per pass)."""
        if epoch not in self._orders:
            self._orders[epoch] = np.random.default_rng([self.seed, epoch]).permutation(len(self.files))
        return self._orders[epoch]

    def _read(self, path: Path) -> np.ndarray:
        if self._cache is None:
            return load_image(path)[0]
        if path not in self._cache:
            self._cache[path] = load_image(path)[0]
        return self._cache[path]

    def __getitem__(self, index: int) -> np.ndarray:
        step = self.start + index
        rng = np.random.default_rng([self.seed, 1_000_003, step])
        batch = []
        position = step * self.batch_size
        while len(batch) < self.batch_size:
            epoch, slot = divmod(position, len(self.files))
            path = self.files[self._order(epoch)[slot]]
            position += 1
            if path in self.skipped:
                continue
            try:
                rgb = self._read(path)
            except FstError as exc:
                with self._lock:
                    if path not in self.skipped:
                        self.skipped.add(path)
                        log.warning("skipping unreadable training photo %s", exc)
                    if len(self.skipped) == len(self.files):
                        raise FstError(f"{path.parent}: none of the training photos could be read") from None
                continue
            batch.append(random_crop(rgb, self.image_size, rng))
        photos = np.stack(batch).astype(np.float32)
        if not self.noise:
            return photos
        noisy = np.clip(photos + rng.normal(0.0, self.noise, photos.shape), 0, 255).astype(np.float32)
        if not self.shift:
            return photos, noisy
        dy, dx = rng.integers(0, self.shift + 1, 2)
        moved = np.pad(noisy[:, dy:, dx:], ((0, 0), (0, dy), (0, dx), (0, 0)), mode="reflect")
        offsets = np.tile(np.array([dy, dx], np.int32), (len(photos), 1))
        return photos, ((moved, offsets, noisy) if self.still else (moved, offsets))
