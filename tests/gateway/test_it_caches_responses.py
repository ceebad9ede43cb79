"""A version's cache: a second GET is answered from the worker's memory (the upstream's
count does not move) with ``Cache-Status: Tollway; hit``; Vary, no-store, private and the
request's no-cache are honoured; applications share entries only when the version says
``shared``; a hit is still authenticated, rate limited and metered. A version without
``cache`` never answers from it."""

from __future__ import annotations

import httpx
import pytest

from gateway.route_policies import PoliciesInvalid, ResponseCache, VersionPolicies, policies_check
from tests.gateway.conftest import ALICE_APP, BOB_APP, ECHO_API_ID, grant, wait_until
from tests.gateway.metering import stream_requests


def cached(**kw) -> VersionPolicies:
    return VersionPolicies(cache=ResponseCache(**kw))


def get(gateway, path, key, **headers):
    return httpx.get(f"{gateway.url}/echo/v1{path}", headers={"X-API-Key": key, **headers})


def request_id_seen(response) -> str:
    """The X-Request-ID the upstream received: which request its answer was made for."""
    return dict((k.lower(), v) for k, v in response.json()["headers"])["x-request-id"]


MAX_AGE = "?set_header=Cache-Control:max-age%3D60"


def test_a_second_get_is_a_hit_and_never_reaches_the_upstream(start_gateway, publish, world, upstream):
    publish.route(upstream.url, policies=cached(ttl_s=30))
    gateway = start_gateway()

    first = get(gateway, "/anything" + MAX_AGE, world.alice_key)
    second = get(gateway, "/anything" + MAX_AGE, world.alice_key)
    head = httpx.head(f"{gateway.url}/echo/v1/anything{MAX_AGE}", headers={"X-API-Key": world.alice_key})

    assert first.headers["Cache-Status"] == "Tollway; fwd=uri-miss; stored"
    assert second.headers["Cache-Status"].startswith("Tollway; hit; ttl=")
    assert head.headers["Cache-Status"].startswith("Tollway; hit; ttl=")
    assert upstream.served() == 1
    assert second.content == first.content  # the stored answer, made for the first request
    assert request_id_seen(second) == first.headers["X-Request-ID"]
    assert second.headers["X-Request-ID"] != first.headers["X-Request-ID"]  # but the gateway's own are fresh
    assert second.headers["Cache-Control"] == "max-age=60"
    assert int(second.headers["Age"]) >= 0
    assert int(second.headers["Cache-Status"].rpartition("=")[2]) <= 30  # the version's ceiling, not 60
    assert head.content == b""
    assert head.headers["Content-Length"] == str(len(first.content))
    # A different query is a different resource.
    assert get(gateway, "/anything" + MAX_AGE + "&x=1", world.alice_key).headers["Cache-Status"].endswith("stored")
    assert upstream.served() == 2


def test_vary_keys_entries_by_the_named_request_headers(start_gateway, publish, world, upstream):
    publish.route(upstream.url, policies=cached(ttl_s=30))
    gateway = start_gateway()
    path = "/v" + MAX_AGE + "&set_header=Vary:Accept-Language"

    en = get(gateway, path, world.alice_key, **{"Accept-Language": "en"})
    fr = get(gateway, path, world.alice_key, **{"Accept-Language": "fr"})
    en_again = get(gateway, path, world.alice_key, **{"Accept-Language": "en"})
    fr_again = get(gateway, path, world.alice_key, **{"Accept-Language": "fr"})

    assert fr.headers["Cache-Status"] == "Tollway; fwd=vary-miss; stored"
    assert en_again.headers["Cache-Status"].startswith("Tollway; hit")
    assert fr_again.headers["Cache-Status"].startswith("Tollway; hit")
    assert request_id_seen(en_again) == en.headers["X-Request-ID"]
    assert request_id_seen(fr_again) == fr.headers["X-Request-ID"]
    assert upstream.served() == 2


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("?set_header=Cache-Control:no-store", "cache-control"),
        ("?set_header=Cache-Control:private,max-age%3D60", "cache-control"),
        ("?set_header=Cache-Control:no-cache", "cache-control"),
        (MAX_AGE + "&set_header=Set-Cookie:s%3D1", "set-cookie"),
        (MAX_AGE + "&set_header=Vary:*", "vary"),
        ("", "no-ttl"),  # no freshness and no default_ttl_s
    ],
)
def test_what_the_upstream_forbids_is_not_stored(start_gateway, publish, world, upstream, query, detail):
    publish.route(upstream.url, policies=cached(ttl_s=30))
    gateway = start_gateway()
    first = get(gateway, "/anything" + query, world.alice_key)
    second = get(gateway, "/anything" + query, world.alice_key)
    assert first.headers["Cache-Status"] == f"Tollway; fwd=uri-miss; detail={detail}"
    assert second.headers["Cache-Status"] == f"Tollway; fwd=uri-miss; detail={detail}"
    assert upstream.served() == 2


def test_default_ttl_stores_responses_without_one_and_a_request_may_bypass(start_gateway, publish, world, upstream):
    publish.route(upstream.url, policies=cached(ttl_s=30, default_ttl_s=10))
    gateway = start_gateway()
    get(gateway, "/plain", world.alice_key)
    assert get(gateway, "/plain", world.alice_key).headers["Cache-Status"].startswith("Tollway; hit; ttl=")
    # no-cache: asks the upstream again and stores the fresh answer; no-store: neither.
    refreshed = get(gateway, "/plain", world.alice_key, **{"Cache-Control": "no-cache"})
    assert refreshed.headers["Cache-Status"] == "Tollway; fwd=request; stored"
    untouched = get(gateway, "/plain", world.alice_key, **{"Cache-Control": "no-store"})
    assert untouched.headers["Cache-Status"] == "Tollway; fwd=request"
    latest = get(gateway, "/plain", world.alice_key)
    assert request_id_seen(latest) == refreshed.headers["X-Request-ID"]
    assert upstream.served() == 3


def _bob(publish) -> str:
    publish.application(BOB_APP, {ECHO_API_ID: grant(6602)})
    return publish.key(BOB_APP, key_id=22)


def test_applications_share_entries_only_when_the_version_says_so(start_gateway, publish, world, upstream):
    publish.route(upstream.url, policies=cached(ttl_s=30))
    publish.route(upstream.url, version="v2", policies=cached(ttl_s=30, shared=True))
    bob = _bob(publish)
    gateway = start_gateway()

    get(gateway, "/anything" + MAX_AGE, world.alice_key)
    bobs = get(gateway, "/anything" + MAX_AGE, bob)
    assert bobs.headers["Cache-Status"] == "Tollway; fwd=uri-miss; stored"
    assert upstream.served() == 2

    v2 = f"{gateway.url}/echo/v2/anything{MAX_AGE}"
    httpx.get(v2, headers={"X-API-Key": world.alice_key})
    shared = httpx.get(v2, headers={"X-API-Key": bob})
    assert shared.headers["Cache-Status"].startswith("Tollway; hit")
    assert upstream.served() == 3
    # A caller without a valid key gets no hit: authentication runs first.
    assert httpx.get(v2, headers={"X-API-Key": world.charlie_key}).status_code == 401
    assert httpx.get(v2).status_code == 401


def test_hits_are_still_limited_and_metered(start_gateway, publish, world, upstream, redis_client):
    publish.route(upstream.url, policies=cached(ttl_s=30))
    publish.application(ALICE_APP, {ECHO_API_ID: grant(6601, rate_per_minute=3)})
    gateway = start_gateway()

    statuses = [get(gateway, "/anything" + MAX_AGE, world.alice_key) for _ in range(4)]

    assert [r.status_code for r in statuses] == [200, 200, 200, 429]
    assert [r.headers.get("Cache-Status", "")[:13] for r in statuses[:3]] == ["Tollway; fwd="] + ["Tollway; hit;"] * 2
    assert statuses[2].headers["X-RateLimit-Remaining"] == "0"  # the current request's headers, not stored ones
    assert "Cache-Status" not in statuses[3].headers
    assert upstream.served() == 1
    metered = wait_until(lambda: len(stream_requests(redis_client)) >= 4 and stream_requests(redis_client))
    assert [(r.status, r.decision, r.subscription_id) for r in metered] == [
        (200, "allowed", 6601), (200, "allowed", 6601), (200, "allowed", 6601), (429, "rate_limited", 6601)
    ]
    assert metered[1].bytes_out == len(statuses[1].content)


def test_a_version_without_cache_never_answers_from_it(start_gateway, publish, world, upstream):
    gateway = start_gateway()
    first = get(gateway, "/anything" + MAX_AGE, world.alice_key)
    second = get(gateway, "/anything" + MAX_AGE, world.alice_key)
    assert "Cache-Status" not in first.headers
    assert "Cache-Status" not in second.headers
    assert request_id_seen(second) == second.headers["X-Request-ID"]
    assert upstream.served() == 2


@pytest.mark.parametrize("ttl", [0, -5])
def test_a_ttl_of_zero_or_below_is_a_field_error(ttl):
    with pytest.raises(PoliciesInvalid) as caught:
        policies_check({"cache": {"ttl_s": ttl}})
    assert caught.value.problems == [
        f"cache.ttl_s: {ttl} caches nothing: give at least 1 second (leave cache out to switch it off)"
    ]
    with pytest.raises(PoliciesInvalid):
        policies_check({"cache": {"ttl_s": 10, "default_ttl_s": 0}})
    with pytest.raises(PoliciesInvalid):
        policies_check({"cache": {"ttl_s": 10, "default_ttl_s": 20}})
    assert policies_check({"cache": {"ttl_s": 10, "shared": True}}).cache == ResponseCache(ttl_s=10, shared=True)


def test_each_worker_keeps_at_most_its_bounds_least_recently_used_first(start_gateway, publish, world, upstream):
    publish.route(upstream.url, policies=cached(ttl_s=30))
    gateway = start_gateway(GATEWAY_CACHE_MAX_ENTRIES="2", GATEWAY_CACHE_MAX_ENTRY_BYTES="2000")

    def status(path):
        return get(gateway, path + MAX_AGE, world.alice_key).headers["Cache-Status"]

    assert status("/a").endswith("stored")
    assert status("/b").endswith("stored")
    assert status("/a").startswith("Tollway; hit")  # /a is now the most recently used
    assert status("/c").endswith("stored")  # evicts /b, the least recently used
    assert status("/a").startswith("Tollway; hit")
    assert status("/b") == "Tollway; fwd=uri-miss; stored"
    assert upstream.served() == 4
    # Larger than GATEWAY_CACHE_MAX_ENTRY_BYTES: never stored.
    big = "/big" + MAX_AGE + "&pad=" + "x" * 2000
    assert get(gateway, big, world.alice_key).headers["Cache-Status"] == "Tollway; fwd=uri-miss; detail=size"


def test_the_byte_bound_evicts_too(start_gateway, publish, world, upstream):
    publish.route(upstream.url, policies=cached(ttl_s=30))
    first = get(start_gateway(), "/x" + MAX_AGE, world.alice_key)
    size = len(first.content) + sum(len(k) + len(v) for k, v in first.headers.items()) + 256  # about one entry
    gateway = start_gateway(GATEWAY_CACHE_MAX_BYTES=str(int(size * 2.5)))  # room for two answers, not three

    def status(path):
        return get(gateway, path + MAX_AGE, world.alice_key).headers["Cache-Status"]

    for path in ("/a", "/b", "/c"):
        assert status(path).endswith("stored")
    assert status("/a") == "Tollway; fwd=uri-miss; stored"
    assert status("/c").startswith("Tollway; hit")
