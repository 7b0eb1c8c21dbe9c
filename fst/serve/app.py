"""The ASGI app behind `fst serve`: the page, the styles, and stylizing uploads.

The routes live here; what a request may send and how much work is taken on at once in
``limits.py``; multipart parsing, in memory, in ``multipart.py``.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import socket
from numbers import Integral, Real
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from fst import inference, styles
from fst.errors import FstError
from fst.images import FORMATS, long_side_size
from fst.options import OutputOptions, StylizeOptions
from fst.runners import Runner, open_runner
from fst.serve.limits import ApiError, Limits, Pool, check_image, read_body
from fst.serve.multipart import parse_multipart
from fst.strokes import stroke_scale_for

if TYPE_CHECKING:
    import uvicorn

__all__ = ["Limits", "bind", "create_app", "make_server", "serve"]

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
#: The output formats a request may ask for (those a browser shows; ``fst.images.FORMATS`` has the rest).
SERVED_FORMATS = ("png", "jpeg", "webp")
#: The largest ``max_size`` a request may ask for (longer side of the result, in pixels).
MAX_SIDE = 2048
#: The page may load only what this server sends (and the images it makes in the browser).
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; object-src 'none'",
    "X-Content-Type-Options": "nosniff",
}


def from_options(options_class: type, name: str, **server) -> tuple[Any, Any]:
    """A request parameter made from a field of ``fst.options``: its kind, range, words and help, with
    what the server sets otherwise in ``server`` (default, low, high, help)."""
    f = {f.name: f for f in dataclasses.fields(options_class)}[name]
    meta = {**f.metadata, "default": f.default, **server}
    kind = {Real: float, Integral: int, bool: bool, str: str}[meta["kind"]]
    annotation: Any = Annotated[kind, Field(ge=meta["low"], le=meta["high"], gt=meta["over"])]
    if meta["words"]:
        annotation = Literal[meta["words"]] | annotation
    return annotation, Field(meta["default"], description=meta["help"])


#: The parameters of POST /api/stylize, in the query string or as multipart text fields: the stylize
#: options a browser needs (``fst.options``), the style, and the output's format and quality.
StylizeParams = create_model(
    "StylizeParams", __config__=ConfigDict(extra="forbid"),
    style=(str | None, Field(None, description="an installed style's name, from GET /api/styles (required)")),
    strength=from_options(StylizeOptions, "strength"),
    preserve_color=from_options(StylizeOptions, "preserve_color"),
    max_size=from_options(StylizeOptions, "max_size", default=1024, low=16, high=MAX_SIDE,
                          help="longer side of the result (never enlarged)"),
    stroke_scale=from_options(StylizeOptions, "stroke_scale",
                              help="strokes K times larger, 1 to 64; auto (default): K from the result's size, "
                                   "given back in the X-Stroke-Scale header"),
    format=(Literal[SERVED_FORMATS] | None, Field(None, description="output format (default: the upload's own if "
                                                                    "png, jpeg or webp, else png)")),
    quality=from_options(OutputOptions, "quality", default=90, help="JPEG and WebP quality"),
)


def stylize_upload(data: bytes, runner: Runner, params: BaseModel, fmt: str) -> bytes:
    """The server's one call into the stylize pipeline: encoded image in, encoded image out."""
    options = StylizeOptions(**{f.name: getattr(params, f.name) for f in dataclasses.fields(StylizeOptions)
                                if f.name in type(params).model_fields})
    return inference.stylize(data, runner, options=options, format=fmt, quality=params.quality)


def stroke_scale_of(size: tuple[int, int], runner: Runner, params: BaseModel) -> float:
    """The stroke scale an upload of this (width, height) is stylized at, after shrinking to max_size."""
    width, height = size
    if max(width, height) > params.max_size:
        width, height = long_side_size(width, height, params.max_size)
    return stroke_scale_for(height, width, params.stroke_scale, runner)


def _one_line(exc: ValidationError | RequestValidationError) -> str:
    """The first validation error as 'name: reason'."""
    error = exc.errors()[0]
    name = ".".join(str(part) for part in error["loc"] if part not in ("query", "body"))
    return f"{name}: {error['msg']}" if name else error["msg"]


def open_served(style_names: list[str] | None) -> tuple[dict[str, styles.Style], dict[str, Runner]]:
    """The styles to serve (every installed one unless named) and a runner for each, loaded and warmed up
    once. Only names of installed styles are accepted, here and in requests: never paths."""
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
    return served, runners


def add_error_handlers(app: FastAPI) -> None:
    """Every error is answered as ``{"error": one line}`` with its status."""

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


def add_pages(app: FastAPI, served: dict[str, styles.Style], limits: Limits, pool: Pool) -> None:
    """The page, its icon, the health check and the list of styles with their thumbnails."""

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
        return FileResponse(style.thumbnail, media_type=FORMATS["jpeg"].mime)


async def read_upload(request: Request, query: BaseModel, served: dict, limits: Limits):
    """The upload's bytes, its parameters (query string, or multipart text fields over it), its output
    format and its (width, height), all checked before any work."""
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
    fmt = params.format or next((name for name in SERVED_FORMATS if FORMATS[name].pil == source), "png")
    return data, params, fmt, size


STYLIZE_DOCS = dict(summary="Stylize an uploaded image", response_class=Response, responses={
    200: {"content": {FORMATS[name].mime: {} for name in SERVED_FORMATS}, "description": "the stylized image"},
    **{code: {"description": text} for code, text in [
        (400, "empty or malformed upload"), (404, "unknown style"), (408, "upload too slow"),
        (413, "upload too large"), (415, "not an image"), (422, "bad parameter, corrupt image or too many pixels"),
        (503, "busy: every worker and queue place taken (see Retry-After)")]}},
    openapi_extra={"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "properties": {
            "image": {"type": "string", "format": "binary"}}}},
        "image/*": {"schema": {"type": "string", "format": "binary"}}}}})


def create_app(style_names: list[str] | None = None, limits: Limits | None = None) -> FastAPI:
    """The app, with its styles loaded and warmed up once (every installed style unless named)."""
    limits = limits or Limits()
    served, runners = open_served(style_names)
    pool = Pool(limits.workers, limits.queue)
    app = FastAPI(title="fst", summary="Fast neural style transfer: stylize images with trained paintings.",
                  version=_version())
    app.state.pool, app.state.limits, app.state.styles = pool, limits, served
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    add_error_handlers(app)
    add_pages(app, served, limits, pool)

    @app.post("/api/stylize", **STYLIZE_DOCS)
    async def stylize(request: Request, query: Annotated[StylizeParams, Query()]) -> Response:
        """The image is the raw body, or the file of a multipart upload; parameters go in the query string
        (or as multipart text fields). Returns the image bytes."""
        pool.check()
        try:
            data, params, fmt, size = await read_upload(request, query, served, limits)
        except ClientDisconnect:
            return Response(status_code=400)
        runner = runners[params.style]
        with pool.place() as place:
            try:
                encoded = await place.run(lambda: stylize_upload(data, runner, params, fmt))
            except FstError as exc:
                raise ApiError(422, str(exc)) from None
        extension = FORMATS[fmt].suffixes[0]
        return Response(encoded, media_type=FORMATS[fmt].mime, headers={
            "Content-Disposition": f'inline; filename="{params.style}{extension}"', "Cache-Control": "no-store",
            "X-Stroke-Scale": f"{stroke_scale_of(size, runner, params):.2f}"})

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
