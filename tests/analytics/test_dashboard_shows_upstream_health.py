"""The operators' dashboard shows each live gateway node's view of its upstream targets,
read from the hash the gateway publishes (contract.health_key; the gateway side is
tests/gateway/test_it_checks_upstream_health.py). A malformed field is skipped, not a 500."""

from __future__ import annotations

import json
import time

from gateway import contract


def test_the_dashboard_lists_targets_out_of_the_rotation(metering_redis, redis_client, olivia, client):
    client.force_login(olivia)
    redis_client.zadd(contract.FLEET_NODES_KEY, {"node-a": int(time.time() * 1000) + 60_000})
    redis_client.hset(contract.health_key("node-a"), mapping={
        "echo/v1 http://10.0.0.1:80": json.dumps({"healthy": False, "reason": "health check: status 500", "at": 1}),
        "echo/v1 http://10.0.0.2:80": json.dumps({"healthy": True, "reason": "", "at": 1}),
        "echo/v2 http://10.0.0.3:80": "not json",
    })
    page = client.get("/analytics/").content.decode()
    assert 'id="upstream-health-table"' in page
    assert '<strong id="upstream-unhealthy">1</strong> of 2 targets' in page
    assert "http://10.0.0.1:80" in page
    assert "health check: status 500" in page
    assert "http://10.0.0.3:80" not in page


def test_without_reports_the_panel_says_so(metering_redis, redis_client, olivia, client):
    client.force_login(olivia)
    page = client.get("/analytics/").content.decode()
    assert 'id="upstream-health"' in page
    assert "no gateway node is reporting" in page
