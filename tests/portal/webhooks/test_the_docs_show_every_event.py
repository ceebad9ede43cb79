"""docs/webhooks.md has an example payload for every event type, and each example has the
shape of what Tollway sends (the same keys, recursively) for the events a test can cause."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest

from portal.catalog import services as catalog
from portal.keys import services as keys
from portal.plans import services as plans
from portal.webhooks import services as webhooks
from portal.webhooks.events import EVENT_TYPES, TEST_EVENT
from portal.webhooks.models import WebhookEvent

DOC = Path(__file__).resolve().parents[3] / "docs" / "webhooks.md"


def _examples() -> dict[str, dict]:
    text = DOC.read_text()
    found = {}
    for name, block in re.findall(r"^### `([a-z_.]+)`\n\n```json\n(.*?)\n```", text, flags=re.S | re.M):
        payload = json.loads(block)
        assert payload["type"] == name
        assert set(payload) == {"type", "timestamp", "data"}
        found[name] = payload
    return found


def _shape(value):
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    return type(value).__name__ if value is not None else "null"


def _same_keys(a, b) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_keys(a[k], b[k]) for k in a)
    return True  # values may differ (null vs a date); keys are the contract


def test_every_event_type_has_an_example():
    assert set(_examples()) == {*EVENT_TYPES, TEST_EVENT}


@pytest.mark.django_db
def test_the_examples_have_the_shape_of_real_events(alice, olivia, acme, alice_app, echo_api, free_plan, pro_plan):
    subscription = plans.subscription_create(application=alice_app, plan=pro_plan, actor=alice)
    subscription = plans.subscription_approve(subscription=subscription, actor=olivia)
    subscription = plans.subscription_change_plan(subscription=subscription, plan=free_plan, actor=alice)
    subscription = plans.subscription_change_plan(subscription=subscription, plan=pro_plan, actor=alice)
    plans.subscription_suspend(subscription=subscription, actor=olivia)
    key = keys.api_key_issue(application=alice_app, actor=alice).key
    keys.api_key_rotate(key=key, grace=dt.timedelta(hours=1), actor=alice)
    keys.api_key_revoke(key=keys.api_key_issue(application=alice_app, actor=alice).key, actor=alice)
    keys.api_key_issue(application=alice_app, expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=3), actor=alice)
    webhooks.webhook_key_expiry_scan()
    v1, _v2 = echo_api.versions.order_by("label")
    catalog.version_transition(version=v1, to_state="retired", actor=olivia)
    plans.subscription_cancel(subscription=subscription, actor=alice)
    webhooks.webhook_event_emit(event_type="metering.lag_exceeded", lag_seconds=42.5, threshold_seconds=30)

    examples = _examples()
    real = {e.event_type: e.data for e in WebhookEvent.objects.order_by("id")}
    assert len(real) >= 11
    for name, data in real.items():
        assert _same_keys(examples[name]["data"], data), (name, _shape(data))
