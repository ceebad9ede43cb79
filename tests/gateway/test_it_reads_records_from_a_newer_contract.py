"""Rolling upgrade: a gateway at contract vN reads what a portal at vN+1 wrote, records
with fields it does not know (top level and nested) included, and decodes records with
a field of the wrong type to a clear error, never to a half-built record."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from gateway import contract
from tests.gateway.conftest import ALICE_APP, ECHO_API_ID, SECRET, Publisher, grant

TOKEN = "NewerPortalTokenValue0123456789"


def newer(record: object, **extra: object) -> dict:
    """The record as a newer writer would send it: everything we know plus fields we don't."""
    data = json.loads(record.to_json())  # type: ignore[attr-defined]
    data.update(extra)
    return data


def test_a_gateway_reads_records_a_newer_portal_wrote(start_gateway, redis_client, upstream):
    publish = Publisher(redis_client)
    route = publish.route(upstream.url)
    app = contract.ApplicationRecord(
        application_id=ALICE_APP, organization_id=1, name="alice-app",
        subscriptions={str(ECHO_API_ID): grant(8001, rate_per_minute=100)},
    )
    app_data = newer(app, billing_region="eu")
    app_data["subscriptions"][str(ECHO_API_ID)]["trial_ends_at"] = None
    app_data["subscriptions"][str(ECHO_API_ID)]["limits"]["concurrency"] = 5
    route_data = newer(route, mtls_required=False, canary={"weight": 0})
    route_data["upstreams"][0]["zone"] = "eu-west-1a"
    key = publish.key(ALICE_APP, key_id=1)
    digest = contract.key_hash(key, SECRET.encode())
    key_record = contract.KeyRecord.from_json(redis_client.get(contract.key_key(digest)))
    token = contract.TokenRecord(
        application_id=ALICE_APP, client_id="c", scope="read",
        expires_at="2999-01-01T00:00:00+00:00",
    )

    redis_client.hset(contract.ROUTES_KEY, "echo/v1", json.dumps(route_data))
    redis_client.set(contract.app_key(ALICE_APP), json.dumps(app_data))
    redis_client.set(contract.key_key(digest), json.dumps(newer(key_record, scopes=["read"], last_rotated_by=7)))
    redis_client.set(contract.token_key(contract.token_hash(TOKEN)), json.dumps(newer(token, audience="echo")))

    gateway = start_gateway()
    assert httpx.get(f"{gateway.url}/echo/v1/", headers={"X-API-Key": key}).status_code == 200
    assert httpx.get(f"{gateway.url}/echo/v1/", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200

    # A newer portal's invalidation, with a field we do not know, still revokes.
    revoked = contract.KeyRecord(key_id=1, prefix=key_record.prefix, application_id=ALICE_APP, status="revoked")
    redis_client.set(contract.key_key(digest), json.dumps(newer(revoked, scopes=["read"])))
    generation = int(redis_client.incr(contract.GENERATION_KEY))
    message = {"kind": "key", "id": digest, "generation": generation, "reason": "revoked-by-operator", "v": 2}
    redis_client.publish(contract.INVALIDATION_CHANNEL, json.dumps(message))
    deadline = time.monotonic() + 1.0
    status = 200
    while time.monotonic() < deadline:
        status = httpx.get(f"{gateway.url}/echo/v1/", headers={"X-API-Key": key}).status_code
        if status == 401:
            break
        time.sleep(0.02)
    assert status == 401


def test_an_invalidation_of_a_kind_we_do_not_know_flushes_everything():
    inv = contract.Invalidation.from_json('{"kind":"plan","id":"7","generation":3,"new":1}')
    assert (inv.kind, inv.id, inv.generation) == ("plan", "7", 3)


@pytest.mark.parametrize(
    ("cls", "raw", "names"),
    [
        (contract.Invalidation, '{"kind":"key","id":"x","generation":"7"}', "$.generation"),
        (contract.Invalidation, "not json", "JSON"),
        (contract.KeyRecord, '{"key_id":"1","prefix":"tw_x","application_id":1,"status":"active"}', "$.key_id"),
        (contract.KeyRecord, '{"prefix":"tw_x","application_id":1,"status":"active"}', "key_id"),
        (contract.TokenRecord, '{"application_id":1,"client_id":"c","scope":"s","expires_at":5}', "$.expires_at"),
        (
            contract.ApplicationRecord,
            '{"application_id":1,"organization_id":1,"name":"a","subscriptions":{"1":{"subscription_id":1,'
            '"api_id":1,"plan_id":1,"plan_slug":"f","status":"active","limits":{"rate_per_second":"ten"}}}}',
            "rate_per_second",
        ),
        (contract.RouteRecord, '{"api_id":1,"api_slug":"e","version":"v1","version_id":1,"state":"published",'
                               '"upstreams":"http://x"}', "$.upstreams"),
    ],
)
def test_a_field_of_the_wrong_type_is_a_clear_decode_error(cls, raw, names):
    with pytest.raises(contract.ContractDecodeError) as caught:
        cls.from_json(raw)
    assert isinstance(caught.value, ValueError)
    assert names in str(caught.value)
    assert cls.__name__ in str(caught.value)


def test_records_round_trip():
    app = contract.ApplicationRecord(
        application_id=1, organization_id=2, name="n",
        subscriptions={"1": grant(1, rate_per_second=3, quota_per_month=10)},
    )
    assert contract.ApplicationRecord.from_json(app.to_json()) == app
    token = contract.TokenRecord(application_id=1, client_id="c", scope="s", expires_at="2999-01-01T00:00:00+00:00")
    assert contract.TokenRecord.from_json(token.to_json()) == token
    inv = contract.Invalidation(kind="route", id="echo/v1", generation=9)
    assert contract.Invalidation.from_json(inv.to_json()) == inv
