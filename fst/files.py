"""Atomic file output: a crash or Ctrl-C never leaves half a file at the destination."""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

from fst.errors import FstError


#: The longest file name most file systems take, in bytes.
NAME_MAX = 255
#: Bytes a temporary name adds after '.NAME.': a process id (up to 7 digits), '.', 8 random hex digits
#: and a suffix (up to 16 bytes, e.g. '.weights.h5').
_TAIL = 7 + 1 + 8 + 16


def _temporary_prefix(dst: Path) -> str:
    """The start of dst's temporary names: '.NAME.PID.', with NAME shortened where the whole temporary
    name would be too long for the file system, so that any name that fits can be written."""
    name = dst.name
    while len(f".{name}.".encode()) + _TAIL > NAME_MAX:
        name = name[:-1]
    return f".{name}.{os.getpid()}."


def temporary_beside(dst: Path, suffix: str, folder: bool = False) -> Path:
    """Creates a new, uniquely named file (or folder) beside dst with the permissions a plain
    open() or mkdir() would give it (``tempfile``'s are private, 0600), or those of the dst it replaces.

    The name carries this process's id, so that ``sweep_temporaries`` can tell a killed run's leftovers.
    """
    for _ in range(100):
        tmp = dst.parent / f"{_temporary_prefix(dst)}{secrets.token_hex(4)}{suffix}"
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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_temporaries(dst: Path | str) -> int:
    """Removes the temporary files and folders that runs killed before they could clean up (SIGKILL,
    a power cut) left beside dst; those of running processes stay.  Returns how many were removed."""
    dst = Path(dst)
    if not dst.parent.is_dir():
        return 0
    prefix = _temporary_prefix(dst).rsplit(".", 2)[0] + "."
    removed = 0
    for path in dst.parent.glob(glob.escape(prefix) + "*"):
        pid = path.name[len(prefix):].split(".", 1)[0]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed += 1
    return removed


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


class atomic_folder:
    """Like atomic_path for a folder: filled beside dst, swapped in at the end; removed on error."""

    def __init__(self, dst: Path | str):
        self.dst = Path(dst)

    def __enter__(self) -> Path:
        try:
            self.dst.parent.mkdir(parents=True, exist_ok=True)
            self.tmp = temporary_beside(self.dst, ".part", folder=True)
        except OSError as exc:
            raise FstError(f"{self.dst}: cannot write ({exc.strerror or exc})") from None
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            if self.dst.exists():
                shutil.rmtree(self.dst)
            os.replace(self.tmp, self.dst)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
