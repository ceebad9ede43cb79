"""Domain change signals: how a service says "this changed" without knowing who cares.

Catalog, plans and keys announce their changes here; portal.gateway_state listens
and republishes the gateway's working copy. Events that people outside are told about
(webhooks) are announced the same way, with ``announce_event``; portal.webhooks listens
and writes them to its outbox. The arrow points one way: the apps
that change things never import the app that publishes them.

Call ``announce`` inside the service's transaction. Django signals are synchronous
and ``send`` lets a receiver's exception through, so a receiver's writes (the
publish outbox rows) commit or roll back with the change itself.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.core.checks import CheckMessage, Error
from django.dispatch import Signal

# Each is sent with ``refs``, a list of the changed objects' identifiers:
route_changed = Signal()  # ApiVersion ids (routes are published per version)
application_changed = Signal()  # Application ids (also: its subscriptions or their overrides changed)
key_changed = Signal()  # ApiKey.key_hash values (a hash outlives its deleted row)
plan_changed = Signal()  # Plan ids whose limits or terms changed
# Sent with ``event_type`` (a name in portal/webhooks/events.py), ``subject`` (the object
# it is about, or None) and ``details`` (a dict of extra facts):
event_occurred = Signal()

SIGNALS = {
    "route_changed": route_changed,
    "application_changed": application_changed,
    "key_changed": key_changed,
    "plan_changed": plan_changed,
    "event_occurred": event_occurred,
}


def announce(signal: Signal, refs: Iterable[object]) -> None:
    """Tell the listeners, inside the caller's transaction, that these objects changed."""
    signal.send(sender=None, refs=list(refs))


def announce_event(event_type: str, subject: object = None, **details: object) -> None:
    """Tell the listeners, inside the caller's transaction, that an event occurred:
    ``announce_event("key.revoked", key)``. Its outbox row commits or rolls back with the change."""
    event_occurred.send(sender=None, event_type=event_type, subject=subject, details=details)


def check_every_change_has_a_listener(**kwargs: object) -> list[CheckMessage]:
    """A change nobody listens to would never reach the gateway: fail the system checks instead."""
    return [
        Error(
            f"No receiver is connected to portal.core.changes.{name}.",
            hint="Are portal.gateway_state and portal.webhooks installed?",
            id="core.E001",
        )
        for name, signal in SIGNALS.items()
        if not signal.has_listeners()
    ]
