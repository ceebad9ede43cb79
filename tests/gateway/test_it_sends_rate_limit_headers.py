"""Headers on every response: IETF RateLimit-Policy and RateLimit for rate and quota, and
X-RateLimit-* for compatibility. Over the rate limit: 429 rate-limited with Retry-After in
seconds; quota exhausted: 429 with another problem type. Overrides apply until they expire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from gateway import contract
from tests.gateway.conftest import ALICE_APP, ECHO_API_ID, grant


def parse(header: str) -> dict[str, dict[str, str]]:
    out = {}
    for item in header.split(","):
        name, *params = item.strip().split(";")
        out[name.strip('"')] = dict(p.split("=") for p in params)
    return out


def test_headers_cover_rate_and_quota(start_gateway, publish, world):
    publish.application(ALICE_APP, {ECHO_API_ID: grant(9101, rate_per_second=50, rate_per_minute=600,
                                                         quota_per_day=1000, quota_per_month=20000)})
    gateway = start_gateway()
    r = httpx.get(f"{gateway.url}/echo/v1/", headers={"X-API-Key": world.alice_key})
    assert r.status_code == 200
    policy = parse(r.headers["RateLimit-Policy"])
    assert policy["second"] == {"q": "50", "w": "1"}
    assert policy["minute"] == {"q": "600", "w": "60"}
    assert policy["day"] == {"q": "1000", "w": "86400"}
    assert policy["month"]["q"] == "20000"
    remaining = parse(r.headers["RateLimit"])
    assert remaining["second"]["r"] == "49"
    assert remaining["minute"]["r"] == "599"
    assert remaining["day"]["r"] == "999"
    assert remaining["month"]["r"] == "19999"
    assert 0 < int(remaining["day"]["t"]) <= 86400
    # Compatibility headers follow the most restrictive dimension.
    assert r.headers["X-RateLimit-Limit"] == "50"
    assert r.headers["X-RateLimit-Remaining"] == "49"
    assert int(r.headers["X-RateLimit-Reset"]) <= 1


def test_over_the_rate_limit_gets_429_with_retry_after(start_gateway, publish, world):
    publish.application(ALICE_APP, {ECHO_API_ID: grant(9102, rate_per_minute=2)})
    gateway = start_gateway()
    headers = {"X-API-Key": world.alice_key}
    assert [httpx.get(f"{gateway.url}/echo/v1/", headers=headers).status_code for _ in range(2)] == [200, 200]
    r = httpx.get(f"{gateway.url}/echo/v1/", headers=headers)
    assert r.status_code == 429
    assert r.json()["type"].endswith("/rate-limited")
    # A token bucket of 2 a minute: the next admission is 30 s after the last one.
    assert 29 <= int(r.headers["Retry-After"]) <= 30
    assert parse(r.headers["RateLimit"])["minute"]["r"] == "0"
    assert r.headers["X-RateLimit-Remaining"] == "0"


def test_burst_20_on_10_per_second_admits_20_at_once_then_10_a_second(start_gateway, publish, world, upstream):
    import time

    from tests.gateway.conftest import fire

    publish.application(ALICE_APP, {ECHO_API_ID: grant(9103, rate_per_second=10, burst=20)})
    gateway = start_gateway()
    headers = {"X-API-Key": world.alice_key}
    url = f"{gateway.url}/echo/v1/"
    httpx.get(f"{gateway.url}/echo/v1/", headers={"X-API-Key": world.bob_key})  # warm the worker up
    upstream.reset()
    time.sleep(2.1)  # the bucket is full (it may have been touched by the warm-up: not alice's)

    started = time.monotonic()
    first = [status for status, _, _ in fire([("GET", url, headers)] * 60)]
    spent = time.monotonic() - started
    # 20 at once; a burst that takes longer than 0.1 s to arrive may meet one refilled token per 0.1 s.
    assert 20 <= first.count(200) <= 20 + int(spent * 10), spent
    # Then 10 a second: for two seconds, ask far more often than that.
    started = time.monotonic()
    later = 0
    while time.monotonic() - started < 2.0:
        later += sum(1 for status, _, _ in fire([("GET", url, headers)] * 10) if status == 200)
        time.sleep(0.05)
    spent = time.monotonic() - started
    assert 18 <= later <= int(spent * 10) + 1, (later, spent)
    assert upstream.served() == first.count(200) + later


def test_unexpired_override_applies_and_expired_one_does_not(start_gateway, publish, world):
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    base = grant(9104, quota_per_day=5)
    live = contract.SubscriptionGrant(**{**base.__dict__, "override_limits": contract.Limits(quota_per_day=500),
                                         "override_expires_at": future})
    publish.application(ALICE_APP, {ECHO_API_ID: live})
    gateway = start_gateway()
    headers = {"X-API-Key": world.alice_key}
    assert parse(httpx.get(f"{gateway.url}/echo/v1/", headers=headers).headers["RateLimit-Policy"])["day"]["q"] == "500"

    expired = contract.SubscriptionGrant(**{**live.__dict__, "override_expires_at": past})
    publish.application(ALICE_APP, {ECHO_API_ID: expired})
    import time

    deadline = time.monotonic() + 1.0
    while True:
        r = httpx.get(f"{gateway.url}/echo/v1/", headers=headers)
        if parse(r.headers["RateLimit-Policy"])["day"]["q"] == "5" or time.monotonic() > deadline:
            break
    assert parse(r.headers["RateLimit-Policy"])["day"]["q"] == "5"


def test_header_values_match_their_definition_for_any_state():
    """The response phase builds these on every request (with RateLimit-Policy made once per
    limiter reply): the values stay what the definition says, ties included."""
    import random
    from types import SimpleNamespace

    from gateway.policies.rate_limit.policy import RateLimitPolicy, policy_header
    from gateway.policies.rate_limit.schema import RateLimitSettings
    from gateway.types import LimitState

    rng = random.Random(16)
    policy = SimpleNamespace(settings=RateLimitSettings())
    assert policy.settings.ietf_headers
    assert policy.settings.legacy_headers
    names = [("second", 1), ("minute", 60), ("day", 86400), ("month", 2_592_000)]
    for _ in range(2000):
        chosen = [d for d in names if rng.random() < 0.6] or names[:1]
        policies = [(n, rng.choice([5, 100, 10**9]), w, rng.randint(0, 3), rng.randint(0, 3)) for n, w in chosen]
        for shared in (True, False):  # made by the limiter's reply, or not (computed on the spot)
            ctx = SimpleNamespace(
                limit_state=LimitState(policies=policies, policy_header=policy_header(policies) if shared else ""),
                response_headers=[],
            )
            RateLimitPolicy.response(policy, ctx)  # type: ignore[arg-type]
            _, quota, _, remaining, reset = min(policies, key=lambda p: (p[3], -p[4]))
            assert ctx.response_headers == [
                ("RateLimit-Policy", ", ".join(f'"{n}";q={q};w={w}' for n, q, w, _, _ in policies)),
                ("RateLimit", ", ".join(f'"{n}";r={r};t={t}' for n, _, _, r, t in policies)),
                ("X-RateLimit-Limit", str(quota)),
                ("X-RateLimit-Remaining", str(remaining)),
                ("X-RateLimit-Reset", str(reset)),
            ]
