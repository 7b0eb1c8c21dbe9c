"""The ASGI app behind `fst serve`: the page, the styles, and stylizing uploads within fixed limits.

Every limit is checked as early as it can be, so that one process is safe to leave running:

- the body is read into memory up to ``max_upload`` bytes: a larger Content-Length is refused (413)
  before any byte is read, a longer chunked body as soon as it passes the limit; a body that stalls
  for ``UPLOAD_IDLE_SECONDS`` or takes over ``UPLOAD_SECONDS`` in all is refused (408);
- an image is refused by the pixel count in its header (decompression bombs) before it is decoded;
- stylizing runs on a few worker threads behind a bounded queue. A request takes a place only once
  its upload is read and checked, so slow or stalled clients cannot starve the others; one that finds
  every place taken gets 503 with Retry-After at once, before its body is read (and again after it,
  if the places filled up meanwhile).

Multipart bodies are parsed in memory, so nothing a request sends is ever written to disk.
"""

from __future__ import annotations

import asyncio
import errno
import io
import logging
import math
import socket
import threading
import time
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Callable, Literal

import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from fst import inference, styles
from fst.errors import FstError
from fst.images import long_side_size
from fst.runners import Runner, open_runner

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger(__name__)
#: python-multipart logs each parse error as a warning before raising it; the 400 says all the client needs.
_PARSER_LOG = logging.getLogger(f"{__name__}.multipart")
_PARSER_LOG.setLevel(logging.ERROR)

STATIC = Path(__file__).with_name("static")
#: Output formats by the ``format`` parameter, and their content types.
FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
CONTENT_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
#: The largest ``max_size`` a request may ask for (longer side of the result, in pixels).
MAX_SIDE = 2048
#: A body must arrive within this many seconds in all, with no pause longer than UPLOAD_IDLE_SECONDS, so
#: that stalled clients are dropped soon (they hold a connection and their bytes so far, never a worker).
UPLOAD_SECONDS = 60
UPLOAD_IDLE_SECONDS = 10
#: The most parts a multipart body may have (the image and a few parameters).
MAX_PARTS = 16
#: The page may load only what this server sends (and the images it makes in the browser).
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; object-src 'none'",
    "X-Content-Type-Options": "nosniff",
}


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


class StylizeParams(BaseModel):
    """The parameters of POST /api/stylize, in the query string or as multipart text fields."""

    model_config = ConfigDict(extra="forbid")

    style: str | None = Field(None, description="an installed style's name, from GET /api/styles (required)")
    strength: float = Field(1.0, ge=0.0, le=1.0, description="blend of stylized (1) and original (0)")
    preserve_color: bool = Field(False, description="keep the photo's colours, transfer only luminance")
    max_size: int = Field(1024, ge=16, le=MAX_SIDE, description="longer side of the result (never enlarged)")
    format: Literal["png", "jpeg", "webp"] | None = Field(
        None, description="output format (default: the upload's own if png, jpeg or webp, else png)")
    quality: int = Field(90, ge=1, le=100, description="JPEG and WebP quality")
    stroke_scale: Literal["auto"] | Annotated[float, Field(ge=1, le=64)] = Field(
        "auto", description="strokes K times larger, 1 to 64; auto (default): K from the result's size, "
                            "given back in the X-Stroke-Scale header")


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

    def admit(self) -> None:
        """Takes a place for an upload read and checked, or refuses with 503."""
        with self._lock:
            self._refuse_if_full()
            self.active += 1

    def _refuse_if_full(self) -> None:
        """503 with the seconds until a place is likely free (call with the lock held)."""
        if self.active >= self.capacity:
            wait = max(1, math.ceil(self.seconds * self.capacity / self.workers))
            raise ApiError(503, f"the server is busy ({self.active} images in progress); try again "
                                f"in {wait} s", {"Retry-After": str(wait)})

    def release(self) -> None:
        with self._lock:
            self.active -= 1

    def run(self, job: Callable[[], bytes]) -> asyncio.Future:
        """Runs an admitted job on a worker; its place is freed when the job ends, even if the client left."""

        def timed() -> bytes:
            started = time.perf_counter()
            try:
                return job()
            finally:
                self.seconds = 0.8 * self.seconds + 0.2 * (time.perf_counter() - started)

        try:
            future: Future = self.executor.submit(timed)
        except RuntimeError:
            self.release()
            raise ApiError(503, "the server is shutting down") from None
        future.add_done_callback(lambda _: self.release())
        return asyncio.wrap_future(future)


def stylize_upload(data: bytes, runner: Runner, params: StylizeParams, fmt: str) -> bytes:
    """The server's one call into the stylize pipeline: encoded image in, encoded image out."""
    return inference.stylize(data, runner, format=fmt, quality=params.quality, max_size=params.max_size,
                             strength=params.strength, preserve_color=params.preserve_color,
                             stroke_scale=params.stroke_scale)


def stroke_scale_of(size: tuple[int, int], runner: Runner, params: StylizeParams) -> float:
    """The stroke scale an upload of this (width, height) is stylized at, after shrinking to max_size."""
    width, height = size
    if max(width, height) > params.max_size:
        width, height = long_side_size(width, height, params.max_size)
    return inference.stroke_scale_for(height, width, params.stroke_scale, runner)


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


def parse_multipart(body: bytes, content_type: str) -> tuple[bytes, dict[str, str]]:
    """The file and the text fields of a multipart/form-data body, parsed in memory."""
    boundary = parse_options_header(content_type)[1].get(b"boundary")
    if not boundary:
        raise ApiError(400, "multipart upload without a boundary")
    parts: list[tuple[dict[bytes, bytes], bytearray]] = []
    header = [b"", b""]
    ended = []

    def on_part_begin() -> None:
        if len(parts) >= MAX_PARTS:
            raise ApiError(400, f"multipart upload with more than {MAX_PARTS} parts")
        parts.append(({}, bytearray()))

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header[0] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header[1] += data[start:end]

    def on_header_end() -> None:
        parts[-1][0][header[0].lower()] = header[1]
        header[:] = [b"", b""]

    def on_part_data(data: bytes, start: int, end: int) -> None:
        parts[-1][1].extend(data[start:end])

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_part_data": on_part_data, "on_end": lambda: ended.append(True)})
    parser.logger = _PARSER_LOG
    try:
        parser.write(body)
        parser.finalize()
    except MultipartParseError:
        raise ApiError(400, "malformed multipart upload: not multipart/form-data with the boundary its "
                            "Content-Type names; send one image as the field 'image'") from None
    if not ended:
        raise ApiError(400, "incomplete multipart upload (no closing boundary)")
    files, fields = [], {}
    for headers, data in parts:
        disposition = parse_options_header(headers.get(b"content-disposition", b""))[1]
        if b"filename" in disposition or disposition.get(b"name") == b"image":
            files.append(bytes(data))
        elif b"name" in disposition:
            fields[disposition[b"name"].decode("utf-8", "replace")] = data.decode("utf-8", "replace")
    if len(files) != 1:
        raise ApiError(400, f"multipart upload with {len(files)} files; send one image (field name 'image')")
    return files[0], fields


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


def _one_line(exc: ValidationError | RequestValidationError) -> str:
    """The first validation error as 'name: reason'."""
    error = exc.errors()[0]
    name = ".".join(str(part) for part in error["loc"] if part not in ("query", "body"))
    return f"{name}: {error['msg']}" if name else error["msg"]


def create_app(style_names: list[str] | None = None, limits: Limits | None = None) -> FastAPI:
    """The app, with its styles loaded and warmed up once (every installed style unless named).

    Only names of installed styles are accepted, here and in requests: never paths.
    """
    limits = limits or Limits()
    installed = {s.name: s for s in styles.find_styles()}
    for name in style_names or []:
        styles.check_name(name)
        if name not in installed:
            styles.get_style(name)  # one line with the close names, or a path refused below
            raise FstError(f"{name}: only names of installed styles can be served (see `fst styles`)")
    served = {name: installed[name] for name in (style_names or installed)}
    if not served:
        raise FstError("no styles are installed (see `fst train-style`)")
    runners = {name: open_runner(style) for name, style in served.items()}
    for runner in runners.values():
        inference.stylize(np.zeros((16, 16, 3), np.uint8), runner)  # loads the network, builds its predict step
    pool = Pool(limits.workers, limits.queue)

    app = FastAPI(title="fst", summary="Fast neural style transfer: stylize images with trained paintings.",
                  version=_version())
    app.state.pool, app.state.limits, app.state.styles = pool, limits, served
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error": exc.message}, exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": _one_line(exc)}, 422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def failed(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"error": f"internal error ({type(exc).__name__}); see the server's log"}, 500)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    @app.get("/healthz", summary="Liveness and load")
    async def healthz() -> dict:
        return {"status": "ok", "styles": len(served), "busy": pool.active, "capacity": pool.capacity}

    @app.get("/api/styles", summary="The styles served, with their paintings' credits and the upload limits")
    async def list_styles() -> dict:
        return {
            "styles": [{"name": s.name, "title": s.title, "artist": s.artist, "year": s.year,
                        "license": s.license,
                        "thumbnail": f"/api/styles/{s.name}/thumbnail.jpg" if s.thumbnail else None}
                       for s in served.values()],
            "max_upload": limits.max_upload, "max_pixels": limits.max_pixels, "max_size": MAX_SIDE,
        }

    @app.get("/api/styles/{name}/thumbnail.jpg", summary="A small JPEG of the style's painting",
             response_class=FileResponse)
    async def thumbnail(name: str) -> FileResponse:
        style = served.get(name)
        if style is None or style.thumbnail is None:
            raise ApiError(404, f"no thumbnail for style {name!r}")
        return FileResponse(style.thumbnail, media_type="image/jpeg")

    @app.post("/api/stylize", summary="Stylize an uploaded image", response_class=Response, responses={
        200: {"content": {t: {} for t in CONTENT_TYPES.values()}, "description": "the stylized image"},
        **{code: {"description": text} for code, text in [
            (400, "empty or malformed upload"), (404, "unknown style"), (408, "upload too slow"),
            (413, "upload too large"), (415, "not an image"), (422, "bad parameter, corrupt image or too many pixels"),
            (503, "busy: every worker and queue place taken (see Retry-After)")]}},
        openapi_extra={"requestBody": {"required": True, "content": {
            "multipart/form-data": {"schema": {"type": "object", "properties": {
                "image": {"type": "string", "format": "binary"}}}},
            "image/*": {"schema": {"type": "string", "format": "binary"}}}}})
    async def stylize(request: Request, query: Annotated[StylizeParams, Query()]) -> Response:
        """The image is the raw body, or the file of a multipart upload; parameters go in the query string
        (or as multipart text fields). Returns the image bytes."""
        pool.check()
        try:
            body = await read_body(request, limits.max_upload)
            params, data = query, body
            content_type = request.headers.get("content-type", "")
            if content_type.startswith("multipart/form-data"):
                data, fields = parse_multipart(body, content_type)
                try:
                    params = StylizeParams.model_validate({**request.query_params, **fields})
                except ValidationError as exc:
                    raise ApiError(422, _one_line(exc)) from None
            if params.style is None:
                raise ApiError(422, "style: give the name of a style (GET /api/styles lists them)")
            if params.style not in served:
                raise ApiError(404, f"unknown style {params.style!r}; this server has {', '.join(served)}")
            source, size = check_image(data, limits.max_pixels)
            fmt = params.format or next((k for k, v in FORMATS.items() if v == source), "png")
        except ClientDisconnect:
            return Response(status_code=400)
        pool.admit()
        try:
            encoded = await pool.run(lambda: stylize_upload(data, runners[params.style], params, fmt))
        except FstError as exc:
            raise ApiError(422, str(exc)) from None
        extension = "jpg" if fmt == "jpeg" else fmt
        return Response(encoded, media_type=CONTENT_TYPES[FORMATS[fmt]], headers={
            "Content-Disposition": f'inline; filename="{params.style}.{extension}"', "Cache-Control": "no-store",
            "X-Stroke-Scale": f"{stroke_scale_of(size, runners[params.style], params):.2f}"})

    return app


def _version() -> str:
    from fst import __version__

    return __version__


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host and port, not listening yet: a host that cannot be resolved or bound and a
    port in use are one-line errors before the styles load, and no connection waits while they do."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise FstError(f"--host {host}: cannot resolve it ({exc.strerror})") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        hint = "; --port 0 picks a free one" if exc.errno == errno.EADDRINUSE else ""
        raise FstError(f"cannot listen on {host} port {port} ({exc.strerror or exc}){hint}") from None
    sock.set_inheritable(True)
    return sock


def make_server(app: FastAPI) -> uvicorn.Server:
    """The uvicorn server that runs the app for `fst serve` (and for the tests that talk to it over TCP)."""
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", access_log=False, limit_concurrency=64,
                            timeout_graceful_shutdown=10)
    return uvicorn.Server(config)


def serve(host: str, port: int, style_names: list[str] | None, limits: Limits) -> None:
    """Binds, loads the styles, says where the page is and serves until Ctrl-C.

    Binding comes first, so that a bad host or a port in use fails at once, not after the styles load.
    """
    with bind(host, port) as sock:
        app = create_app(style_names, limits)
        try:
            sock.listen(128)
        except OSError as exc:
            raise FstError(f"cannot listen on {host} port {port} ({exc.strerror or exc})") from None
        bound = sock.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        where = ("this machine only; --host 0.0.0.0 to share it on the network"
                 if host in ("127.0.0.1", "localhost", "::1") else "reachable from the network")
        print(f"fst: serving {len(app.state.styles)} styles at http://{shown}:{bound}/ ({where}); "
              f"Ctrl-C stops", flush=True)
        try:
            make_server(app).run(sockets=[sock])
        except KeyboardInterrupt:
            pass
        finally:
            app.state.pool.executor.shutdown(wait=True, cancel_futures=True)
    print("fst: stopped", flush=True)
