"""Restart with Redis down: the gateway comes up from its last-known-good snapshot. A
corrupt snapshot is refused: the gateway stays not ready rather than serve an empty
config, and becomes ready once Redis answers."""

from __future__ import annotations

import json
import time

import httpx


def wait_for_snapshot(path, predicate, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            payload = json.loads(path.read_text())
            if predicate(payload):
                return payload
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"snapshot {path} never matched")


def test_restart_with_redis_down_serves_from_snapshot(start_gateway, stage, upstream, tmp_path):
    first = start_gateway(redis_url=stage.redis.url, GATEWAY_SNAPSHOT_INTERVAL_S="0.2")
    alice, charlie = {"X-API-Key": stage.world.alice_key}, {"X-API-Key": stage.world.charlie_key}
    assert httpx.get(f"{first.url}/echo/v2/", headers=alice).status_code == 200
    assert httpx.get(f"{first.url}/echo/v2/", headers=charlie).status_code == 401
    wait_for_snapshot(tmp_path / "snapshot.json", lambda p: len(p["body"]["keys"]) == 2)
    first.stop()
    stage.redis.kill()
    upstream.reset()

    second = start_gateway(redis_url=stage.redis.url)  # waits for /_tollway/ready

    assert httpx.get(f"{second.url}/_tollway/ready").status_code == 200
    assert httpx.get(f"{second.url}/echo/v2/from-snapshot", headers=alice).status_code == 200  # fail_open route
    assert httpx.get(f"{second.url}/echo/v2/", headers=charlie).status_code == 401  # still revoked
    assert httpx.get(f"{second.url}/echo/v1/", headers=alice).status_code == 503  # fail_closed route
    assert httpx.get(f"{second.url}/nope/v1/", headers=alice).status_code == 404
    assert upstream.served() == 1


def test_corrupt_snapshot_is_refused_and_gateway_stays_not_ready(start_gateway, stage, tmp_path):
    first = start_gateway(redis_url=stage.redis.url)
    snapshot = tmp_path / "snapshot.json"
    payload = wait_for_snapshot(snapshot, lambda p: p["body"]["routes"])
    first.stop()
    stage.redis.kill()
    # One route silently edited: valid JSON, wrong checksum.
    field = next(iter(payload["body"]["routes"]))
    payload["body"]["routes"][field] = payload["body"]["routes"][field].replace("published", "retired")
    snapshot.write_text(json.dumps(payload))

    second = start_gateway(redis_url=stage.redis.url, wait="listening")
    for _ in range(10):
        r = httpx.get(f"{second.url}/_tollway/ready")
        assert r.status_code == 503
        time.sleep(0.1)
    r = httpx.get(f"{second.url}/echo/v2/", headers={"X-API-Key": stage.world.alice_key})
    assert r.status_code == 503
    assert r.json()["type"].endswith("/not-ready")
    assert "snapshot refused" in second.log()

    from tests.gateway.conftest import restart_redis

    restart_redis(stage.redis)
    second.wait_ready(timeout=10)


def test_truncated_snapshot_is_refused(start_gateway, stage, tmp_path):
    first = start_gateway(redis_url=stage.redis.url)
    snapshot = tmp_path / "snapshot.json"
    wait_for_snapshot(snapshot, lambda p: p["body"]["routes"])
    first.stop()
    stage.redis.kill()
    snapshot.write_bytes(snapshot.read_bytes()[:100])

    second = start_gateway(redis_url=stage.redis.url, wait="listening")
    time.sleep(0.5)
    assert httpx.get(f"{second.url}/_tollway/ready").status_code == 503
