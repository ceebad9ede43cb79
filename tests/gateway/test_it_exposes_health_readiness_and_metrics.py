"""Built-ins: /_tollway/health, /_tollway/ready (503 until config is loaded) and
/_tollway/metrics in Prometheus format, summed over every worker."""

from __future__ import annotations

import httpx

from tests.gateway.conftest import ALICE_APP, ECHO_API_ID, fire, grant


def samples(text: str, name: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line.startswith(name):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def test_health_and_ready(start_gateway, world):
    gateway = start_gateway()
    assert httpx.get(f"{gateway.url}/_tollway/health").json() == {"status": "ok"}
    assert httpx.get(f"{gateway.url}/_tollway/ready").status_code == 200


def test_not_ready_until_config_is_loaded(start_gateway, tmp_path):
    # Redis nowhere to be found and no snapshot: alive, but not ready.
    gateway = start_gateway(redis_url="redis://127.0.0.1:1/0", wait="listening")
    assert httpx.get(f"{gateway.url}/_tollway/health").status_code == 200
    r = httpx.get(f"{gateway.url}/_tollway/ready")
    assert r.status_code == 503
    assert r.headers["content-type"] == "application/problem+json"


def test_metrics_cover_requests_latency_limiter_redis_and_metering(start_gateway, publish, world):
    publish.application(ALICE_APP, {ECHO_API_ID: grant(9201, rate_per_minute=3)})
    gateway = start_gateway(workers=2)
    headers = {"X-API-Key": world.alice_key}
    results = fire([("GET", f"{gateway.url}/echo/v1/", headers)] * 10)
    assert [s for s, _, _ in results].count(200) == 3
    fire([("GET", f"{gateway.url}/nope/v1/", headers)] * 2)

    text = httpx.get(f"{gateway.url}/_tollway/metrics").text

    requests = samples(text, "tollway_gateway_requests_total")
    assert requests['tollway_gateway_requests_total{api="echo",status="200",version="v1"}'] == 3
    assert requests['tollway_gateway_requests_total{api="echo",status="429",version="v1"}'] == 7
    assert requests['tollway_gateway_requests_total{api="",status="404",version=""}'] == 2
    assert samples(text, "tollway_gateway_request_duration_seconds_count")[
        "tollway_gateway_request_duration_seconds_count"] >= 12
    decisions = samples(text, "tollway_gateway_limiter_decisions_total")
    assert decisions['tollway_gateway_limiter_decisions_total{decision="allowed"}'] == 3
    assert decisions['tollway_gateway_limiter_decisions_total{decision="rate_limited"}'] == 7
    for name in ("tollway_gateway_redis_errors_total", "tollway_gateway_metering_buffer_events",
                 "tollway_gateway_metering_spilled_total", "tollway_gateway_metering_dropped_total"):
        assert samples(text, name), name
