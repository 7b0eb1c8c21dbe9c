"""Load check for `fst serve`: concurrent clients on loopback against POST /api/stylize at 512 px.

    python scripts/load_serve.py                          # 8 clients, 300 requests, at most 420 s
    python scripts/load_serve.py --clients 4 --requests 100 --workers 2 --queue 2

Starts its own `fst serve` on a free loopback port (only 127.0.0.1 is ever contacted), sends a bounded
number of requests within a bounded time, and prints requests/s, p50/p95 latency, the server's peak
RSS and its RSS along the way (it must stay flat), the count of 503s (busy, with Retry-After: the
client waits that long, at most 2 s, and tries again) and of other failures, which must be zero.
Exits 1 if any request failed otherwise.
"""

from __future__ import annotations

import argparse
import http.client
import io
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT.parent / "shared" / "data" / "photos" / "val"


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    """A process's resident memory in KiB from /proc (VmHWM: its peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def uploads(count: int, size: int) -> list[bytes]:
    """Real photos enlarged to size x size, as JPEG bytes, so every request stylizes at `size` px."""
    out = []
    for path in sorted(PHOTOS.glob("*.jpg"))[:count]:
        buffer = io.BytesIO()
        Image.open(path).convert("RGB").resize((size, size), Image.Resampling.LANCZOS).save(buffer, "JPEG",
                                                                                           quality=90)
        out.append(buffer.getvalue())
    return out


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen, int]:
    command = [sys.executable, "-m", "fst.cli", "serve", "--host", "127.0.0.1", "--port", "0", "--styles",
               args.style, "--workers", str(args.workers), "--queue", str(args.queue)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    line = proc.stdout.readline()
    if "serving" not in line:
        proc.kill()
        raise SystemExit(f"fst serve did not start: {line!r}")
    return proc, int(line.split(" at ", 1)[1].split()[0].rstrip("/").rsplit(":", 1)[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--requests", type=int, default=300, help="requests in all, 503s included (default 300)")
    parser.add_argument("--seconds", type=float, default=420, help="stop sending after this long (default 420)")
    parser.add_argument("--size", type=int, default=512, help="side of the uploaded photos (default 512)")
    parser.add_argument("--style", default="udnie")
    parser.add_argument("--workers", type=int, default=1, help="the server's --workers (default 1)")
    parser.add_argument("--queue", type=int, default=4, help="the server's --queue (default 4)")
    args = parser.parse_args()

    bodies = uploads(20, args.size)
    proc, port = start_server(args)
    rss_start = rss_kib(proc.pid)
    query = f"/api/stylize?style={args.style}&max_size={args.size}&format=jpeg"
    lock = threading.Lock()
    sent = 0
    latencies: list[float] = []
    busy = failures = 0
    samples: list[tuple[int, int]] = []  # (requests done, server RSS in KiB)
    deadline = time.monotonic() + args.seconds

    def client(index: int) -> None:
        nonlocal sent, busy, failures
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                if sent >= args.requests or time.monotonic() > deadline:
                    break
                sent += 1
                body = bodies[sent % len(bodies)]
            started = time.perf_counter()
            try:
                conn.request("POST", query, body=body, headers={"Content-Type": "image/jpeg"})
                response = conn.getresponse()
                data = response.read()
                status, retry = response.status, response.getheader("Retry-After")
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                status, data, retry = 0, b"", None
            elapsed = time.perf_counter() - started
            with lock:
                if status == 200 and Image.open(io.BytesIO(data)).size == (args.size, args.size):
                    latencies.append(elapsed)
                elif status == 503:
                    busy += 1
                else:
                    failures += 1
                    print(f"client {index}: status {status}: {data[:200]!r}", file=sys.stderr)
            if status == 503:
                time.sleep(min(2.0, float(retry or 1)))
        conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        samples.append((len(latencies), rss_kib(proc.pid)))
        time.sleep(1.0)
    seconds = time.perf_counter() - started
    peak = rss_kib(proc.pid, "VmHWM")
    proc.send_signal(2)
    proc.wait(timeout=60)

    done = len(latencies)
    quantiles = statistics.quantiles(latencies, n=20) if done >= 2 else [float("nan")] * 19
    tenth = next((rss for n, rss in samples if n >= done // 10), samples[-1][1])
    print(f"{args.clients} clients, server --workers {args.workers} --queue {args.queue}, style {args.style}, "
          f"{args.size}x{args.size} JPEG uploads, {os.cpu_count()} CPUs")
    print(f"requests: {done} ok, {busy} answered 503 (busy), {failures} failed, in {seconds:.1f} s")
    print(f"throughput: {done / seconds:.2f} images/s; latency p50 {quantiles[9]:.2f} s, p95 {quantiles[18]:.2f} s "
          f"(ok requests, queueing included)")
    print(f"server RSS: {rss_start / 1024:.0f} MiB after start-up, {tenth / 1024:.0f} MiB after {done // 10} "
          f"requests, {samples[-1][1] / 1024:.0f} MiB after {done}; peak {peak / 1024:.0f} MiB")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
