"""Demo upstream: answers every request with JSON describing what it received.

    python -m gateway.echo --port 8090

Used by the demo "Echo" API, by the tests and by the benchmarks. It counts the
requests it served so that tests can check exact admission from the upstream's
own point of view: ``GET /_echo/stats`` returns ``{"served": N}`` (not counted),
``POST /_echo/reset`` sets it back to zero. ``?delay_ms=N`` (at most 10,000) makes it a
slow upstream: the request is counted as served when it arrives, then answered N ms later.
``?set_header=Name:Value`` (repeatable) adds that header to the answer (Cache-Control,
Vary, ... for the cache tests).

A WebSocket upgrade is accepted (counted as served once): every message is sent back
as it came, except the text ``whoami``, answered with JSON describing the handshake
(path, query, headers) as the echo received it.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib

from aiohttp import WSMsgType, web

STATS_PATH = "/_echo/stats"
RESET_PATH = "/_echo/reset"
MAX_DELAY_MS = 10_000
SERVED: web.AppKey[list[int]] = web.AppKey("served", list)


async def websocket_echo(request: web.Request) -> web.StreamResponse:
    ws = web.WebSocketResponse(protocols=("echo",))
    await ws.prepare(request)
    request.app[SERVED][0] += 1
    async for message in ws:
        if message.type is WSMsgType.TEXT and message.data == "whoami":
            await ws.send_json(
                {
                    "path": request.path,
                    "query": request.query_string,
                    "headers": [[k, v] for k, v in request.headers.items()],
                }
            )
        elif message.type is WSMsgType.TEXT:
            await ws.send_str(message.data)
        elif message.type is WSMsgType.BINARY:
            await ws.send_bytes(message.data)
    return ws


async def echo(request: web.Request) -> web.StreamResponse:
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return await websocket_echo(request)
    if request.path == STATS_PATH:
        return web.json_response({"served": request.app[SERVED][0]})
    if request.path == RESET_PATH and request.method == "POST":
        request.app[SERVED][0] = 0
        return web.json_response({"served": 0})
    size = 0
    digest = hashlib.sha256()  # so a test can tell the body arrived byte for byte
    async for chunk in request.content.iter_any():
        size += len(chunk)
        digest.update(chunk)
    request.app[SERVED][0] += 1
    delay = request.query.get("delay_ms", "")
    if delay.isdigit():
        await asyncio.sleep(min(int(delay), MAX_DELAY_MS) / 1000)
    response = web.json_response(
        {
            "method": request.method,
            "path": request.path,
            "raw_path": request.raw_path.partition("?")[0],  # as sent: percent-escapes and all
            "query": request.query_string,
            "headers": [[k, v] for k, v in request.headers.items()],
            "body_size": size,
            "body_sha256": digest.hexdigest(),
        }
    )
    for item in request.query.getall("set_header", ()):
        name, _, value = item.partition(":")
        if name.strip():
            response.headers.add(name.strip(), value.strip())
    return response


def make_app() -> web.Application:
    app = web.Application(client_max_size=0)
    app[SERVED] = [0]
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args()
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:  # pragma: no cover - uvloop is pinned, but the echo works without it
        pass
    web.run_app(make_app(), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
