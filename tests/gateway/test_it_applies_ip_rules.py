"""A version's ip_rules: deny wins, an allow list admits only its addresses, an application's
rules replace the version's; X-Forwarded-For counts only from a trusted proxy. A refusal
is 403 problem+json that never reaches the upstream nor counts against the rate limit;
what is admitted reaches the upstream unchanged."""

from __future__ import annotations

import httpx

from gateway import contract
from gateway.route_policies import IpRules, VersionPolicies
from tests.gateway.conftest import ALICE_APP, BOB_APP, ECHO_API_ID, grant


def rules(**kw) -> VersionPolicies:
    return VersionPolicies(ip_rules=IpRules(**kw))


def publish_app(publish, application_id, grants, ip_rules=None):
    record = contract.ApplicationRecord(
        application_id=application_id, organization_id=application_id * 10, name="app",
        subscriptions={str(api_id): g for api_id, g in grants.items()}, ip_rules=ip_rules,
    )
    publish.client.set(contract.app_key(application_id), record.to_json())
    publish._announce("app", str(application_id))


def test_deny_and_allow_lists_of_a_version(start_gateway, publish, world, upstream):
    publish.route(upstream.url, version="v1", policies=rules(deny=("127.0.0.0/8",)))
    publish.route(upstream.url, version="v2", policies=rules(allow=("10.0.0.0/8", "::1/128")))
    publish.route(upstream.url, version="v3", policies=rules(allow=("127.0.0.1",)))
    publish.route(upstream.url, version="v4", policies=rules(allow=("127.0.0.0/8",), deny=("127.0.0.1",)))
    publish.application(ALICE_APP, {ECHO_API_ID: grant(5501, rate_per_minute=100)})
    gateway = start_gateway()
    key = {"X-API-Key": world.alice_key}

    denied = httpx.get(f"{gateway.url}/echo/v1/anything", headers=key)
    not_listed = httpx.get(f"{gateway.url}/echo/v2/anything", headers=key)
    listed = httpx.get(f"{gateway.url}/echo/v3/anything", headers=key)
    deny_wins = httpx.get(f"{gateway.url}/echo/v4/anything", headers=key)

    for r in (denied, not_listed, deny_wins):
        assert r.status_code == 403
        assert r.headers["Content-Type"] == "application/problem+json"
        assert r.json()["type"].endswith("/ip-not-allowed")
    assert listed.status_code == 200
    assert listed.json()["path"] == "/anything"
    assert upstream.served() == 1  # refusals never reached the upstream
    # ... nor counted against the rate limit: only the admitted call did.
    assert listed.headers["X-RateLimit-Remaining"] == "99"


def test_an_applications_rules_replace_the_versions(start_gateway, publish, world, upstream):
    publish.route(upstream.url, policies=rules(deny=("127.0.0.0/8",)))
    publish_app(publish, ALICE_APP, {ECHO_API_ID: grant(5502)}, ip_rules=IpRules(allow=("127.0.0.1",)))
    publish_app(publish, BOB_APP, {ECHO_API_ID: grant(5503)})
    bob = publish.key(BOB_APP, key_id=22)
    gateway = start_gateway()

    assert httpx.get(f"{gateway.url}/echo/v1/anything", headers={"X-API-Key": world.alice_key}).status_code == 200
    assert httpx.get(f"{gateway.url}/echo/v1/anything", headers={"X-API-Key": bob}).status_code == 403


def test_x_forwarded_for_counts_only_from_a_trusted_proxy(start_gateway, publish, world, upstream):
    publish.route(upstream.url, policies=rules(allow=("203.0.113.0/24",)))
    untrusting = start_gateway()
    trusting = start_gateway(GATEWAY_TRUSTED_PROXIES="127.0.0.1/32")
    partner = {"X-API-Key": world.alice_key, "X-Forwarded-For": "203.0.113.9"}
    spoofed = {"X-API-Key": world.alice_key, "X-Forwarded-For": "203.0.113.9, 198.51.100.4"}

    assert httpx.get(f"{untrusting.url}/echo/v1/anything", headers=partner).status_code == 403
    through_proxy = httpx.get(f"{trusting.url}/echo/v1/anything", headers=partner)
    assert through_proxy.status_code == 200
    # The upstream still learns the whole chain, with our peer appended.
    forwarded = dict((k.lower(), v) for k, v in through_proxy.json()["headers"])["x-forwarded-for"]
    assert forwarded == "203.0.113.9, 127.0.0.1"
    # The right-most untrusted hop is the client: a prepended "allowed" address does not help.
    assert httpx.get(f"{trusting.url}/echo/v1/anything", headers=spoofed).status_code == 403


def test_a_version_without_rules_admits_everyone(start_gateway, publish, world, upstream):
    publish.route(upstream.url, policies=VersionPolicies())
    gateway = start_gateway()
    assert httpx.get(f"{gateway.url}/echo/v1/anything", headers={"X-API-Key": world.alice_key}).status_code == 200
