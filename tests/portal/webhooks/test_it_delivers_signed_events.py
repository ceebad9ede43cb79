"""Events from real service calls reach a real listener, each signed per Standard Webhooks
(checked with the standardwebhooks package): operators' events only to operators'
endpoints, an organization's events to its own endpoints and never to another's."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import pytest
from django.utils import timezone

from portal.catalog import services as catalog
from portal.keys import services as keys
from portal.plans import services as plans
from portal.webhooks import services as webhooks
from portal.webhooks.events import EVENT_TYPES, event_types_for
from tests.portal.webhooks.conftest import deliver_pending, verified

pytestmark = pytest.mark.django_db


def test_every_change_is_delivered_signed_to_whom_it_concerns(
    listener, olivia, alice, charlie, acme, globex, alice_app, echo_api, free_plan, pro_plan
):
    ops = webhooks.webhook_endpoint_create(
        organization=None, url=listener.url("/ops"), event_types=list(EVENT_TYPES), actor=olivia
    )
    mine = webhooks.webhook_endpoint_create(
        organization=acme, url=listener.url("/acme"), event_types=event_types_for(operator=False), actor=alice
    )
    theirs = webhooks.webhook_endpoint_create(
        organization=globex, url=listener.url("/globex"), event_types=event_types_for(operator=False), actor=charlie
    )
    secrets = {"/ops": ops.secret, "/acme": mine.secret, "/globex": theirs.secret}

    subscription = plans.subscription_create(application=alice_app, plan=pro_plan, actor=alice)  # pending
    subscription = plans.subscription_approve(subscription=subscription, actor=olivia)
    subscription = plans.subscription_change_plan(subscription=subscription, plan=free_plan, actor=alice)  # at once
    subscription = plans.subscription_change_plan(subscription=subscription, plan=pro_plan, actor=alice)  # approval
    subscription = plans.subscription_approve(subscription=subscription, actor=olivia)
    key = keys.api_key_issue(application=alice_app, actor=alice).key
    keys.api_key_rotate(key=key, grace=dt.timedelta(hours=1), actor=alice)
    keys.api_key_revoke(key=key, actor=alice)
    v1, v2 = echo_api.versions.order_by("label")
    catalog.version_transition(version=v2, to_state="deprecated", actor=olivia)
    catalog.version_transition(version=v1, to_state="retired", actor=olivia)
    plans.subscription_suspend(subscription=subscription, actor=olivia)
    plans.subscription_cancel(subscription=subscription, actor=alice)

    outcomes = deliver_pending()

    assert {d.status for d in outcomes} == {"succeeded"}
    got = defaultdict(list)
    for request in listener.received:
        payload = verified(secrets[request.path], request)  # raises unless the signature verifies
        assert request.headers["webhook-id"].startswith("msg_")
        assert abs(int(request.headers["webhook-timestamp"]) - timezone.now().timestamp()) < 60
        assert request.headers["content-type"] == "application/json"
        got[request.path].append(payload["type"])
    developer_view = [
        "subscription.approved",
        "plan_change.approved",
        "plan_change.approved",
        "key.rotated",
        "key.revoked",
        "version.deprecated",
        "version.retired",
        "subscription.suspended",
        "subscription.cancelled",
    ]
    assert sorted(got["/acme"]) == sorted(developer_view)
    assert sorted(got["/ops"]) == sorted([*developer_view, "subscription.requested", "plan_change.requested"])
    assert got["/globex"] == []


def test_the_payload_describes_the_subject(listener, alice, acme, alice_app, free_plan):
    endpoint = webhooks.webhook_endpoint_create(
        organization=acme, url=listener.url(), event_types=["key.rotated", "subscription.cancelled"], actor=alice
    )
    key = keys.api_key_issue(application=alice_app, label="ci", actor=alice).key
    new = keys.api_key_rotate(key=key, grace=dt.timedelta(hours=2), actor=alice).key
    subscription = plans.subscription_create(application=alice_app, plan=free_plan, actor=alice)
    plans.subscription_cancel(subscription=subscription, actor=alice)

    deliver_pending()

    rotated, cancelled = sorted((verified(endpoint.secret, r) for r in listener.received), key=lambda p: p["type"])
    assert rotated["type"] == "key.rotated"
    assert rotated["data"]["key"]["prefix"] == key.prefix
    assert rotated["data"]["key"]["replaced_by"] == {"id": new.pk, "prefix": new.prefix}
    assert rotated["data"]["key"]["status"] == "rotating"
    assert rotated["data"]["key"]["application"] == {"id": alice_app.pk, "name": "Acme Shop", "organization": acme.pk}
    assert cancelled["data"]["subscription"]["status"] == "cancelled"
    assert cancelled["data"]["subscription"]["plan"]["slug"] == "free"
    assert cancelled["data"]["reason"] == "cancelled"
    assert "secret" not in str(rotated)
    assert "key_hash" not in str(rotated)


def test_a_disabled_endpoint_gets_nothing(listener, alice, acme, alice_app):
    endpoint = webhooks.webhook_endpoint_create(
        organization=acme, url=listener.url(), event_types=["key.revoked"], actor=alice
    ).endpoint
    webhooks.webhook_endpoint_update(endpoint=endpoint, actor=alice, is_enabled=False)

    keys.api_key_revoke(key=keys.api_key_issue(application=alice_app, actor=alice).key, actor=alice)
    deliver_pending()

    assert listener.received == []
    assert endpoint.deliveries.count() == 0
