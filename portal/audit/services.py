from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import AnonymousUser
from django.db import models

from portal.audit.models import AuditEvent

if TYPE_CHECKING:
    from portal.accounts.models import User


def _jsonable(value: object) -> object:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, models.Model):
        return value.pk
    return value


def model_snapshot(obj: models.Model, fields: list[str] | None = None) -> dict[str, Any]:
    """Concrete field values, JSON-safe, for the before/after of an audit event.
    Secret-bearing fields are never listed here: keys store only a hash anyway."""
    names = fields or [f.attname for f in obj._meta.concrete_fields if f.attname not in {"key_hash", "token_hash"}]
    return {name: _jsonable(getattr(obj, name)) for name in names}


# A named automation acting (e.g. "automation:ci-deploy"): set around a whole operation so that
# every service it calls, which take ``actor: User`` for their permission checks, is audited
# under that name instead of as the user whose rights the automation borrows.
_acting_as: ContextVar[str] = ContextVar("audit_acting_as", default="")


@contextmanager
def audit_acting_as(label: str) -> Iterator[None]:
    """Within the block, audit_record names ``label`` (actor None) instead of the given actor."""
    reset = _acting_as.set(label)
    try:
        yield
    finally:
        _acting_as.reset(reset)


def audit_record(
    *,
    actor: User | AnonymousUser | None,
    action: str,
    obj: models.Model,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    organization_id: int | None = None,
    actor_label: str = "",
) -> AuditEvent:
    """``actor_label`` (or an enclosing audit_acting_as) names a non-user actor, e.g. an
    automation token; the event then has no actor user and keeps the label in actor_email."""
    label = actor_label or _acting_as.get()
    user = actor if not label and actor is not None and actor.is_authenticated else None  # None: system/label
    return AuditEvent.objects.create(
        actor=user,
        actor_email=label or (user.email if user is not None else ""),
        action=action,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        organization_id=organization_id,
        before=before,
        after=after,
    )
