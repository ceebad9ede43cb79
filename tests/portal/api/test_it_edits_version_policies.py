"""A version's edge policies over REST: PATCH {"policies": ...} reaches a running gateway
within 1 s; bad policies are a 400 naming each field, and nothing is published;
developers see only what affects a caller (request_validation), operators see all."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import httpx
import pytest

from gateway import contract
from portal.gateway_state.models import PublishOutbox
from tests.gateway.conftest import GatewayProcess, start_echo
from tests.portal.api.conftest import assert_error_shape

PROPAGATION_S = 1.0


def _url(version) -> str:
    return f"/api/v1/apis/{version.api_id}/versions/{version.pk}/"


def _route(redis_client, version) -> contract.RouteRecord:
    raw = redis_client.hget(contract.ROUTES_KEY, contract.route_field(version.api.slug, version.label))
    assert raw is not None
    return contract.RouteRecord.from_json(raw)


@pytest.mark.django_db
def test_a_patched_transform_takes_effect_at_the_gateway_within_a_second(
    client_for, olivia, alice, alice_app, echo_api, free_plan, redis_client, tmp_path: Path,
    django_capture_on_commit_callbacks,
):
    from portal.keys import services as keys
    from portal.plans import services as plans

    echo = start_echo()
    gateway = GatewayProcess(
        redis_url=os.environ["REDIS_URL"], tmp=tmp_path, env={"GATEWAY_KEY_HASH_SECRET": os.environ[
            "TOLLWAY_KEY_HASH_SECRET"]},
    )
    try:
        v2 = echo_api.versions.get(label="v2")
        operator = client_for(olivia)
        with django_capture_on_commit_callbacks(execute=True):
            operator.patch(_url(v2), {"upstreams": [{"url": echo.url}]}, format="json")
            plans.subscription_create(application=alice_app, plan=free_plan, actor=alice)
            key = keys.api_key_issue(application=alice_app, actor=alice).secret
        gateway.start()
        call = f"{gateway.url}/echo/v2/anything"
        before = httpx.get(call, headers={"X-API-Key": key})
        assert before.status_code == 200, before.text
        assert "x-example" not in {k.lower() for k, _ in before.json()["headers"]}

        with django_capture_on_commit_callbacks(execute=True):
            response = operator.patch(
                _url(v2), {"policies": {"request_transform": {"add_headers": {"X-Example": "1"}}}}, format="json"
            )
        assert response.status_code == 200, response.json()
        assert response.json()["policies"] == {"request_transform": {"add_headers": {"X-Example": "1"}}}

        deadline = time.monotonic() + PROPAGATION_S
        while True:
            headers = dict((k.lower(), v) for k, v in httpx.get(call, headers={"X-API-Key": key}).json()["headers"])
            if headers.get("x-example") == "1":
                break
            assert time.monotonic() < deadline, f"X-Example not added within {PROPAGATION_S}s: {headers}"
            time.sleep(0.02)
    finally:
        gateway.stop()
        echo.proc.terminate()
        echo.proc.wait(timeout=10)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("policies", "message"),
    [
        ({"ip_rules": {"allow": ["10.0.0.0/33"]}}, "ip_rules.allow: '10.0.0.0/33' is not an IP address or CIDR"),
        ({"ip_rules": {"deny": ["192.168.1.7/24"]}}, "has host bits set: write 192.168.1.0/24"),
        ({"request_transform": {"remove_headers": ["X-Forwarded-For"]}}, "one of the gateway's own headers"),
        ({"request_transform": {"set_headers": {"Connection": "close"}}}, "Connection is a hop-by-hop header"),
        ({"request_transform": {"rename_headers": {"X-A": "X-Tollway-Plan"}}}, "one of the gateway's own headers"),
        ({"response_transform": {"remove_headers": ["RateLimit-Policy"]}}, "one of the gateway's own headers"),
        ({"request_transform": {"add_headers": {"X-A": "$(password)"}}}, "$(password) is not a known name"),
        ({"request_transform": {"path_prefix": {"match": "public"}}}, "is not a path prefix"),
        ({"request_transfrom": {}}, "request_transfrom: unknown field"),
        ({"request_validation": "enforce"}, "no OpenAPI document"),
        ({"request_validation": "always"}, "request_validation: Invalid enum value 'always'"),
        ({"ip_rules": {"allow": "10.0.0.0/8"}}, "ip_rules.allow: Expected `array`, got `str`"),
        ({"request_transform": {"add_headers": {"X-A": 1}}}, "Expected `str`, got `int`"),
        ([], "Expected `object`, got `array`"),
        ({"upstream_health": {"active": {"interval_s": 0}}}, "upstream_health.active.interval_s: must be at least"),
        ({"upstream_health": {"active": {"timeout_s": -1}}}, "upstream_health.active.timeout_s: must be more than 0"),
        ({"upstream_health": {"active": {"unhealthy_threshold": 0}}},
         "upstream_health.active.unhealthy_threshold: must be at least 1"),
        ({"upstream_health": {"active": {"path": "healthz"}}}, "upstream_health.active.path: 'healthz' is not a path"),
        ({"upstream_health": {"passive": {"eject_s": 0}}}, "upstream_health.passive.eject_s: must be more than 0"),
        ({"upstream_health": {"breaker_failures": 0}}, "upstream_health.breaker_failures: must be at least 1"),
        ({"upstream_health": {"retries": -1}}, "upstream_health.retries: must be between 0 and 10"),
    ],
)
def test_bad_policies_are_a_field_error_and_nothing_is_published(
    client_for, olivia, echo_api, policies, message
):
    v2 = echo_api.versions.get(label="v2")
    PublishOutbox.objects.all().delete()

    response = client_for(olivia).patch(_url(v2), {"policies": policies}, format="json")

    body = assert_error_shape(response, 400)
    assert any(message in problem for problem in body["fields"]["policies"]), body
    v2.refresh_from_db()
    assert v2.policies == {}
    assert not PublishOutbox.objects.exists()


@pytest.mark.django_db
def test_validation_is_accepted_with_a_document_and_published_with_it(
    client_for, olivia, echo_api, redis_client, django_capture_on_commit_callbacks
):
    v2 = echo_api.versions.get(label="v2")
    document = {"openapi": "3.0.3", "info": {"title": "Echo", "version": "2"}, "paths": {"/anything": {"get": {
        "responses": {"200": {"description": "ok"}}}}}}
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(olivia).patch(
            _url(v2), {"openapi": document, "policies": {"request_validation": "report"}}, format="json"
        )
    assert response.status_code == 200, response.json()
    route = _route(redis_client, v2)
    assert route.policies.request_validation == "report"
    # The document goes apart from the route record (routes are all reloaded on any change),
    # named in it by its SHA-256, which the gateway checks and compiles once.
    published = redis_client.get(contract.openapi_key(v2.pk))
    assert json.loads(published) == document
    assert route.openapi_sha256 == hashlib.sha256(published).hexdigest()
    # Without validation the document is withdrawn.
    with django_capture_on_commit_callbacks(execute=True):
        client_for(olivia).patch(_url(v2), {"policies": {}}, format="json")
    assert _route(redis_client, v2).openapi_sha256 is None
    assert redis_client.get(contract.openapi_key(v2.pk)) is None


@pytest.mark.django_db
def test_developers_see_only_what_affects_a_caller(client_for, olivia, alice, echo_api):
    v2 = echo_api.versions.get(label="v2")
    document = {"openapi": "3.0.3", "info": {"title": "Echo", "version": "2"}, "paths": {}}
    policies = {"request_validation": "enforce", "ip_rules": {"allow": ["203.0.113.0/24"]}}
    client_for(olivia).patch(_url(v2), {"openapi": document, "policies": policies}, format="json")

    assert client_for(olivia).get(_url(v2)).json()["policies"] == policies
    assert client_for(alice).get(_url(v2)).json()["policies"] == {"request_validation": "enforce"}


@pytest.mark.django_db
def test_a_document_the_gateway_cannot_validate_with_is_a_field_error(client_for, olivia, echo_api):
    v2 = echo_api.versions.get(label="v2")
    swagger = {"swagger": "2.0", "info": {"title": "Echo", "version": "2"}, "paths": {}}
    PublishOutbox.objects.all().delete()

    response = client_for(olivia).patch(
        _url(v2), {"openapi": swagger, "policies": {"request_validation": "enforce"}}, format="json"
    )

    body = assert_error_shape(response, 400)
    assert body["fields"]["policies"] == [
        "request_validation: the gateway cannot validate with this document: it is version 2.0; only OpenAPI 3.0 "
        "and 3.1 are validated"
    ], body
    assert not PublishOutbox.objects.exists()
    # Removing the document of a validated version is refused the same way.
    document = {"openapi": "3.0.3", "info": {"title": "Echo", "version": "2"}, "paths": {}}
    ok = client_for(olivia).patch(_url(v2), {"openapi": document, "policies": {"request_validation": "enforce"}},
                                  format="json")
    assert ok.status_code == 200, ok.json()
    removed = client_for(olivia).patch(_url(v2), {"openapi": None}, format="json")
    assert any("no OpenAPI document" in p for p in assert_error_shape(removed, 400)["fields"]["policies"])
