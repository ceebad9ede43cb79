"""The event types, once: name, who may receive it, and how its payload is built.

Services announce an event with its subject (portal/core/changes.py: ``announce_event``);
the builder here turns the subject into the payload's ``data`` and names the
organizations it concerns. Builders read attributes of the subject only, inside the
announcing transaction, so the payload shows the change as committed with it.
docs/webhooks.md shows an example payload of each type (a test keeps them in step).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from portal.plans.selectors import organization_ids_subscribed_to_api

TEST_EVENT = "webhook.test"


@dataclass(frozen=True)
class Occurrence:
    data: dict[str, Any]
    organization_id: int | None = None  # the organization the event is about
    # Organizations whose own endpoints may receive it (operators' endpoints always may).
    audience: list[int] = field(default_factory=list)


Builder = Callable[[Any, dict[str, Any]], Occurrence]


@dataclass(frozen=True)
class EventType:
    name: str
    description: str
    build: Builder
    operators_only: bool = False


def _iso(value: dt.datetime | dt.date | None) -> str | None:
    return None if value is None else value.isoformat()


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _application(application: Any) -> dict[str, Any]:
    return {"id": application.pk, "name": application.name, "organization": application.organization_id}


def _plan(plan: Any) -> dict[str, Any] | None:
    return None if plan is None else {"id": plan.pk, "slug": plan.slug, "name": plan.name}


def _subscription(subscription: Any, details: dict[str, Any]) -> Occurrence:
    application = subscription.application
    data = {
        "subscription": {
            "id": subscription.pk,
            "status": subscription.status,
            "application": _application(application),
            "api": {"id": subscription.api_id, "slug": subscription.api.slug, "name": subscription.api.name},
            "plan": _plan(subscription.plan),
            "requested_plan": _plan(subscription.requested_plan),
        },
        **{k: _plain(v) for k, v in details.items()},
    }
    org = application.organization_id
    return Occurrence(data=data, organization_id=org, audience=[org])


def _key(key: Any, details: dict[str, Any]) -> Occurrence:
    application = key.application
    data: dict[str, Any] = {
        "key": {
            "id": key.pk,
            "prefix": key.prefix,
            "label": key.label,
            "status": key.effective_status,
            "expires_at": _iso(key.expires_at),
            "application": _application(application),
        },
    }
    if key.replaced_by_id is not None:
        data["key"]["grace_until"] = _iso(key.grace_until)
        data["key"]["replaced_by"] = {"id": key.replaced_by.pk, "prefix": key.replaced_by.prefix}
    data.update({k: _plain(v) for k, v in details.items()})
    org = application.organization_id
    return Occurrence(data=data, organization_id=org, audience=[org])


def _version(version: Any, details: dict[str, Any]) -> Occurrence:
    data = {
        "api": {"id": version.api_id, "slug": version.api.slug, "name": version.api.name},
        "version": {
            "id": version.pk,
            "label": version.label,
            "state": version.state,
            "deprecated_at": _iso(version.deprecated_at),
            "sunset_at": _iso(version.sunset_at),
            "successor": version.successor.label if version.successor_id else None,
        },
    }
    # Every organization subscribed to the version's API hears of it.
    return Occurrence(data=data, audience=organization_ids_subscribed_to_api(api_id=version.api_id))


def _quota(application: Any, details: dict[str, Any]) -> Occurrence:
    usage = details["usage"]
    data = {
        "application": _application(application),
        "subscription": {"id": usage.subscription_id, "api": usage.api_name, "plan": usage.plan_name},
        "quota": {
            "period": usage.period,
            "window": usage.window,
            "limit": usage.limit,
            "used": usage.used,
            "resets_at": _iso(usage.resets_at),
        },
        "threshold_percent": details["percent"],
    }
    org = application.organization_id
    return Occurrence(data=data, organization_id=org, audience=[org])


def _invoice(invoice: Any, details: dict[str, Any]) -> Occurrence:
    data = {
        "invoice": {
            "id": invoice.pk,
            "number": invoice.number,
            "organization": invoice.organization_id,
            "month": invoice.month.strftime("%Y-%m"),
            "currency": invoice.currency,
            "total": str(invoice.total),
            "finalized_at": _iso(invoice.finalized_at),
        }
    }
    org = invoice.organization_id
    return Occurrence(data=data, organization_id=org, audience=[org])


def _details_only(subject: Any, details: dict[str, Any]) -> Occurrence:
    return Occurrence(data={k: _plain(v) for k, v in details.items()})


EVENT_TYPES: dict[str, EventType] = {
    e.name: e
    for e in [
        EventType("subscription.requested", "A subscription waits for an operator's approval.", _subscription, True),
        EventType("plan_change.requested", "A plan change waits for an operator's approval.", _subscription, True),
        EventType(
            "metering.lag_exceeded", "Metering is further behind than its alert threshold.", _details_only, True
        ),
        EventType("subscription.approved", "An operator approved a pending subscription.", _subscription),
        EventType("subscription.suspended", "An operator suspended a subscription.", _subscription),
        EventType("subscription.cancelled", "A subscription was cancelled or its request rejected.", _subscription),
        EventType("plan_change.approved", "A subscription moved to another plan.", _subscription),
        EventType("key.expiring", "An API key expires in 7 days, or in 1 day.", _key),
        EventType("key.revoked", "An API key was revoked.", _key),
        EventType("key.rotated", "An API key was rotated; the old one works until grace_until.", _key),
        EventType("quota.threshold_reached", "An application crossed one of its quota alert thresholds.", _quota),
        EventType("version.deprecated", "A version of a subscribed API was deprecated.", _version),
        EventType("version.retired", "A version of a subscribed API was retired.", _version),
        EventType("invoice.issued", "A monthly invoice was finalised.", _invoice),
    ]
}


def event_types_for(*, operator: bool) -> list[str]:
    """The types an endpoint may subscribe to: operators' endpoints any, organizations' all but operators' own."""
    return [name for name, e in EVENT_TYPES.items() if operator or not e.operators_only]
