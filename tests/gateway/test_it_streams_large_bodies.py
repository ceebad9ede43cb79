"""Streaming: a 100 MB upload and a 100 MB download pass through without the gateway's
memory growing by anything like their size."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import httpx

MB = 1024 * 1024
SIZE = 100 * MB


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_a_100_mb_upload_streams_through(start_gateway, publish, world, upstream):
    publish.route(upstream.url, max_body_bytes=SIZE + 1)
    gateway = start_gateway()  # one worker: the process we watch serves the request
    headers = {"X-API-Key": world.alice_key}
    assert httpx.get(f"{gateway.url}/echo/v1/warm", headers=headers).status_code == 200
    before = peak_rss_kib(gateway.proc.pid)

    def body():
        chunk = b"u" * MB
        for _ in range(SIZE // MB):
            yield chunk

    r = httpx.post(f"{gateway.url}/echo/v1/upload", headers={**headers, "Content-Length": str(SIZE)},
                   content=body(), timeout=60)

    assert r.status_code == 200, r.text
    assert r.json()["body_size"] == SIZE
    grown_mb = (peak_rss_kib(gateway.proc.pid) - before) / 1024
    assert grown_mb < 25, f"peak RSS grew by {grown_mb:.0f} MB for a {SIZE // MB} MB upload"


class BigResponder:
    """Answers any request with SIZE bytes, written 1 MB at a time."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                head += conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                         b"Content-Length: %d\r\nConnection: close\r\n\r\n" % SIZE)
            chunk = b"d" * MB
            for _ in range(SIZE // MB):
                conn.sendall(chunk)


def test_a_100_mb_download_streams_through(start_gateway, publish, world):
    responder = BigResponder()
    publish.route(f"http://127.0.0.1:{responder.port}")
    gateway = start_gateway()
    before = peak_rss_kib(gateway.proc.pid)

    received = 0
    with httpx.stream("GET", f"{gateway.url}/echo/v1/big", headers={"X-API-Key": world.alice_key},
                      timeout=60) as r:
        assert r.status_code == 200
        assert r.headers["content-length"] == str(SIZE)
        for chunk in r.iter_raw():
            received += len(chunk)

    assert received == SIZE
    grown_mb = (peak_rss_kib(gateway.proc.pid) - before) / 1024
    assert grown_mb < 25, f"peak RSS grew by {grown_mb:.0f} MB for a {SIZE // MB} MB download"
    responder.thread.join(timeout=5)
    responder.sock.close()
