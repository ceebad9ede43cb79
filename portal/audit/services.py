from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db import models

from portal.audit.models import AuditEvent


def _jsonable(value: Any) -> Any:
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


def audit_record(
    *,
    actor: Any,
    action: str,
    obj: models.Model,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    organization_id: int | None = None,
) -> AuditEvent:
    user = actor if getattr(actor, "is_authenticated", False) else None
    return AuditEvent.objects.create(
        actor=user,
        actor_email=getattr(user, "email", "") or "",
        action=action,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        organization_id=organization_id,
        before=before,
        after=after,
    )
