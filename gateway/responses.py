"""The response classes every gateway answer is made of, so that its ``Server`` header is ours,
and the common answer costs one serialization and one write.

aiohttp adds ``Server: Python/3.x aiohttp/3.y`` to any response without one, which
scanners report as version disclosure. Every response here instead carries the
configured name (``GATEWAY_SERVER_HEADER``, default ``Tollway``), or none at all. A
``Server`` header already set (the upstream's, on a proxied response) is left alone.

The name comes from the connection's protocol (``server_header``, set per worker from
the config), so no module-level state is needed.

**The whole-answer path.** Most answers are a ``Response`` with a small ``bytes`` body:
a proxied response with a known length, a problem document, a built-in endpoint.
aiohttp sends one through ``prepare`` -> ``_start`` -> ``_prepare_headers`` ->
``_prepare_hook`` -> ``_write_headers`` -> ``write_headers`` and then ``write_eof``, a
chain of coroutines and property reads that was a measurable share of a request's CPU
(docs/performance.md, "the server side"). ``Response.prepare`` below does for such an
answer exactly what that chain decides for it (Content-Length, a default Content-Type,
Date, Server, Connection from the keep-alive decision, the status line in the request's
version), serializes status line and headers with the serializer aiohttp's writer uses
(its header-injection check included), and writes them with the body in one
``transport.write``, advancing the writer's ``output_size`` (what ``handle_error`` reads)
and awaiting its ``drain()`` (back-pressure) as aiohttp's ``write_eof`` would. The
response is then sent (``prepared``, ``keep_alive`` and ``body_length`` as aiohttp's path
leaves them), so aiohttp's ``finish_response`` finds nothing left to do, and its
connection handling (keep-alive, ``Connection: close``, lingering, pipelining) reads the
same ``keep_alive`` it always did. Anything unusual takes aiohttp's own path: HEAD, 1xx,
204, 304, CONNECT, an HTTP version other than 1.0/1.1, a body other than ``bytes`` or none, a
Content-Length already set, cookies, compression or chunking; there the
``_prepare_headers`` overrides below still name the server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.client_exceptions import ClientConnectionResetError
from aiohttp.helpers import rfc822_formatted_time
from aiohttp.http import HttpVersion, HttpVersion10, HttpVersion11
from aiohttp.http_writer import _serialize_headers  # the C serializer aiohttp's writer uses
from aiohttp.web_request import BaseRequest
from multidict import CIMultiDict

from gateway.config import DEFAULT_SERVER_HEADER

CONTENT_LENGTH = hdrs.CONTENT_LENGTH
CONTENT_TYPE = hdrs.CONTENT_TYPE
CONNECTION = hdrs.CONNECTION
DATE = hdrs.DATE
SERVER = hdrs.SERVER


def _server_header(response: web.StreamResponse) -> str:
    request = response._req
    protocol = request.protocol if request is not None else None
    return _protocol_server_header(protocol)


def _protocol_server_header(protocol: object) -> str:
    value = getattr(protocol, "server_header", DEFAULT_SERVER_HEADER)
    return value if isinstance(value, str) else DEFAULT_SERVER_HEADER


def _name_server(response: web.StreamResponse) -> bool:
    """Sets the Server header unless one is set; True when it must be left out (aiohttp's
    default, which its ``_prepare_headers`` adds, is to be removed afterwards)."""
    headers = response._headers
    if SERVER in headers:
        return False
    name = _server_header(response)
    if name:
        headers[SERVER] = name
        return False
    return True


async def _prepare_with_server(response: web.StreamResponse, prepare: Callable[[], Awaitable[None]]) -> None:
    """The Server header around aiohttp's ``_prepare_headers``, for response classes not
    defined here (the websocket relay's)."""
    unnamed = _name_server(response)
    await prepare()
    if unnamed:
        response._headers.popall(SERVER, None)


class StreamResponse(web.StreamResponse):
    async def _prepare_headers(self) -> None:
        unnamed = _name_server(self)  # inline, not through _prepare_with_server: one coroutine less
        await super()._prepare_headers()
        if unnamed:
            self._headers.popall(SERVER, None)


class Response(web.Response):
    async def _prepare_headers(self) -> None:  # aiohttp's path, where the whole-answer one does not apply
        unnamed = _name_server(self)
        await super()._prepare_headers()
        if unnamed:
            self._headers.popall(SERVER, None)

    async def prepare(self, request: BaseRequest) -> AbstractStreamWriter | None:
        if (
            self._eof_sent
            or self._payload_writer is not None
            or (type(self._body) is not bytes and self._body is not None)
            or self._compression
            or self._chunked
            or self._cookies
        ):
            return await super().prepare(request)
        status = self._status
        method = request.method
        version = request.version
        if (
            status < 200
            or status == 204
            or status == 304
            or method == "HEAD"
            or method == "CONNECT"
            or (version != HttpVersion11 and version != HttpVersion10)
        ):
            return await super().prepare(request)
        headers = self._headers
        if CONTENT_LENGTH in headers:
            return await super().prepare(request)
        await self._send_whole(request, status, version, headers)
        return None

    async def _send_whole(
        self, request: BaseRequest, status: int, version: HttpVersion, headers: CIMultiDict[str]
    ) -> None:
        """The status line, the headers and the body, as aiohttp's path would make them, in one write."""
        body = self._body or b""
        assert isinstance(body, bytes)
        self._must_be_empty_body = False
        keep_alive = self._keep_alive
        if keep_alive is None:
            keep_alive = self._keep_alive = request.keep_alive
        if body:
            headers[CONTENT_LENGTH] = str(len(body))
            if CONTENT_TYPE not in headers:
                headers[CONTENT_TYPE] = "application/octet-stream"
        else:
            headers[CONTENT_LENGTH] = "0"
        if DATE not in headers:
            headers[DATE] = rfc822_formatted_time()
        if SERVER not in headers:
            name = _protocol_server_header(request.protocol)
            if name:
                headers[SERVER] = name
        if CONNECTION not in headers:
            if keep_alive:
                if version == HttpVersion10:
                    headers[CONNECTION] = "keep-alive"
            elif version == HttpVersion11:
                headers[CONNECTION] = "close"
        transport = request.transport
        if transport is None or transport.is_closing():
            raise ClientConnectionResetError("Cannot write to closing transport")  # as aiohttp's writer
        http = "HTTP/1.1 " if version == HttpVersion11 else "HTTP/1.0 "
        data = _serialize_headers(f"{http}{status} {self._reason}", headers) + body
        size = len(data)
        writer = request.writer
        writer.length = 0  # the body is out: a stray write() after this sends nothing
        writer.buffer_size += size
        writer.output_size += size  # what handle_error reads: an answer has started
        transport.write(data)
        self._eof_sent = True
        self._body_length = writer.output_size
        await writer.drain()
