"""Many nodes: separate gateway processes sharing one Redis (own snapshot and spill
folders) announce themselves in Redis; during a Redis outage, fail_open divides the
plan's rate by the whole fleet's worker count, so two nodes together admit at most the
plan's rate. And fail_closed holds for every plan, unlimited ones included."""

from __future__ import annotations

import time

import httpx

from tests.gateway.conftest import ALICE_APP, ECHO_API_ID, fire, grant, wait_until


def fleet_workers(url: str) -> float:
    for line in httpx.get(f"{url}/_tollway/metrics").text.splitlines():
        if line.startswith("tollway_gateway_fleet_workers "):
            return float(line.split()[1])
    return 0.0


def node(start_gateway, tmp_path, stage, name: str):
    return start_gateway(
        redis_url=stage.redis.url,
        workers=2,
        GATEWAY_NODE_ID=name,
        GATEWAY_NODE_ANNOUNCE_S="0.2",
        GATEWAY_SNAPSHOT_PATH=str(tmp_path / name / "snapshot.json"),
        GATEWAY_SPILL_DIR=str(tmp_path / name / "spill"),
        # This is about the local shares alone: no admission leases, which would hold part of
        # a 20/min plan during the warm-up and spend what is left of it after Redis dies.
        GATEWAY_RATE_LIMIT_LEASE_MS="0",
    )


def test_two_nodes_in_fail_open_admit_at_most_the_plan_rate_in_total(start_gateway, stage, upstream, tmp_path):
    stage.publish.application(ALICE_APP, {ECHO_API_ID: grant(7301, rate_per_minute=20, quota_per_day=1000)})
    a = node(start_gateway, tmp_path, stage, "node-a")
    b = node(start_gateway, tmp_path, stage, "node-b")
    # Both nodes know the fleet: 2 nodes x 2 workers.
    assert wait_until(lambda: fleet_workers(a.url) == 4 and fleet_workers(b.url) == 4, timeout=10)
    headers = {"X-API-Key": stage.world.alice_key}
    for gateway in (a, b):  # every worker learns alice's key while Redis is up
        assert {s for s, _, _ in fire([("GET", f"{gateway.url}/echo/v2/warm", headers)] * 8)} == {200}
    upstream.reset()

    stage.redis.kill()
    results = fire([("GET", f"{g.url}/echo/v2/", headers) for g in (a, b) for _ in range(60)])

    statuses = [status for status, _, _ in results]
    assert 503 not in statuses
    # 20 per minute over the fleet's 4 workers: 5 each, at most 20 in all (one node's
    # share per node, as before, would be 10 per worker and up to 40).
    assert 5 <= statuses.count(200) <= 20
    assert statuses.count(200) + statuses.count(429) == 120
    assert upstream.served() == statuses.count(200)
    # The fleet's size is kept through the outage.
    assert fleet_workers(a.url) == 4


def test_unlimited_plans_honour_fail_closed(start_gateway, stage, upstream):
    stage.publish.application(ALICE_APP, {ECHO_API_ID: grant(7302)})  # no limit in any dimension
    gateway = start_gateway(redis_url=stage.redis.url, GATEWAY_GENERATION_POLL_S="0.1")
    headers = {"X-API-Key": stage.world.alice_key}
    assert httpx.get(f"{gateway.url}/echo/v1/", headers=headers).status_code == 200  # fail_closed version
    assert httpx.get(f"{gateway.url}/echo/v2/", headers=headers).status_code == 200  # fail_open version

    stage.redis.kill()
    killed = time.monotonic()
    # No request of an unlimited plan asks Redis; the outage is known from the
    # generation poll (every 0.1 s here, 0.5 s by default).
    assert wait_until(lambda: httpx.get(f"{gateway.url}/echo/v1/", headers=headers).status_code == 503, timeout=3)
    assert time.monotonic() - killed < 2
    upstream.reset()
    for _ in range(5):
        r = httpx.get(f"{gateway.url}/echo/v1/", headers=headers)
        assert r.status_code == 503
        assert r.json()["type"].endswith("/limiter-unavailable")
        assert r.headers["Retry-After"] == "1"
    assert upstream.served() == 0
    assert httpx.get(f"{gateway.url}/echo/v2/", headers=headers).status_code == 200
