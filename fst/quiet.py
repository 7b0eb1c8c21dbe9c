"""Loading Keras and its backend quietly.

TensorFlow writes start-up lines straight to file descriptor 2 before its own log level applies
("All log messages before absl::InitializeLog() ...", oneDNN and CUDA notes, "failed call to
cuInit" on a machine without a GPU), which a user reads as errors.  Unless the user has set
``TF_CPP_MIN_LOG_LEVEL``, ``load_keras`` sets it and, while Keras loads, holds back those known lines
and passes everything else through.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator

#: Lines TensorFlow and absl print while loading that say nothing is wrong.
NOISE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IW]\d{4} [\d:.]+ +\d+ \S+:\d+\] "  # absl INFO and WARNING lines
    r"|E\d{4} .*(failed call to cuInit|Unable to register cu\w+ factory)"
    r"|To enable the following instructions: .* rebuild TensorFlow"
)
_loaded = False
_user_level: bool | None = None  # whether the user set TensorFlow's log level


def quiet_environment() -> None:
    """TensorFlow's log level (errors only), unless the user has set one."""
    global _user_level
    if _user_level is None:
        _user_level = "TF_CPP_MIN_LOG_LEVEL" in os.environ
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@contextlib.contextmanager
def quietly() -> Iterator[None]:
    """Runs a block with file descriptor 2 held back; afterwards every line but TensorFlow's known
    start-up noise is written to stderr, so real errors and warnings still show."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = [line for line in held.read().decode(errors="replace").splitlines(keepends=True)
                    if not NOISE.match(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def unless_asked():
    """``quietly()``, or nothing where the user set ``TF_CPP_MIN_LOG_LEVEL`` (they see everything)."""
    quiet_environment()
    return contextlib.nullcontext() if _user_level else quietly()


def load_keras():
    """Imports Keras (and its backend) quietly and lets the backend look for devices; returns keras.

    Call it before the first Keras import of a process; later calls only return keras.  A user who
    set ``TF_CPP_MIN_LOG_LEVEL`` sees everything TensorFlow writes.
    """
    global _loaded
    if not _loaded:
        with unless_asked():
            import keras

            keras.ops.zeros(1)  # the backend looks for devices (CUDA) on its first operation
        _loaded = True
    import keras

    return keras
