"""Applications, API keys and OAuth2 clients. Every write is audited and published."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, DateTimeField, Q, Value, When
from django.utils import timezone
from oauth2_provider.generators import generate_client_id, generate_client_secret
from oauth2_provider.models import get_application_model

from gateway import contract, route_policies
from portal.audit.services import audit_record, model_snapshot
from portal.core.changes import announce, announce_event, application_changed, key_changed
from portal.core.errors import ApplicationError, Conflict
from portal.keys.models import ApiKey, Application, KeyStatus

if TYPE_CHECKING:
    from portal.accounts.models import Organization, User

MAX_ROTATION_GRACE = dt.timedelta(days=30)
APPLICATION_FIELDS = ["name", "description", "ip_rules"]


@dataclass(frozen=True)
class IssuedKey:
    """The only object that ever holds a full key. Show ``secret`` once, then drop it."""

    key: ApiKey
    secret: str


@dataclass(frozen=True)
class IssuedClient:
    client_id: str
    client_secret: str


def generate_key_secret() -> str:
    random_part = "".join(secrets.choice(contract.BASE62) for _ in range(contract.KEY_RANDOM_CHARS))
    return contract.KEY_PREFIX + random_part + contract.key_checksum(random_part)


def key_hash(secret: str) -> str:
    return contract.key_hash(secret, settings.KEY_HASH_SECRET)


# --- applications ---------------------------------------------------------------------


@transaction.atomic
def application_create(*, organization: Organization, name: str, description: str = "", actor: User) -> Application:
    application = Application.objects.create(
        organization=organization, name=name, description=description, created_by=actor
    )
    audit_record(
        actor=actor,
        action="application.create",
        obj=application,
        after=model_snapshot(application, APPLICATION_FIELDS),
        organization_id=organization.pk,
    )
    announce(application_changed, [application.pk])
    return application


@transaction.atomic
def application_update(*, application: Application, actor: User, **changes: object) -> Application:
    before = model_snapshot(application, APPLICATION_FIELDS)
    for name, value in changes.items():
        if name not in APPLICATION_FIELDS:
            raise ValueError(f"application field {name!r} cannot be changed here")
        setattr(application, name, value)
    if "ip_rules" in changes:
        if changes["ip_rules"] in ({}, None):
            application.ip_rules = None
        try:
            route_policies.ip_rules_check(application.ip_rules)
        except route_policies.PoliciesInvalid as exc:
            raise ApplicationError("Invalid IP rules.", fields={"ip_rules": exc.problems}) from exc
    application.save()
    audit_record(
        actor=actor,
        action="application.update",
        obj=application,
        before=before,
        after=model_snapshot(application, APPLICATION_FIELDS),
        organization_id=application.organization_id,
    )
    announce(application_changed, [application.pk])
    return application


@transaction.atomic
def application_delete(*, application: Application, actor: User) -> None:
    key_hashes = list(application.keys.values_list("key_hash", flat=True))
    app_id, org_id = application.pk, application.organization_id
    audit_record(
        actor=actor,
        action="application.delete",
        obj=application,
        before=model_snapshot(application, APPLICATION_FIELDS),
        organization_id=org_id,
    )
    if application.oauth_client is not None:
        application.oauth_client.delete()  # tokens go with it
    application.delete()
    # Keys become tombstones (revoked) in Redis; the application record disappears.
    announce(key_changed, key_hashes)
    announce(application_changed, [app_id])


# --- API keys ---------------------------------------------------------------------------


def _key_audit(key: ApiKey) -> dict[str, Any]:
    return model_snapshot(key, ["prefix", "label", "status", "expires_at", "grace_until", "revoked_at"])


@transaction.atomic
def api_key_issue(
    *, application: Application, label: str = "", expires_at: dt.datetime | None = None, actor: User
) -> IssuedKey:
    if expires_at is not None and expires_at <= timezone.now():
        raise Conflict("The expiry must be in the future.", fields={"expires_at": ["Must be in the future."]})
    secret = generate_key_secret()
    key = ApiKey.objects.create(
        application=application,
        label=label,
        prefix=contract.key_display_prefix(secret),
        key_hash=key_hash(secret),
        expires_at=expires_at,
        created_by=actor,
    )
    audit_record(
        actor=actor, action="key.issue", obj=key, after=_key_audit(key), organization_id=application.organization_id
    )
    announce(key_changed, [key.key_hash])
    return IssuedKey(key=key, secret=secret)


@transaction.atomic
def api_key_rotate(*, key: ApiKey, grace: dt.timedelta, actor: User, label: str | None = None) -> IssuedKey:
    """Issue a replacement key; the old one keeps working for ``grace`` (0 = stops now)."""
    key = ApiKey.objects.select_for_update().get(pk=key.pk)
    if key.effective_status not in {"active"}:
        raise Conflict(f"Only an active key can be rotated; this key is {key.effective_status}.")
    if grace < dt.timedelta(0) or grace > MAX_ROTATION_GRACE:
        raise Conflict(
            "The grace period must be between 0 and 30 days.", fields={"grace_seconds": ["Between 0 and 2592000."]}
        )
    before = _key_audit(key)
    issued = api_key_issue(
        application=key.application,
        label=key.label if label is None else label,
        expires_at=key.expires_at if key.expires_at and key.expires_at > timezone.now() else None,
        actor=actor,
    )
    key.grace_until = timezone.now() + grace
    key.replaced_by = issued.key
    key.save(update_fields=["grace_until", "replaced_by"])
    audit_record(
        actor=actor,
        action="key.rotate",
        obj=key,
        before=before,
        after={**_key_audit(key), "replaced_by": issued.key.prefix},
        organization_id=key.application.organization_id,
    )
    announce(key_changed, [key.key_hash])
    announce_event("key.rotated", key)
    return issued


@transaction.atomic
def api_key_revoke(*, key: ApiKey, actor: User) -> ApiKey:
    """Irreversible: nothing sets a revoked key back to active."""
    key = ApiKey.objects.select_for_update().get(pk=key.pk)
    if key.status == KeyStatus.REVOKED:
        return key
    before = _key_audit(key)
    key.status = KeyStatus.REVOKED
    key.revoked_at = timezone.now()
    key.save(update_fields=["status", "revoked_at"])
    audit_record(
        actor=actor,
        action="key.revoke",
        obj=key,
        before=before,
        after=_key_audit(key),
        organization_id=key.application.organization_id,
    )
    announce(key_changed, [key.key_hash])
    announce_event("key.revoked", key)
    return key


def api_keys_republish_lapsed(*, since: dt.datetime, until: dt.datetime) -> int:
    """Keys whose expiry or rotation grace passed in (since, until]: republish so every
    gateway drops them from cache now, not just at its next lookup."""
    from django.db.models import Q

    hashes = list(
        ApiKey.objects.filter(
            Q(expires_at__gt=since, expires_at__lte=until) | Q(grace_until__gt=since, grace_until__lte=until)
        ).values_list("key_hash", flat=True)
    )
    with transaction.atomic():
        announce(key_changed, hashes)
    return len(hashes)


# --- OAuth2 client credentials ----------------------------------------------------------


@transaction.atomic
def oauth_client_create(*, application: Application, actor: User) -> IssuedClient:
    """One confidential client-credentials client per application. The secret is hashed
    by django-oauth-toolkit on save, so it is shown here once and never again."""
    if application.oauth_client_id:
        raise Conflict("This application already has an OAuth2 client; delete it to create a new one.")
    client_secret = generate_client_secret()
    client = get_application_model().objects.create(
        name=f"tollway-app-{application.pk}",
        client_id=generate_client_id(),
        client_secret=client_secret,
        client_type="confidential",
        authorization_grant_type="client-credentials",
        hash_client_secret=True,
        user=None,
    )
    application.oauth_client = client
    application.save(update_fields=["oauth_client"])
    audit_record(
        actor=actor,
        action="oauth_client.create",
        obj=application,
        after={"client_id": client.client_id},
        organization_id=application.organization_id,
    )
    return IssuedClient(client_id=client.client_id, client_secret=client_secret)


@transaction.atomic
def oauth_client_delete(*, application: Application, actor: User) -> None:
    client = application.oauth_client
    if client is None:
        return
    audit_record(
        actor=actor,
        action="oauth_client.delete",
        obj=application,
        before={"client_id": client.client_id},
        organization_id=application.organization_id,
    )
    application.oauth_client = None
    application.save(update_fields=["oauth_client"])
    client.delete()  # its tokens cascade and are unpublished


# last_used_at is kept to this resolution: a key already marked used within it of a
# newer request is not written again, so a busy key costs one row write a minute, not
# one per batch (and its row lock is not taken at all).
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)
# Keys per statement on SQLite (bound parameters: 3 per key, well under its limit).
_SQLITE_KEYS_PER_STATEMENT = 200


@transaction.atomic
def api_keys_mark_used(*, last_seen: Mapping[int, dt.datetime]) -> int:
    """Record when keys were last used (key id -> time of its latest admitted request).

    The gateway never writes the database, so the metering stream is where the portal
    learns it. Not audited and not published: nothing the gateway reads changes.
    Returns the keys updated.

    - At most once per key per ``LAST_USED_RESOLUTION``: a key whose ``last_used_at`` is
      already within that of the new time is skipped, and never locked.
    - Forwards only: a late or replayed batch cannot make a key look idle.
    - Deadlock-free: the rows to write are locked in key-id order by one statement
      (``ORDER BY id FOR UPDATE``, a lock taken after the sort), so consumers whose
      batches share keys queue on the first shared key instead of each holding one the
      other waits for. One statement on PostgreSQL, one per 200 keys on SQLite (which
      has one writer at a time, so no lock order to keep).
    """
    if not last_seen:
        return 0
    ids = sorted(last_seen)
    used = [last_seen[i] for i in ids]
    stale_before = [u - LAST_USED_RESOLUTION for u in used]
    if connection.vendor == "postgresql":
        table = ApiKey._meta.db_table
        with connection.cursor() as cur:
            # MATERIALIZED: the locking CTE runs on its own, in its ORDER BY, before the update.
            cur.execute(
                f"""
                WITH seen (id, used_at, stale_before) AS (
                    SELECT * FROM unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[])
                ), due AS MATERIALIZED (
                    SELECT k.id, seen.used_at FROM {table} k JOIN seen ON seen.id = k.id
                    WHERE k.last_used_at IS NULL OR k.last_used_at < seen.stale_before
                    ORDER BY k.id
                    FOR UPDATE OF k
                )
                UPDATE {table} k SET last_used_at = due.used_at FROM due WHERE k.id = due.id
                """,  # noqa: S608 (the table name is the model's, not input)
                [ids, used, stale_before],
            )
            return int(cur.rowcount)
    updated = 0
    for start in range(0, len(ids), _SQLITE_KEYS_PER_STATEMENT):
        chunk = range(start, min(start + _SQLITE_KEYS_PER_STATEMENT, len(ids)))
        stale = Case(*[When(pk=ids[i], then=Value(stale_before[i])) for i in chunk], output_field=DateTimeField())
        updated += (
            ApiKey.objects.filter(pk__in=[ids[i] for i in chunk])
            .filter(Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale))
            .update(last_used_at=Case(*[When(pk=ids[i], then=Value(used[i])) for i in chunk],
                                      output_field=DateTimeField()))
        )
    return updated
