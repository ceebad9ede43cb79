"""Writes the gateway's working copy of the state to Redis, in the shapes of gateway/contract.py.

The database owns the state. Services announce their changes (portal.core.changes)
inside their transaction; receivers.py turns each announcement into ``publish_*_later``,
which writes an outbox row and, after commit, flushes the outbox to Redis. If Redis
is down at that moment the rows stay and the beat task
``gateway_state.tasks.publish_outbox_flush`` retries, so a committed change always
reaches the gateway eventually. ``gateway_sync`` rebuilds everything from scratch.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import redis
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from gateway import contract, route_policies
from portal.catalog.selectors import versions_for_routes
from portal.core.validators import origin_of
from portal.gateway_state.models import PublishOutbox
from portal.gateway_state.tokens import token_record_for
from portal.keys.selectors import api_key_find_by_hash, application_find
from portal.plans.limits import LIMIT_FIELDS
from portal.plans.selectors import application_ids_subscribed_to, live_subscriptions_of_application
from tollway.redis_url import REDIS_ERRORS, parse_redis_url, sync_client

if TYPE_CHECKING:
    from portal.catalog.models import ApiVersion
    from portal.keys.models import ApiKey, Application
    from portal.plans.models import Override, Plan, Subscription

log = logging.getLogger(__name__)

OUTBOX_BATCH = 500


@lru_cache(maxsize=1)
def redis_client() -> redis.Redis:
    """The client for REDIS_URL's topology (tollway/redis_url.py): on a cluster a
    RedisCluster, whose non-transactional pipelines group the writes by slot (one round
    trip per node) and follow MOVED/ASK; with Sentinel, the current master."""
    # Short timeouts: a Redis outage must not hang a portal request; the outbox retries.
    client: redis.Redis = sync_client(parse_redis_url(settings.REDIS_URL), socket_timeout=2, socket_connect_timeout=2)
    return client


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# --- record builders (pure reads) -------------------------------------------------------


def route_record(version: ApiVersion) -> contract.RouteRecord:
    successor = version.successor.label if version.successor_id and version.successor else None
    return contract.RouteRecord(
        api_id=version.api_id,
        api_slug=version.api.slug,
        version=version.label,
        version_id=version.pk,
        state=version.state,  # type: ignore[arg-type]  # a str column whose choices are the Literal's values
        upstreams=tuple(contract.Upstream(url=u.url, weight=u.weight) for u in version.upstreams.all()),
        connect_timeout_s=version.connect_timeout_s,
        read_timeout_s=version.read_timeout_s,
        total_timeout_s=version.total_timeout_s,
        max_body_bytes=version.max_body_bytes,
        allow_query_key=version.allow_query_key,
        redis_failure_mode=version.redis_failure_mode,  # type: ignore[arg-type]  # as state above
        deprecated_at=_iso(version.deprecated_at),
        sunset_at=_iso(version.sunset_at),
        successor_version=successor,
        allowed_methods=tuple(version.allowed_methods),
        cors=cors_policy(version),
        policies=(policies := route_policies.policies_from(version.policies)),
        # The gateway's validators need the document (published apart, by _write); only when they do.
        openapi_sha256=(
            contract.openapi_payload(version.openapi)[1]
            if policies.request_validation != "off" and version.openapi
            else None
        ),
    )


def portal_origin() -> str | None:
    """The portal's own origin (PORTAL_PUBLIC_URL), always allowed so that try-it works:
    as a browser sends it in Origin (lower case, no default port, no path)."""
    url = settings.PORTAL_PUBLIC_URL
    return origin_of(url) if url else None


def cors_policy(version: ApiVersion) -> contract.CorsPolicy:
    origins = list(version.cors_allowed_origins) if version.cors_enabled else []
    portal = portal_origin()
    if portal and portal not in origins:
        origins.insert(0, portal)
    return contract.CorsPolicy(
        allowed_origins=tuple(origins),
        # Empty means every method the version allows.
        allowed_methods=tuple(version.cors_allowed_methods or version.allowed_methods),
        allowed_headers=tuple(version.cors_allowed_headers),
        exposed_headers=tuple(version.cors_exposed_headers),
        max_age_s=version.cors_max_age_s,
        allow_credentials=version.cors_allow_credentials,
    )


def plan_limits(plan: Plan) -> contract.Limits:
    return contract.Limits(**{name: getattr(plan, name) for name in LIMIT_FIELDS})


def _override_limits(plan: Plan, override: Override) -> contract.Limits:
    # Any, as getattr gives: the names come from LIMIT_FIELDS at run time (a test keeps
    # that list and contract.Limits in step), so mypy cannot check them field by field.
    def pick(name: str) -> Any:
        value = getattr(override, name)
        return getattr(plan, name) if value is None else value

    return contract.Limits(**{name: pick(name) for name in LIMIT_FIELDS})


def subscription_grant(subscription: Subscription) -> contract.SubscriptionGrant:
    plan = subscription.plan
    now = timezone.now()
    # The newest unexpired override wins; the gateway drops it by itself at expires_at.
    override = next((o for o in subscription.overrides.all() if o.expires_at > now), None)
    return contract.SubscriptionGrant(
        subscription_id=subscription.pk,
        api_id=subscription.api_id,
        plan_id=plan.pk,
        plan_slug=plan.slug,
        status=subscription.status,  # type: ignore[arg-type]  # a str column whose choices are the Literal's values
        limits=plan_limits(plan),
        override_limits=_override_limits(plan, override) if override else None,
        override_expires_at=_iso(override.expires_at) if override else None,
    )


def application_record(application: Application) -> contract.ApplicationRecord:
    subs = live_subscriptions_of_application(application_id=application.pk).prefetch_related("overrides")
    return contract.ApplicationRecord(
        application_id=application.pk,
        organization_id=application.organization_id,
        name=application.name,
        subscriptions={str(s.api_id): subscription_grant(s) for s in subs},
        ip_rules=route_policies.ip_rules_check(application.ip_rules),
    )


def key_record(key: ApiKey) -> contract.KeyRecord:
    return contract.KeyRecord(
        key_id=key.pk,
        prefix=key.prefix,
        application_id=key.application_id,
        status=key.status,  # type: ignore[arg-type]  # a str column whose choices are the Literal's values
        expires_at=_iso(key.expires_at),
        grace_until=_iso(key.grace_until),
    )


# A key that no longer exists in the database (its application was deleted) is
# published as revoked rather than removed, so a gateway holding it in cache
# or in its snapshot learns that it is dead instead of merely "unknown".
def key_tombstone() -> contract.KeyRecord:
    return contract.KeyRecord(key_id=0, prefix="", application_id=0, status="revoked")


# --- enqueue (inside the caller's transaction) ----------------------------------------


def _enqueue(kind: str, refs: Iterable[object]) -> None:
    rows = [PublishOutbox(kind=kind, ref=str(ref)) for ref in refs]
    if not rows:
        return
    PublishOutbox.objects.bulk_create(rows)
    # Registered on every enqueue (not deduplicated): Django drops callbacks of a
    # rolled-back savepoint, so "already registered" could silently mean "dropped".
    # Extra callbacks are cheap: the first flush empties the outbox.
    transaction.on_commit(outbox_flush_quietly)


def publish_route_later(version_ids: Iterable[int]) -> None:
    _enqueue("route", version_ids)


def publish_application_later(application_ids: Iterable[int]) -> None:
    _enqueue("app", application_ids)


def publish_key_later(key_hashes: Iterable[str]) -> None:
    _enqueue("key", key_hashes)


def publish_token_later(access_token_ids: Iterable[int]) -> None:
    _enqueue("token", access_token_ids)


def unpublish_token_later(token_hashes: Iterable[str]) -> None:
    _enqueue("untoken", token_hashes)


def publish_plan_later(plan_ids: Iterable[int]) -> None:
    """A plan's limits changed: every application subscribed to it is republished."""
    publish_application_later(list(application_ids_subscribed_to(plan_ids=list(plan_ids))))


# --- flush ---------------------------------------------------------------------------


def _write(pipe: redis.client.Pipeline, kind: str, ref: str) -> contract.Invalidation:
    if kind == "route":
        version = versions_for_routes().filter(pk=ref).first()
        if version is None:
            # Deleted: we only have the id, so drop every field naming it.
            for field, raw in redis_client().hgetall(contract.ROUTES_KEY).items():
                if contract.RouteRecord.from_json(raw).version_id == int(ref):
                    pipe.hdel(contract.ROUTES_KEY, field)
            pipe.delete(contract.openapi_key(int(ref)))
            return contract.Invalidation(kind="route", id=ref)
        record = route_record(version)
        field = contract.route_field(record.api_slug, record.version)
        if record.openapi_sha256 is not None and version.openapi:  # before the record naming it, same pipeline
            pipe.set(contract.openapi_key(version.pk), contract.openapi_payload(version.openapi)[0])
        else:
            pipe.delete(contract.openapi_key(version.pk))
        pipe.hset(contract.ROUTES_KEY, field, record.to_json())
        return contract.Invalidation(kind="route", id=field)
    if kind == "app":
        application = application_find(application_id=int(ref))
        if application is None:
            pipe.delete(contract.app_key(int(ref)))
        else:
            pipe.set(contract.app_key(application.pk), application_record(application).to_json())
        return contract.Invalidation(kind="app", id=ref)
    if kind == "key":
        key = api_key_find_by_hash(key_hash=ref)
        key_rec = key_record(key) if key else key_tombstone()
        pipe.set(contract.key_key(ref), key_rec.to_json())
        return contract.Invalidation(kind="key", id=ref)
    if kind == "token":
        found = token_record_for(int(ref))
        if found is not None:
            token_hash, token_rec, ttl = found
            if ttl > 0:
                pipe.set(contract.token_key(token_hash), token_rec.to_json(), ex=ttl)
            else:
                pipe.delete(contract.token_key(token_hash))
            return contract.Invalidation(kind="token", id=token_hash)
        return contract.Invalidation(kind="token", id="")
    if kind == "untoken":
        pipe.delete(contract.token_key(ref))
        return contract.Invalidation(kind="token", id=ref)
    raise ValueError(f"unknown outbox kind {kind!r}")


def _publish_pipeline(client: redis.Redis) -> redis.client.Pipeline:
    """A pipeline for the PUBLISHes. A cluster's pipelines refuse PUBLISH (it names no
    key), and it needs none: any node broadcasts a message to the whole cluster, so the
    messages go down one pipeline to one node."""
    if isinstance(client, redis.RedisCluster):
        node_client: redis.Redis = client.get_redis_connection(client.get_default_node())
        return node_client.pipeline(transaction=False)
    return client.pipeline(transaction=False)


def outbox_flush(batch: int = OUTBOX_BATCH) -> int:
    """Publish pending outbox rows; returns how many were published. Raises on Redis errors
    (the rows then stay for the next attempt). Idempotent: publishing twice is harmless."""
    published = 0
    while True:
        rows = list(PublishOutbox.objects.order_by("id")[:batch])
        if not rows:
            return published
        client = redis_client()
        pipe = client.pipeline(transaction=False)
        invalidations = []
        seen: set[tuple[str, str]] = set()
        for row in rows:
            if (row.kind, row.ref) in seen:
                continue
            seen.add((row.kind, row.ref))
            invalidations.append(_write(pipe, row.kind, row.ref))
        pipe.incr(contract.GENERATION_KEY)
        pipe.execute()
        generation = int(client.get(contract.GENERATION_KEY) or 0)
        pipe = _publish_pipeline(client)
        for inv in invalidations:
            pipe.publish(
                contract.INVALIDATION_CHANNEL,
                contract.Invalidation(kind=inv.kind, id=inv.id, generation=generation).to_json(),
            )
        pipe.execute()
        PublishOutbox.objects.filter(id__in=[r.id for r in rows]).delete()
        published += len(rows)


_last_failure = 0.0
FAILURE_BACKOFF_S = 1.0


def outbox_flush_quietly() -> None:
    """After-commit hook: a Redis outage must not turn a committed change into a 500.
    After a failure, further attempts within a second are left to the beat task,
    so one transaction with many changes logs one warning, not one per change."""
    global _last_failure
    if time.monotonic() - _last_failure < FAILURE_BACKOFF_S:
        return
    try:
        outbox_flush()
    except REDIS_ERRORS as exc:
        _last_failure = time.monotonic()
        log.warning("gateway state publish deferred, Redis unavailable: %s", exc)

