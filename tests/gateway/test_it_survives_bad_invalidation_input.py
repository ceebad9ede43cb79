"""A bad message on the invalidation channel, or a generation counter that is not a
number, is logged once with the offending text and counted; the listener and the
poller go on, so revocations keep arriving within a second (real Redis, real gateway)."""

from __future__ import annotations

import time

import httpx

from gateway import contract
from tests.gateway.conftest import ALICE_APP, SECRET, fire, wait_until

BAD_INVALIDATION = '{"kind":"key","id":"x","generation":"7"}'
NOT_JSON = "this-is-not-json{"
BAD_GENERATION = "not-a-number"


def samples(text: str, name: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line.startswith(name):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def statuses(url: str, headers: dict[str, str], n: int = 16) -> set[int]:
    return {status for status, _, _ in fire([("GET", url, headers)] * n)}


def test_bad_invalidations_and_generation_are_counted_and_revocations_still_arrive(
    start_gateway, redis_client, world
):
    gateway = start_gateway(workers=2, GATEWAY_GENERATION_POLL_S="0.1")
    url, headers = f"{gateway.url}/echo/v1/", {"X-API-Key": world.alice_key}
    assert statuses(url, headers) == {200}

    # Each worker gets both bad messages; the generation counter is garbage from now on.
    assert redis_client.publish(contract.INVALIDATION_CHANNEL, BAD_INVALIDATION) == 2
    assert redis_client.publish(contract.INVALIDATION_CHANNEL, NOT_JSON) == 2
    redis_client.set(contract.GENERATION_KEY, BAD_GENERATION)

    def bad_counts() -> dict[str, float]:
        text = httpx.get(f"{gateway.url}/_tollway/metrics").text
        return samples(text, "tollway_gateway_bad_messages_total")

    counts = wait_until(
        lambda: (c := bad_counts()).get('tollway_gateway_bad_messages_total{source="generation"}', 0) >= 10
        and c.get('tollway_gateway_bad_messages_total{source="invalidation"}', 0) >= 4 and c,
        timeout=5,
    )
    assert counts, bad_counts()
    assert counts['tollway_gateway_bad_messages_total{source="invalidation"}'] == 4  # 2 messages x 2 workers

    # Revoke alice the way the publisher does, but the generation counter cannot be
    # INCRed any more: the message carries generation 0.
    digest = contract.key_hash(world.alice_key, SECRET.encode())
    record = contract.KeyRecord(key_id=1, prefix=contract.key_display_prefix(world.alice_key),
                                application_id=ALICE_APP, status="revoked")
    redis_client.set(contract.key_key(digest), record.to_json())
    redis_client.publish(contract.INVALIDATION_CHANNEL, contract.Invalidation(kind="key", id=digest).to_json())
    revoked_at = time.monotonic()
    while time.monotonic() - revoked_at < 1.0 and statuses(url, headers) != {401}:
        time.sleep(0.02)
    assert time.monotonic() - revoked_at <= 1.0
    assert statuses(url, headers) == {401}

    # Still ready, nothing had to be restarted.
    assert all(httpx.get(f"{gateway.url}/_tollway/ready").status_code == 200 for _ in range(6))
    text = httpx.get(f"{gateway.url}/_tollway/metrics").text
    assert not any(v for v in samples(text, "tollway_gateway_task_restarts_total").values())

    # Logged with the offending text, once per worker, however often it was read.
    lines = gateway.log().splitlines()

    def logged(text: str) -> int:
        return sum(1 for line in lines if text in line)

    assert 1 <= logged('"generation":"7"') <= 2
    assert 1 <= logged(NOT_JSON) <= 2
    assert 1 <= logged(BAD_GENERATION) <= 2
    log = "\n".join(lines)
    assert "Expected `int`, got `str` - at `$.generation`" in log
