"""The response classes every gateway answer is made of, so that its ``Server`` header is ours.

aiohttp adds ``Server: Python/3.x aiohttp/3.y`` to any response without one, which
scanners report as version disclosure. Every response here instead carries the
configured name (``GATEWAY_SERVER_HEADER``, default ``Tollway``), or none at all. A
``Server`` header already set (the upstream's, on a proxied response) is left alone.

The name comes from the connection's protocol (``server_header``, set per worker from
the config), so no module-level state is needed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web

from gateway.config import DEFAULT_SERVER_HEADER


def _server_header(response: web.StreamResponse) -> str:
    request = response._req
    protocol = request.protocol if request is not None else None
    value = getattr(protocol, "server_header", DEFAULT_SERVER_HEADER)
    return value if isinstance(value, str) else DEFAULT_SERVER_HEADER


async def _prepare_with_server(response: web.StreamResponse, prepare: Callable[[], Awaitable[None]]) -> None:
    headers = response.headers
    if hdrs.SERVER in headers:
        await prepare()
        return
    name = _server_header(response)
    if name:
        headers[hdrs.SERVER] = name
    await prepare()
    if not name:
        headers.popall(hdrs.SERVER, None)  # aiohttp's default, added just now


class StreamResponse(web.StreamResponse):
    async def _prepare_headers(self) -> None:
        await _prepare_with_server(self, super()._prepare_headers)


class Response(web.Response):
    async def _prepare_headers(self) -> None:
        await _prepare_with_server(self, super()._prepare_headers)
