"""`gateway_sync` rebuilds the published state exactly, removes what is stale, and is idempotent."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.utils import timezone

from gateway import contract
from portal.gateway_state import publish
from portal.keys import services as keys
from portal.plans import services as plans


def _dump(redis_client) -> dict[str, object]:
    """Every contract key with its value (generation excluded: it counts publishes)."""
    state: dict[str, object] = {}
    for raw in redis_client.scan_iter(match=f"{contract.PREFIX}:*"):
        name = raw.decode()
        if name == contract.GENERATION_KEY:
            continue
        kind = redis_client.type(name).decode()
        state[name] = redis_client.hgetall(name) if kind == "hash" else redis_client.get(name)
    return state


@pytest.fixture
def populated(alice, bob, olivia, alice_app, charlie_app, charlie, free_plan, pro_plan):
    plans.subscription_create(application=alice_app, plan=free_plan, actor=alice)
    sub = plans.subscription_create(application=charlie_app, plan=pro_plan, actor=charlie)
    plans.subscription_approve(subscription=sub, actor=olivia)
    plans.override_create(
        subscription=sub, actor=olivia, expires_at=timezone.now() + dt.timedelta(days=2), quota_per_month=5
    )
    first = keys.api_key_issue(application=alice_app, actor=alice).key
    keys.api_key_rotate(key=first, grace=dt.timedelta(hours=1), actor=alice)
    revoked = keys.api_key_issue(application=charlie_app, actor=charlie).key
    keys.api_key_revoke(key=revoked, actor=charlie)
    keys.api_key_issue(application=charlie_app, expires_at=timezone.now() + dt.timedelta(days=1), actor=charlie)


@pytest.mark.django_db
def test_it_matches_what_incremental_publishing_built(populated, redis_client):
    publish.outbox_flush()  # the incremental path: every change published one by one
    incremental = _dump(redis_client)

    redis_client.flushdb()
    call_command("gateway_sync", stdout=io.StringIO())

    assert _dump(redis_client) == incremental
    assert len([k for k in incremental if ":key:" in k]) == 4
    assert len(redis_client.hgetall(contract.ROUTES_KEY)) == 2


@pytest.mark.django_db
def test_it_removes_stale_and_repairs_tampered_entries(populated, redis_client):
    call_command("gateway_sync", stdout=io.StringIO())
    expected = _dump(redis_client)
    redis_client.set(contract.key_key("0" * 64), "{}")
    redis_client.set(contract.app_key(999999), "{}")
    redis_client.hset(contract.ROUTES_KEY, "ghost/v9", "{}")
    some_key = next(k for k in expected if ":key:" in k)
    redis_client.set(some_key, "tampered")

    out = io.StringIO()
    call_command("gateway_sync", stdout=out)

    assert _dump(redis_client) == expected
    assert "2 stale entries removed" in out.getvalue()


@pytest.mark.django_db
def test_it_is_idempotent_and_announces_a_full_reload(populated, redis_client):
    pubsub = redis_client.pubsub()
    pubsub.subscribe(contract.INVALIDATION_CHANNEL)
    pubsub.get_message(timeout=1)
    call_command("gateway_sync", stdout=io.StringIO())
    first = _dump(redis_client)
    call_command("gateway_sync", stdout=io.StringIO())

    assert _dump(redis_client) == first
    kinds = []
    while (message := pubsub.get_message(timeout=0.5)) is not None:
        if message["type"] == "message":
            kinds.append(contract.Invalidation.from_json(message["data"]).kind)
    assert kinds == ["all", "all"]
    pubsub.close()


@pytest.mark.django_db
def test_it_rebuilds_the_documents_of_validated_versions(populated, redis_client, echo_api, olivia):
    from portal.catalog import services as catalog

    v2 = echo_api.versions.get(label="v2")
    document = {"openapi": "3.0.3", "info": {"title": "Echo", "version": "2"}, "paths": {"/anything": {"get": {
        "responses": {"200": {"description": "ok"}}}}}}
    catalog.version_update(version=v2, actor=olivia, openapi=document, policies={"request_validation": "enforce"})
    publish.outbox_flush()
    incremental = _dump(redis_client)
    assert contract.openapi_key(v2.pk) in incremental

    redis_client.flushdb()
    redis_client.set(contract.openapi_key(987654), b"{}")  # a deleted version's: stale
    call_command("gateway_sync", stdout=io.StringIO())

    assert _dump(redis_client) == incremental
