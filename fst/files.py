"""Atomic file output: a crash or Ctrl-C never leaves half a file at the destination."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from fst.errors import FstError


def temporary_beside(dst: Path, suffix: str, folder: bool = False) -> Path:
    """Creates a new, uniquely named file (or folder) beside dst with the permissions a plain
    open() or mkdir() would give it (``tempfile``'s are private, 0600), or those of the dst it replaces."""
    for _ in range(100):
        tmp = dst.parent / f".{dst.name}.{secrets.token_hex(4)}{suffix}"
        try:
            if folder:
                os.mkdir(tmp, 0o777)
            else:
                os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        if dst.exists():
            os.chmod(tmp, dst.stat().st_mode & 0o7777)
        return tmp
    raise FileExistsError(f"no free temporary name beside {dst}")


@contextlib.contextmanager
def atomic_path(dst: Path | str, suffix: str = ".part") -> Iterator[Path]:
    """Yields a temporary path beside dst; renames it onto dst when the block succeeds.

    Missing parent folders are created.  If the block raises (or is
    interrupted), the temporary file is removed and dst is left untouched.
    """
    dst = Path(dst)
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = temporary_beside(dst, suffix)
    except OSError as exc:
        raise FstError(f"{dst}: cannot write ({exc.strerror or exc})") from None
    try:
        yield tmp
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
