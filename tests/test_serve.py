"""fst serve's HTTP API through the framework's test client and raw ASGI calls: every endpoint, every refusal."""

from __future__ import annotations

import asyncio
import io
import http.client
import json
import logging
import os
import struct
import sys
import tempfile
import threading
import time
import zlib

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="fst serve needs the serve extra: pip install -e '.[serve]'")
from fastapi.testclient import TestClient  # noqa: E402

import fst.serve  # noqa: E402
from fst.cli import main  # noqa: E402
from fst.errors import FstError  # noqa: E402
from fst.serve.app import Limits, bind, create_app, make_server  # noqa: E402

STYLE = "udnie"


@pytest.fixture(scope="module")
def app():
    return create_app([STYLE], Limits(max_upload=5_000_000, max_pixels=4_000_000))


@pytest.fixture(scope="module")
def client(app):
    return TestClient(app)


@pytest.fixture
def photo_bytes(val_photo) -> bytes:
    return val_photo.read_bytes()


def encode(img: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt)
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A 1x1 PNG whose header claims width x height pixels: a decompression bomb's calling card."""
    data = bytearray(encode(Image.new("L", (1, 1))))
    ihdr = bytes(data[12:16]) + struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(ihdr))
    return bytes(data)


async def asgi(app, path: str, query: str = "", messages=(), headers=(), method: str = "POST"
               ) -> tuple[int, dict, bytes, int]:
    """One request straight to the ASGI app; returns (status, headers, body, receive calls made)."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query.encode(),
             "root_path": "", "headers": [(k.encode(), v.encode()) for k, v in headers],
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000)}
    source = aiter(messages) if hasattr(messages, "__aiter__") else aiter(_listed(messages))
    calls, sent = 0, []

    async def receive():
        nonlocal calls
        calls += 1
        return await anext(source)

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    start = sent[0]
    return (start["status"], {k.decode(): v.decode() for k, v in start["headers"]},
            b"".join(m.get("body", b"") for m in sent[1:]), calls)


async def _listed(messages):
    for message in messages:
        yield message


def busy(client) -> int:
    return client.get("/healthz").json()["busy"]


def test_healthz_and_styles_with_credits(client):
    health = client.get("/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok", "styles": 1, "busy": 0, "capacity": 5}
    listing = client.get("/api/styles").json()
    assert [s["name"] for s in listing["styles"]] == [STYLE]
    udnie = listing["styles"][0]
    assert (udnie["title"], udnie["artist"], udnie["year"], udnie["license"]) == (
        "Udnie", "Francis Picabia", "1913", "public domain")
    assert listing["max_upload"] == 5_000_000 and listing["max_pixels"] == 4_000_000
    thumb = client.get(udnie["thumbnail"])
    assert thumb.headers["content-type"] == "image/jpeg" and len(thumb.content) < 60_000
    img = Image.open(io.BytesIO(thumb.content))
    assert img.format == "JPEG" and max(img.size) == 256
    assert client.get("/api/styles/great_wave/thumbnail.jpg").status_code == 404  # installed, not served


def test_page_and_its_files_are_served_and_need_nothing_from_outside(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ["/static/app.js", "/static/style.css"]:
        assert asset in page.text
        assert client.get(asset).status_code == 200
    for text in [page.text, client.get("/static/app.js").text, client.get("/static/style.css").text]:
        assert "http://" not in text and "https://" not in text and "//cdn" not in text
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert icon.text.startswith("<svg") and len(icon.content) < 2000 and 'href="/favicon.ico"' in page.text
    spec = client.get("/openapi.json").json()
    assert {"/api/stylize", "/api/styles", "/healthz"} <= set(spec["paths"])
    names = {p["name"] for p in spec["paths"]["/api/stylize"]["post"]["parameters"]}
    assert {"style", "strength", "preserve_color", "max_size", "format", "quality", "stroke_scale"} <= names


def test_stylize_raw_body_keeps_the_upload_format_and_shrinks_to_max_size(client, photo_bytes):
    response = client.post(f"/api/stylize?style={STYLE}&max_size=128", content=photo_bytes)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["content-disposition"] == f'inline; filename="{STYLE}.jpg"'
    out = Image.open(io.BytesIO(response.content))
    photo = Image.open(io.BytesIO(photo_bytes)).convert("RGB").resize(out.size, Image.Resampling.LANCZOS)
    assert out.format == "JPEG" and max(out.size) == 128
    assert np.abs(np.asarray(out, np.float32) - np.asarray(photo, np.float32)).mean() > 20


def test_stroke_scale_follows_the_result_size_and_is_reported(client, photo_bytes):
    """The default stroke scale: the result's shorter side over 512 (1 below), in the X-Stroke-Scale header."""
    big = encode(Image.open(io.BytesIO(photo_bytes)).resize((1200, 900)))
    for query, expected in [("max_size=1200", "1.76"), ("max_size=600", "1.00"), ("max_size=1200&stroke_scale=3", "3.00")]:
        response = client.post(f"/api/stylize?style={STYLE}&{query}", content=big)
        assert response.status_code == 200, response.text
        assert response.headers["x-stroke-scale"] == expected, query
    refused = client.post(f"/api/stylize?style={STYLE}&stroke_scale=0.5", content=big)
    assert refused.status_code == 422 and "stroke_scale" in refused.json()["error"]


def test_stylize_multipart_with_form_fields(client, photo_bytes):
    small = encode(Image.open(io.BytesIO(photo_bytes)).resize((96, 80)))
    response = client.post("/api/stylize", files={"image": ("photo.png", small, "image/png")},
                           data={"style": STYLE, "format": "webp", "strength": "0"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/webp"
    out = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB"), np.float32)
    original = np.asarray(Image.open(io.BytesIO(small)).convert("RGB"), np.float32)
    assert out.shape == original.shape
    assert np.abs(out - original).mean() < 4  # strength 0 is the photo itself (less WebP's loss)


def test_preserve_color_keeps_the_photos_chroma(client, photo_bytes):
    def chroma(data: bytes) -> np.ndarray:
        return np.asarray(Image.open(io.BytesIO(data)).convert("YCbCr"), np.float32)[..., 1:]

    query = f"/api/stylize?style={STYLE}&max_size=96&format=png"
    plain = client.post(query, content=photo_bytes).content
    kept = client.post(query + "&preserve_color=true", content=photo_bytes).content
    photo = encode(Image.open(io.BytesIO(photo_bytes)).resize(Image.open(io.BytesIO(kept)).size,
                                                               Image.Resampling.LANCZOS))
    assert np.abs(chroma(kept) - chroma(photo)).mean() < 0.5 * np.abs(chroma(plain) - chroma(photo)).mean()


@pytest.mark.parametrize("body, status, words", [
    (b"", 400, "empty upload"),
    (b"GIF89a? no, just some text pretending", 415, "not an image"),
    ("truncated", 422, "truncated"),
    (png_claiming(100_000, 100_000), 422, "too many pixels"),
    (png_claiming(4000, 1001), 422, "4000x1001"),
], ids=["empty", "text", "truncated", "bomb", "over-max-pixels"])
def test_bad_images_are_refused_with_a_json_error(client, photo_bytes, body, status, words):
    if body == "truncated":
        body = photo_bytes[: len(photo_bytes) // 2]
    response = client.post(f"/api/stylize?style={STYLE}", content=body)
    assert response.status_code == status
    assert words in response.json()["error"]
    assert busy(client) == 0


@pytest.mark.parametrize("style, status", [
    ("starry", 404), ("../udnie", 404), ("/etc/passwd", 404), ("udnie/../udnie", 404),
    ("weights/udnie.weights.h5", 404), ("great_wave", 404), ("", 404),
])
def test_only_names_of_served_styles_are_accepted(client, photo_bytes, style, status):
    response = client.post("/api/stylize", params={"style": style}, content=photo_bytes)
    assert response.status_code == status
    assert "unknown style" in response.json()["error"]


@pytest.mark.parametrize("query, words", [
    ("strength=1.5", "strength"), ("strength=-0.1", "strength"), ("strength=lots", "strength"),
    ("max_size=0", "max_size"), ("max_size=99999", "max_size"), ("quality=0", "quality"),
    ("quality=101", "quality"), ("format=gif", "format"), ("preserve_color=perhaps", "preserve_color"),
    ("strenght=0.5", "strenght"), ("", "style"),
])
def test_out_of_range_parameters_are_422(client, photo_bytes, query, words):
    if query != "":
        query = f"style={STYLE}&{query}"
    response = client.post(f"/api/stylize?{query}", content=photo_bytes)
    assert response.status_code == 422
    assert response.json()["error"].startswith(words)


def test_bad_multipart_uploads_are_400(client, photo_bytes):
    no_file = client.post("/api/stylize", data={"style": STYLE}, files={"other": (None, "text")})
    assert no_file.status_code == 400 and "0 files" in no_file.json()["error"]
    two = client.post(f"/api/stylize?style={STYLE}", files=[("image", ("a.jpg", photo_bytes)),
                                                             ("image", ("b.jpg", photo_bytes))])
    assert two.status_code == 400 and "2 files" in two.json()["error"]
    cut = client.post(f"/api/stylize?style={STYLE}", content=b"--xyz\r\nContent-Disposition: form-data; "
                      b'name="image"; filename="a.jpg"\r\n\r\n' + photo_bytes[:100],
                      headers={"content-type": "multipart/form-data; boundary=xyz"})
    assert cut.status_code == 400 and "incomplete" in cut.json()["error"]
    bad = client.post(f"/api/stylize?style={STYLE}", files={"image": ("a.jpg", photo_bytes)},
                      data={"strength": "9"})
    assert bad.status_code == 422 and bad.json()["error"].startswith("strength")


@pytest.mark.parametrize("body", [
    b"garbage, not multipart at all",
    b"--xyz\r\nContent-Disposition form-data\r\n\r\nno colon in the header\r\n--xyz--\r\n",
    b"--xyz\r\n\x00bad: header\r\n\r\ndata\r\n--xyz--\r\n",
    b"--xyzQ\r\n",
], ids=["no-boundary", "header-without-colon", "bad-header-character", "boundary-runs-on"])
def test_a_malformed_multipart_body_is_a_clean_400_and_logs_nothing(client, caplog, body):
    response = client.post(f"/api/stylize?style={STYLE}", content=body,
                           headers={"content-type": "multipart/form-data; boundary=xyz"})
    assert response.status_code == 400
    assert response.json()["error"] == ("malformed multipart upload: not multipart/form-data with the boundary "
                                        "its Content-Type names; send one image as the field 'image'")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_large_content_length_is_refused_before_any_byte_is_read(app):
    status, headers, body, calls = asyncio.run(asgi(
        app, "/api/stylize", f"style={STYLE}", [{"type": "http.request", "body": b"x" * 100}],
        headers=[("content-length", str(50_000_000))]))
    assert status == 413 and "at most 5000000 bytes" in json.loads(body)["error"]
    assert calls == 0


def test_a_long_chunked_body_is_refused_as_soon_as_it_passes_the_limit(app):
    chunk = b"\0" * 1_000_000
    endless = ({"type": "http.request", "body": chunk, "more_body": True} for _ in range(1000))
    status, _, body, calls = asyncio.run(asgi(app, "/api/stylize", f"style={STYLE}", endless))
    assert status == 413 and "over 5000000 bytes" in json.loads(body)["error"]
    assert calls == 6  # 6 MB read of the 1 GB offered


def test_a_big_multipart_upload_never_touches_the_disk(client, monkeypatch, tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (1100, 1200, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise))
    assert len(data) > 3_000_000  # well past the 1 MB where Starlette's form parser spools to a file
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-folder"))
    response = client.post(f"/api/stylize?style={STYLE}&max_size=32", files={"image": ("noise.png", data)})
    assert response.status_code == 200, response.text
    assert Image.open(io.BytesIO(response.content)).size == (32, 29)


def test_a_full_queue_answers_503_with_retry_after_before_reading_the_body(photo_bytes, monkeypatch):
    app = create_app([STYLE], Limits(workers=1, queue=0))
    before = set(os.listdir(tempfile.gettempdir()))
    gate = threading.Event()
    real = fst.serve.app.stylize_upload
    monkeypatch.setattr("fst.serve.app.stylize_upload", lambda *args: gate.wait(30) and real(*args))

    async def scenario():
        first = asyncio.create_task(asgi(app, "/api/stylize", f"style={STYLE}&max_size=64",
                                         [{"type": "http.request", "body": photo_bytes}]))
        while app.state.pool.active == 0:
            await asyncio.sleep(0.01)
        refused = await asgi(app, "/api/stylize", f"style={STYLE}",
                             [{"type": "http.request", "body": photo_bytes}])
        gate.set()
        return refused, await first

    (status, headers, body, calls), first = asyncio.run(scenario())
    assert status == 503 and int(headers["retry-after"]) >= 1 and calls == 0
    assert "busy" in json.loads(body)["error"]
    assert first[0] == 200
    client = TestClient(app)
    assert busy(client) == 0
    assert client.post(f"/api/stylize?style={STYLE}&max_size=64", content=photo_bytes).status_code == 200
    assert set(os.listdir(tempfile.gettempdir())) <= before


def test_an_upload_takes_no_place_and_a_disconnect_leaves_none_taken(photo_bytes):
    app = create_app([STYLE], Limits(workers=1, queue=0))

    async def scenario():
        gate = asyncio.Event()

        async def slow_upload():
            yield {"type": "http.request", "body": photo_bytes[:1000], "more_body": True}
            await gate.wait()
            yield {"type": "http.disconnect"}

        first = asyncio.create_task(asgi(app, "/api/stylize", f"style={STYLE}", slow_upload()))
        await asyncio.sleep(0.1)
        during = app.state.pool.active
        served = await asgi(app, "/api/stylize", f"style={STYLE}&max_size=64",
                            [{"type": "http.request", "body": photo_bytes}])
        gate.set()
        await first
        return during, served

    during, (status, _, _, _) = asyncio.run(scenario())
    assert during == 0 and status == 200
    assert app.state.pool.active == 0


def test_healthz_answers_while_an_image_is_stylized(app, photo_bytes):
    big = encode(Image.open(io.BytesIO(photo_bytes)).resize((512, 384)), "JPEG")

    async def scenario():
        work = asyncio.create_task(asgi(app, "/api/stylize", f"style={STYLE}&max_size=512",
                                        [{"type": "http.request", "body": big}]))
        while app.state.pool.active == 0:
            await asyncio.sleep(0.01)
        health = json.loads((await asgi(app, "/healthz", method="GET"))[2])
        return health, work.done(), await work

    health, finished, (status, _, body, _) = asyncio.run(scenario())
    assert health["busy"] == 1 and not finished
    assert status == 200 and Image.open(io.BytesIO(body)).size == (512, 384)


def test_serving_a_path_or_unknown_style_is_a_one_line_error():
    """Only plain names of installed styles are served: a path is not a style name."""
    with pytest.raises(FstError, match=r"style name '\.\./x': use letters, digits"):
        create_app(["../x"])
    with pytest.raises(FstError, match="unknown style 'udni'; did you mean udnie"):
        create_app(["udni"])


def test_without_the_extra_fst_serve_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "fastapi", None)
    monkeypatch.delitem(sys.modules, "fst.serve.app")
    monkeypatch.delattr(fst.serve, "app")
    assert main(["serve", "--port", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == 'fst: error: fst serve needs the web server packages (fastapi is missing): pip install "fst-style[serve]"'


def test_bad_limits_are_refused(capsys):
    assert main(["serve", "--workers", "0"]) == 2
    assert "--workers must be at least 1, not 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["serve", "--max-upload", "lots"])
    assert "is not a size like 500KB or 20MB" in capsys.readouterr().err


def test_two_workers_stylize_at_once_and_agree_with_one(photo_bytes):
    from concurrent.futures import ThreadPoolExecutor

    client = TestClient(create_app([STYLE], Limits(workers=2, queue=2)))
    query = f"/api/stylize?style={STYLE}&max_size=128&format=png"
    alone = client.post(query, content=photo_bytes)
    with ThreadPoolExecutor(4) as clients:
        together = list(clients.map(lambda _: client.post(query, content=photo_bytes), range(4)))
    assert alone.status_code == 200 and [r.status_code for r in together] == [200] * 4
    first = np.asarray(Image.open(io.BytesIO(alone.content)), np.int16)
    for response in together:
        assert np.abs(np.asarray(Image.open(io.BytesIO(response.content)), np.int16) - first).max() <= 1


def test_an_upload_that_stalls_is_408_and_frees_its_place(app, monkeypatch):
    monkeypatch.setattr("fst.serve.limits.UPLOAD_SECONDS", 0.3)

    async def stalled():
        yield {"type": "http.request", "body": b"\xff\xd8", "more_body": True}
        await asyncio.sleep(30)

    status, _, body, _ = asyncio.run(asgi(app, "/api/stylize", f"style={STYLE}", stalled()))
    assert status == 408 and "not received within 0.3 s" in json.loads(body)["error"]
    assert app.state.pool.active == 0


def test_an_upload_that_goes_quiet_is_408_before_the_whole_upload_time(app, monkeypatch):
    monkeypatch.setattr("fst.serve.limits.UPLOAD_SECONDS", 5)
    monkeypatch.setattr("fst.serve.limits.UPLOAD_IDLE_SECONDS", 0.3)

    async def quiet():
        yield {"type": "http.request", "body": b"\xff\xd8", "more_body": True}
        await asyncio.sleep(30)

    started = time.monotonic()
    status, _, body, _ = asyncio.run(asgi(app, "/api/stylize", f"style={STYLE}", quiet()))
    assert status == 408 and "upload stalled: no data for 0.3 s" in json.loads(body)["error"]
    assert time.monotonic() - started < 3 and app.state.pool.active == 0


def test_stalled_connections_do_not_starve_a_real_request(tiny_style, photo_bytes):
    """More connections than places send headers and a few bytes, then stall: a real request is still served."""
    app = create_app(["tiny"], Limits(workers=1, queue=1))
    server, sock = make_server(app), bind("127.0.0.1", 0)
    sock.listen()
    port = sock.getsockname()[1]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    stalled = []
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "the server did not start within 30 s"
            time.sleep(0.05)
        for _ in range(2 * app.state.pool.capacity + 1):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.putrequest("POST", "/api/stylize?style=tiny")
            conn.putheader("Content-Length", str(len(photo_bytes)))
            conn.endheaders(photo_bytes[:100])
            stalled.append(conn)
        state = server.server_state
        while len(state.tasks) + state.total_requests < len(stalled):  # each one running or answered
            assert time.monotonic() < deadline, "the stalled requests did not reach the server"
            time.sleep(0.05)

        small = encode(Image.open(io.BytesIO(photo_bytes)).resize((64, 48)))
        real = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        started = time.monotonic()
        real.request("POST", "/api/stylize?style=tiny&format=png", body=small)
        response = real.getresponse()
        answer, seconds = response.read(), time.monotonic() - started
        real.close()
        assert response.status == 200, answer
        assert Image.open(io.BytesIO(answer)).size == (64, 48) and seconds < 20
        settle = time.monotonic() + 5  # the real request's task ends just after its answer is sent
        while len(state.tasks) > len(stalled) and time.monotonic() < settle:
            time.sleep(0.05)
        assert len(state.tasks) == len(stalled)  # all still stalled: not timed out, not refused
        assert app.state.pool.active == 0
    finally:
        for conn in stalled:
            conn.close()
        server.should_exit = True
        thread.join(30)
        sock.close()
    assert not thread.is_alive()
