"""On a version with CORS the gateway owns the Access-Control-* headers: an upstream
that answers ``Access-Control-Allow-Origin: *`` (as many frameworks do by default)
must not widen what the version's policy grants, so the upstream's own CORS headers
are dropped and the gateway's take their place. Other upstream headers pass through."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from gateway import contract
from tests.gateway.conftest import ALICE_APP, ECHO_API_ID, grant

PORTAL = "http://portal.test:8000"


class PermissiveUpstream(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Allow-Credentials", "true")
        self.send_header("Access-Control-Expose-Headers", "X-Secret")
        self.send_header("X-Upstream", "kept")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def permissive_upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), PermissiveUpstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_upstreams_own_cors_headers_never_reach_the_browser(start_gateway, publish, world, permissive_upstream):
    publish.route(permissive_upstream, cors=contract.CorsPolicy(allowed_origins=(PORTAL,)))
    publish.application(ALICE_APP, {ECHO_API_ID: grant(8950, rate_per_minute=100)})
    gateway = start_gateway()
    url = f"{gateway.url}/echo/v1/"

    allowed = httpx.get(url, headers={"X-API-Key": world.alice_key, "Origin": PORTAL})
    other = httpx.get(url, headers={"X-API-Key": world.alice_key, "Origin": "https://evil.example"})

    assert allowed.status_code == other.status_code == 200
    assert allowed.headers.get_list("Access-Control-Allow-Origin") == [PORTAL]
    assert "Access-Control-Allow-Credentials" not in allowed.headers
    assert "X-Secret" not in allowed.headers["Access-Control-Expose-Headers"]
    assert "Access-Control-Allow-Origin" not in other.headers
    assert "Access-Control-Allow-Credentials" not in other.headers
    assert allowed.headers["X-Upstream"] == other.headers["X-Upstream"] == "kept"
