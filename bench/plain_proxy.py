"""Reference point for bench/gateway.py: the plainest aiohttp proxy (low-level server +
aiohttp client, uvloop, one process), with none of the gateway's work. The gap between
this and gateway_off is what routing, hygiene and metrics cost; the gap between this and
nginx is Python's.

``--server granian`` serves the same handler with granian (RSGI, its single-threaded
runtime, uvloop) instead of aiohttp's server, still with the aiohttp client: the
comparison issue 16 asks for before any switch of the gateway's server
(docs/performance.md).

``--client lean`` uses the gateway's own upstream client (gateway/upstream.py) instead
of aiohttp's ClientSession, with aiohttp's server: what replacing the client saves on
the plainest proxy (docs/performance.md, "A lean upstream client").

    python bench/plain_proxy.py --port 9000 --upstream http://127.0.0.1:8090 [--server granian] [--client lean]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import uvloop
from aiohttp import web
from aiohttp.web_server import Server
from multidict import CIMultiDict
from yarl import URL

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gateway.upstream import Origin, Timeouts, UpstreamClient


async def serve(port: int, upstream: str, client: str = "aiohttp") -> None:
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), auto_decompress=False)
    lean = UpstreamClient(1000, 60.0)
    url = URL(upstream)
    origin = Origin(url.scheme, url.raw_host or "", url.port or 80, url.host_port_subcomponent or "")
    timeouts = Timeouts(2.0, 30.0, 60.0)
    no_headers: CIMultiDict[str] = CIMultiDict()

    async def handler(request: web.BaseRequest) -> web.Response:
        async with session.request(request.method, upstream + request.raw_path) as r:
            body = await r.read()
            return web.Response(status=r.status, body=body,
                                headers={"Content-Type": r.headers.get("Content-Type", "application/octet-stream")})

    async def lean_handler(request: web.BaseRequest) -> web.Response:
        r = await lean.request(origin, request.method, request.raw_path, no_headers, None, timeouts)
        try:
            body = await r.read()
        finally:
            r.release()
        return web.Response(status=r.status, body=body,
                            headers={"Content-Type": r.headers.get("Content-Type", "application/octet-stream")})

    if client == "lean":
        handler = lean_handler

    server = Server(handler, access_log=None)
    await asyncio.get_running_loop().create_server(server, "127.0.0.1", port)
    await asyncio.Event().wait()


class RSGIProxy:
    """The handler above as a granian RSGI application (upstream from PLAIN_PROXY_UPSTREAM)."""

    def __init__(self) -> None:
        self.session: aiohttp.ClientSession | None = None

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        if self.session is None:  # in the worker's loop, not at import
            self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), auto_decompress=False)
        path = scope.path + ("?" + scope.query_string if scope.query_string else "")
        async with self.session.request(scope.method, os.environ["PLAIN_PROXY_UPSTREAM"] + path) as r:
            body = await r.read()
            content_type = r.headers.get("Content-Type", "application/octet-stream")
            proto.response_bytes(r.status, [("content-type", content_type)], body)


rsgi_app = RSGIProxy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--server", choices=("aiohttp", "granian"), default="aiohttp")
    parser.add_argument("--client", choices=("aiohttp", "lean"), default="aiohttp",
                        help="lean: the gateway's upstream client (aiohttp server only)")
    args = parser.parse_args()
    if args.server == "granian":
        os.environ["PLAIN_PROXY_UPSTREAM"] = args.upstream
        granian = str(Path(sys.executable).with_name("granian"))
        sys.exit(subprocess.call([granian, "--interface", "rsgi", "--host", "127.0.0.1", "--port", str(args.port),
                           "--workers", "1", "--runtime-mode", "st", "--loop", "uvloop", "--no-ws",
                           "--log-level", "warning", "--working-dir", str(Path(__file__).parent),
                           "plain_proxy:rsgi_app"]))
    uvloop.run(serve(args.port, args.upstream, args.client))


if __name__ == "__main__":
    main()
