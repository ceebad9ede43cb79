"""Reference point for bench/gateway.py: the plainest aiohttp proxy (low-level server +
aiohttp client, uvloop, one process), with none of the gateway's work. The gap between
this and gateway_off is what routing, hygiene and metrics cost; the gap between this and
nginx is Python's.

    python bench/plain_proxy.py --port 9000 --upstream http://127.0.0.1:8090
"""

from __future__ import annotations

import argparse
import asyncio

import aiohttp
import uvloop
from aiohttp import web
from aiohttp.web_server import Server


async def serve(port: int, upstream: str) -> None:
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), auto_decompress=False)

    async def handler(request: web.BaseRequest) -> web.Response:
        async with session.request(request.method, upstream + request.raw_path) as r:
            body = await r.read()
            return web.Response(status=r.status, body=body,
                                headers={"Content-Type": r.headers.get("Content-Type", "application/octet-stream")})

    server = Server(handler, access_log=None)
    await asyncio.get_running_loop().create_server(server, "127.0.0.1", port)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    uvloop.run(serve(args.port, args.upstream))


if __name__ == "__main__":
    main()
