"""A version's websocket policy, with a real WebSocket client (aiohttp's) and the echo's
WebSocket upstream: messages are relayed both ways; the handshake is authenticated and
rate limited; the connection is metered once, when it closes, with its duration and the
bytes each way; idle and lifetime limits close it; revoking the key closes it within a
second. A version without the policy refuses an upgrade with 400 problem+json."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import httpx
import pytest

from gateway.route_policies import PoliciesInvalid, VersionPolicies, WebSocket, policies_check
from tests.gateway.conftest import ALICE_APP, ECHO_API_ID, grant, wait_until
from tests.gateway.metering import stream_requests

UPGRADE = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version": "13",
}


def websocket(**kw) -> VersionPolicies:
    return VersionPolicies(websocket=WebSocket(**kw))


def run(coro):
    return asyncio.run(coro)


async def handshake_status(url: str, headers: dict[str, str]) -> int:
    async with aiohttp.ClientSession() as session:
        try:
            async with session.ws_connect(url, headers=headers):
                return 101
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status


def test_messages_go_both_ways_and_the_connection_is_metered_once(
    start_gateway, publish, world, upstream, redis_client
):
    publish.route(upstream.url, policies=websocket())
    publish.application(ALICE_APP, {ECHO_API_ID: grant(8801)})
    gateway = start_gateway()

    async def talk():
        async with aiohttp.ClientSession() as session, session.ws_connect(
            f"{gateway.url}/echo/v1/stream?room=1", headers={"X-API-Key": world.alice_key}, protocols=("echo",)
        ) as ws:
            assert ws.protocol == "echo"  # the upstream's choice, passed on
            await ws.send_str("hello")
            assert await ws.receive_str(timeout=5) == "hello"
            await ws.send_bytes(b"\x00\x01\x02")
            assert await ws.receive_bytes(timeout=5) == b"\x00\x01\x02"
            await ws.send_str("whoami")
            seen = await ws.receive_str(timeout=5)
            await asyncio.sleep(0.3)
            return seen

    started = time.monotonic()
    seen = run(talk())
    duration_ms = (time.monotonic() - started) * 1000
    handshake = json.loads(seen)
    headers = {k.lower(): v for k, v in handshake["headers"]}
    assert handshake["path"] == "/stream"
    assert handshake["query"] == "room=1"
    assert "x-api-key" not in headers  # the credential never reaches the upstream
    assert headers["x-tollway-subscription"] == "8801"
    assert headers["x-request-id"]
    assert upstream.served() == 1

    metered = wait_until(lambda: stream_requests(redis_client))
    assert len(metered) == 1
    (record,) = metered
    assert (record.status, record.decision, record.method, record.subscription_id) == (101, "allowed", "GET", 8801)
    assert record.bytes_in == len("hello") + 3 + len("whoami")
    assert record.bytes_out == len("hello") + 3 + len(seen.encode())
    assert 300 <= record.latency_ms <= duration_ms + 50  # the connection's whole life


def test_the_handshake_is_authenticated_and_rate_limited(start_gateway, publish, world, upstream):
    publish.route(upstream.url, policies=websocket())
    publish.application(ALICE_APP, {ECHO_API_ID: grant(8802, rate_per_minute=2)})
    gateway = start_gateway()
    url = f"{gateway.url}/echo/v1/stream"

    assert run(handshake_status(url, {})) == 401
    assert run(handshake_status(url, {"X-API-Key": world.charlie_key})) == 401
    assert run(handshake_status(url, {"X-API-Key": world.bob_key})) == 403
    statuses = [run(handshake_status(url, {"X-API-Key": world.alice_key})) for _ in range(3)]
    assert statuses == [101, 101, 429]
    assert upstream.served() == 2


def test_an_upgrade_to_a_version_without_websockets_is_refused(start_gateway, publish, world, upstream):
    gateway = start_gateway()  # world's echo v1 has no policies
    refused = httpx.get(f"{gateway.url}/echo/v1/stream", headers={**UPGRADE, "X-API-Key": world.alice_key})
    assert refused.status_code == 400
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert refused.json()["type"].endswith("/websocket-not-allowed")
    assert run(handshake_status(f"{gateway.url}/echo/v1/stream", {"X-API-Key": world.alice_key})) == 400
    assert upstream.served() == 0
    # A plain GET to the same version is proxied as ever.
    assert httpx.get(f"{gateway.url}/echo/v1/stream", headers={"X-API-Key": world.alice_key}).status_code == 200


def test_a_malformed_handshake_is_refused(start_gateway, publish, world, upstream):
    publish.route(upstream.url, policies=websocket())
    gateway = start_gateway()
    for bad in ({"Sec-WebSocket-Version": "99"}, {"Sec-WebSocket-Key": "short"}):
        refused = httpx.get(f"{gateway.url}/echo/v1/stream", headers={**UPGRADE, **bad, "X-API-Key": world.alice_key})
        assert refused.status_code == 400
        assert refused.json()["type"].endswith("/bad-websocket-handshake")
    assert upstream.served() == 0
    # The well-formed handshake is accepted, in the gateway's name.
    accepted = httpx.get(f"{gateway.url}/echo/v1/stream", headers={**UPGRADE, "X-API-Key": world.alice_key})
    assert accepted.status_code == 101
    assert accepted.headers["Server"] == "Tollway"
    assert accepted.headers["Upgrade"].lower() == "websocket"


async def closed_after(url: str, key: str, *, chatter: float | None = None) -> tuple[int | None, float]:
    """Connect, optionally send a message every ``chatter`` seconds, and wait for the
    gateway to close: (close code, seconds it took)."""
    async with aiohttp.ClientSession() as session, session.ws_connect(url, headers={"X-API-Key": key}) as ws:
        started = time.monotonic()

        async def chat():
            while chatter is not None:
                await ws.send_str("tick")
                await asyncio.sleep(chatter)

        talker = asyncio.create_task(chat())
        try:
            while True:
                message = await ws.receive(timeout=10)
                if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                    return ws.close_code, time.monotonic() - started
        finally:
            talker.cancel()


def test_idle_and_lifetime_limits_close_the_connection(start_gateway, publish, world, upstream):
    publish.route(upstream.url, version="v1", policies=websocket(idle_timeout_s=1, max_lifetime_s=60))
    publish.route(upstream.url, version="v2", policies=websocket(idle_timeout_s=30, max_lifetime_s=2))
    gateway = start_gateway()

    code, took = run(closed_after(f"{gateway.url}/echo/v1/s", world.alice_key))
    assert code == 1001
    assert 0.9 <= took <= 2.5
    # Busy (a message every 0.2 s, so never idle), it still ends at its maximum lifetime.
    code, took = run(closed_after(f"{gateway.url}/echo/v2/s", world.alice_key, chatter=0.2))
    assert code == 1001
    assert 1.9 <= took <= 3.5


def test_revoking_the_key_closes_its_connections_within_a_second(start_gateway, publish, world, upstream):
    publish.route(upstream.url, policies=websocket())
    other = publish.key(ALICE_APP, key_id=9)
    gateway = start_gateway()
    url = f"{gateway.url}/echo/v1/s"

    async def scenario():
        async with aiohttp.ClientSession() as session, session.ws_connect(
            url, headers={"X-API-Key": world.alice_key}
        ) as revoked, session.ws_connect(url, headers={"X-API-Key": other}) as kept:
            await revoked.send_str("hi")
            assert await revoked.receive_str(timeout=5) == "hi"
            started = time.monotonic()
            await asyncio.to_thread(publish.revoke, world.alice_key, ALICE_APP)
            message = await revoked.receive(timeout=5)
            took = time.monotonic() - started
            # The application's other key is untouched.
            await kept.send_str("still here")
            still = await kept.receive_str(timeout=5)
            return message.type, revoked.close_code, took, still

    kind, code, took, still = run(scenario())
    assert kind == aiohttp.WSMsgType.CLOSE
    assert code == 1008
    assert took < 1.0
    assert still == "still here"


def test_a_suspended_subscription_closes_the_applications_connections(start_gateway, publish, world, upstream):
    publish.route(upstream.url, policies=websocket())
    gateway = start_gateway()

    async def scenario():
        async with aiohttp.ClientSession() as session, session.ws_connect(
            f"{gateway.url}/echo/v1/s", headers={"X-API-Key": world.alice_key}
        ) as ws:
            await asyncio.to_thread(publish.application, ALICE_APP, {ECHO_API_ID: grant(1001, status="suspended")})
            message = await ws.receive(timeout=5)
            return message.type, ws.close_code

    assert run(scenario()) == (aiohttp.WSMsgType.CLOSE, 1008)


@pytest.mark.parametrize("field", ["idle_timeout_s", "max_lifetime_s", "max_message_bytes"])
def test_limits_below_one_are_field_errors(field):
    with pytest.raises(PoliciesInvalid) as caught:
        policies_check({"websocket": {field: 0}})
    assert caught.value.problems[0].startswith(f"websocket.{field}: 0 is outside 1 to ")
    assert policies_check({"websocket": {}}).websocket == WebSocket()


def test_a_message_over_the_limit_closes_the_connection(start_gateway, publish, world, upstream):
    publish.route(upstream.url, policies=websocket(max_message_bytes=1024))
    gateway = start_gateway()

    async def scenario():
        async with aiohttp.ClientSession() as session, session.ws_connect(
            f"{gateway.url}/echo/v1/s", headers={"X-API-Key": world.alice_key}
        ) as ws:
            await ws.send_bytes(b"x" * 1000)
            assert await ws.receive_bytes(timeout=5) == b"x" * 1000
            await ws.send_bytes(b"x" * 2000)
            message = await ws.receive(timeout=5)
            return message.type, ws.close_code

    assert run(scenario()) == (aiohttp.WSMsgType.CLOSE, 1009)
