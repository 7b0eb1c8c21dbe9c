"""Atomic file output: a crash or Ctrl-C never leaves half a file at the destination."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from fst.errors import FstError


@contextlib.contextmanager
def atomic_path(dst: Path | str, suffix: str = ".part") -> Iterator[Path]:
    """Yields a temporary path beside dst; renames it onto dst when the block succeeds.

    Missing parent folders are created.  If the block raises (or is
    interrupted), the temporary file is removed and dst is left untouched.
    """
    dst = Path(dst)
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=suffix)
        os.close(fd)
    except OSError as exc:
        raise FstError(f"{dst}: cannot write ({exc.strerror or exc})") from None
    try:
        yield Path(tmp)
        os.replace(tmp, dst)
    except OSError as exc:
        raise FstError(f"{dst}: cannot write ({exc.strerror or exc})") from None
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_atomic(data: bytes, dst: Path | str) -> None:
    """Writes bytes to dst through a temporary file in the same folder and a rename."""
    with atomic_path(dst) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
