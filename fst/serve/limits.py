"""What one request may send and how much work `fst serve` takes on at once.

Every limit is checked as early as it can be, so that one process is safe to leave running:

- the body is read into memory up to ``max_upload`` bytes: a larger Content-Length is refused (413)
  before any byte is read, a longer chunked body as soon as it passes the limit; a body that stalls
  for ``UPLOAD_IDLE_SECONDS`` or takes over ``UPLOAD_SECONDS`` in all is refused (408);
- an image is refused by the pixel count in its header (decompression bombs) before it is decoded;
- stylizing runs on a few worker threads behind a bounded queue (``Pool``). A request takes a place
  only once its upload is read and checked, so slow or stalled clients cannot starve the others; one
  that finds every place taken gets 503 with Retry-After at once, before its body is read (and again
  after it, if the places filled up meanwhile).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import math
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError
from starlette.requests import Request

#: A body must arrive within this many seconds in all, with no pause longer than UPLOAD_IDLE_SECONDS, so
#: that stalled clients are dropped soon (they hold a connection and their bytes so far, never a worker).
UPLOAD_SECONDS = 60
UPLOAD_IDLE_SECONDS = 10


@dataclass(frozen=True)
class Limits:
    """What one request may send and how much work the server takes on at once."""

    max_upload: int = 20_000_000
    max_pixels: int = 50_000_000
    workers: int = 1
    queue: int = 4


class ApiError(Exception):
    """An error answered with its status and ``{"error": message}``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


class Pool:
    """Worker threads that stylize, behind a bounded queue: at most workers + queue requests at once."""

    def __init__(self, workers: int, queue: int):
        self.workers, self.capacity = workers, workers + queue
        self.executor = ThreadPoolExecutor(workers, thread_name_prefix="fst-stylize")
        self.active = 0
        self.seconds = 1.0  # a running mean of one job's time, for Retry-After
        self._lock = threading.Lock()

    def check(self) -> None:
        """Refuses with 503 if every place is taken, without taking one: no upload is read in vain."""
        with self._lock:
            self._refuse_if_full()

    @contextlib.contextmanager
    def place(self) -> Iterator[Place]:
        """A place for an upload read and checked (or 503). Its job (``Place.run``) keeps it until the
        job ends, even if the client leaves; a block that starts no job gives it back on the way out."""
        with self._lock:
            self._refuse_if_full()
            self.active += 1
        place = Place(self)
        try:
            yield place
        finally:
            if not place.started:
                self.release()

    def _refuse_if_full(self) -> None:
        """503 with the seconds until a place is likely free (call with the lock held)."""
        if self.active >= self.capacity:
            wait = max(1, math.ceil(self.seconds * self.capacity / self.workers))
            raise ApiError(503, f"the server is busy ({self.active} images in progress); try again "
                                f"in {wait} s", {"Retry-After": str(wait)})

    def release(self) -> None:
        with self._lock:
            self.active -= 1


class Place:
    """One place in the pool, from ``Pool.place``: the job it runs keeps it until the job ends."""

    def __init__(self, pool: Pool):
        self.pool, self.started = pool, False

    def run(self, job: Callable[[], bytes]) -> asyncio.Future:
        """Runs the job on a worker; the place is freed when the job ends, even if the client left."""
        pool = self.pool

        def timed() -> bytes:
            started = time.perf_counter()
            try:
                return job()
            finally:
                pool.seconds = 0.8 * pool.seconds + 0.2 * (time.perf_counter() - started)

        try:
            future: Future = pool.executor.submit(timed)
        except RuntimeError:
            raise ApiError(503, "the server is shutting down") from None
        self.started = True
        future.add_done_callback(lambda _: pool.release())
        return asyncio.wrap_future(future)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to be over `limit` bytes, and with 408
    when it stalls for UPLOAD_IDLE_SECONDS or is not all in within UPLOAD_SECONDS."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        raise ApiError(413, f"upload too large: {length} bytes; this server takes at most {limit} bytes")
    body = bytearray()
    chunks = request.stream()
    deadline = time.monotonic() + UPLOAD_SECONDS
    while True:
        left = deadline - time.monotonic()
        try:
            body += await asyncio.wait_for(anext(chunks), min(UPLOAD_IDLE_SECONDS, left))
        except StopAsyncIteration:
            return bytes(body)
        except asyncio.TimeoutError:
            if left <= UPLOAD_IDLE_SECONDS:
                raise ApiError(408, f"upload not received within {UPLOAD_SECONDS} s") from None
            raise ApiError(408, f"upload stalled: no data for {UPLOAD_IDLE_SECONDS} s") from None
        if len(body) > limit:
            raise ApiError(413, f"upload too large: over {limit} bytes; this server takes at most {limit} bytes")


def check_image(data: bytes, max_pixels: int) -> tuple[str, tuple[int, int]]:
    """The upload's Pillow format and (width, height), after reading only its header: refuses non-images
    and too many pixels."""
    if not data:
        raise ApiError(400, "empty upload (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                (width, height), fmt = img.size, img.format
    except Image.DecompressionBombError:
        raise ApiError(422, f"image has too many pixels; this server takes at most {max_pixels:,}") from None
    except UnidentifiedImageError:
        raise ApiError(415, "not an image this server can read (send JPEG, PNG, WebP, BMP or TIFF)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ApiError(422, f"corrupt image ({exc})") from None
    if width * height > max_pixels:
        raise ApiError(422, f"image is {width}x{height} ({width * height:,} pixels); "
                            f"this server takes at most {max_pixels:,}")
    return fmt, (width, height)
