"""Start-up of the command: wall and CPU seconds of `fst styles`, `fst --help` and `fst run` on one photo.

    python scripts/startup.py                                   # this checkout, 5 runs each
    python scripts/startup.py --checkout ../main --checkout .   # two checkouts, runs interleaved
    python scripts/startup.py --photo big.jpg --repeats 3

Each command runs in a fresh process (`python -m fst`, the checkout first on PYTHONPATH); the
figures are medians.  CPU seconds (user + system of the child) are steadier than wall seconds on a
shared machine.  The stderr line count shows whether the command ran quietly.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PHOTO = REPO.parent / "shared" / "data" / "photos" / "val" / "000001.jpg"


def timed(command: list[str], checkout: Path) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, stderr lines) of one run."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "fst", *command], capture_output=True, env=env, cwd=checkout)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed in {checkout}:\n{done.stderr.decode()[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, len(done.stderr.splitlines())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkout", action="append", type=Path, help="a checkout to time (default: this one)")
    parser.add_argument("--photo", type=Path, default=PHOTO, help="the photo for fst run (default: %(default)s)")
    parser.add_argument("--style", default="great_wave", help="the style for fst run (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each command (default: %(default)s)")
    args = parser.parse_args()
    checkouts = [c.resolve() for c in args.checkout or [REPO]]
    with tempfile.TemporaryDirectory() as tmp:
        commands = {"fst styles": ["styles"], "fst --help": ["--help"],
                    "fst run": ["run", args.style, str(args.photo.resolve()), str(Path(tmp) / "out.jpg")]}
        results = {(c, name): [] for c in checkouts for name in commands}
        for _ in range(args.repeats):
            for name, command in commands.items():
                for checkout in checkouts:
                    results[checkout, name].append(timed(command, checkout))
    print(f"{'checkout':40} {'command':12} {'wall s':>7} {'CPU s':>7} {'stderr lines':>13}")
    for (checkout, name), runs in results.items():
        wall, cpu, lines = (statistics.median(r[i] for r in runs) for i in range(3))
        print(f"{str(checkout):40} {name:12} {wall:7.2f} {cpu:7.2f} {lines:13.0f}")


if __name__ == "__main__":
    main()
