"""The snapshot holds every worker's cache, not worker 0's alone: each worker writes its
own file next to GATEWAY_SNAPSHOT_PATH and a worker starting with Redis down merges
them, so every key any worker had seen is judged after a cold start."""

from __future__ import annotations

import json
import time

import httpx

from tests.gateway.conftest import ECHO_API_ID, fire, grant

APP = 150


def snapshot_keys(path) -> set[str]:
    try:
        return set(json.loads(path.read_text())["body"]["keys"])
    except (OSError, ValueError, KeyError):
        return set()


def test_a_cold_start_knows_the_keys_every_worker_had_seen(start_gateway, stage, upstream, tmp_path):
    stage.publish.application(APP, {ECHO_API_ID: grant(7401)}, name="many-keys")  # unlimited
    keys = [stage.publish.key(APP, key_id=100 + i) for i in range(12)]
    first = start_gateway(redis_url=stage.redis.url, workers=2, GATEWAY_SNAPSHOT_INTERVAL_S="0.2")
    # Each key is used once, on its own connection: the kernel puts it on one worker or the other.
    for key in keys:
        assert fire([("GET", f"{first.url}/echo/v2/", {"X-API-Key": key})])[0][0] == 200
    files = [tmp_path / "snapshot.json", tmp_path / "snapshot.worker1.json"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(snapshot_keys(files[0]) | snapshot_keys(files[1])) < len(keys):
        time.sleep(0.1)
    per_worker = [snapshot_keys(f) for f in files]
    assert len(per_worker[0] | per_worker[1]) == len(keys)
    assert all(per_worker)  # both workers took some
    first.stop()
    stage.redis.kill()
    upstream.reset()

    second = start_gateway(redis_url=stage.redis.url, workers=2)

    for key in keys:  # fail_open version: served from the merged snapshot
        statuses = {s for s, _, _ in fire([("GET", f"{second.url}/echo/v2/", {"X-API-Key": key})] * 4)}
        assert statuses == {200}, key
    assert httpx.get(f"{second.url}/echo/v2/", headers={"X-API-Key": stage.world.bob_key}).status_code == 503
