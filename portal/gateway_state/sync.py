"""Rebuild the gateway's whole published state from the database (``manage.py gateway_sync``).

Idempotent: running it twice leaves Redis byte-for-byte the same. Records the
database no longer implies (stale keys, apps, tokens, routes) are removed. Keys
stream from the database in chunks and are written with pipelines, so memory
stays flat apart from the set of live key hashes used to find stale entries
(about 100 MB for 1,000,000 keys).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import redis
from django.db.models import Max
from django.utils import timezone
from oauth2_provider.models import get_access_token_model
from redis.typing import EncodableT, FieldT

from gateway import contract
from portal.catalog.selectors import versions_for_routes
from portal.gateway_state import publish
from portal.gateway_state.models import PublishOutbox
from portal.gateway_state.tokens import token_record_for
from portal.keys.selectors import api_keys_all, applications_all
from tollway.redis_url import REDIS_UNREACHABLE

CHUNK = 10_000

# One key as the rebuild reads it: pk, prefix, application id, status, expires_at, grace_until, hash.
KeyRow = tuple[int, str, int, str, dt.datetime | None, dt.datetime | None, str]
# Wraps the key rows, e.g. in a progress bar; gets the rows and their count.
Progress = Callable[[Iterable[KeyRow], int], Iterable[KeyRow]]


@dataclass
class SyncStats:
    routes: int = 0
    applications: int = 0
    keys: int = 0
    tokens: int = 0
    removed: int = 0
    seconds: float = 0.0


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _remove_stale(client: redis.Redis, pattern: str, live: set[str], stats: SyncStats) -> None:
    pipe = client.pipeline(transaction=False)
    pending = 0
    for raw in client.scan_iter(match=pattern, count=CHUNK):
        name = raw.decode()
        if name not in live:
            pipe.delete(name)
            pending += 1
            stats.removed += 1
        if pending >= CHUNK:
            pipe.execute()
            pending = 0
    pipe.execute()


def state_rebuild(
    *, client: redis.Redis | None = None, progress: Progress | None = None
) -> SyncStats:
    client = client or publish.redis_client()
    started = time.monotonic()
    stats = SyncStats()
    # Anything queued before this point is covered by the rebuild.
    outbox_high_water = PublishOutbox.objects.aggregate(m=Max("id"))["m"]

    # Routes: replaced in one MULTI so a gateway never reads a half-written table.
    routes: dict[FieldT, EncodableT] = {}
    live_documents: set[str] = set()
    documents = client.pipeline(transaction=False)
    for version in versions_for_routes():
        record = publish.route_record(version)
        routes[contract.route_field(record.api_slug, record.version)] = record.to_json()
        if record.openapi_sha256 is not None and version.openapi:  # request_validation's document
            documents.set(contract.openapi_key(version.pk), contract.openapi_payload(version.openapi)[0])
            live_documents.add(contract.openapi_key(version.pk))
    documents.execute()  # before the routes that name them
    _remove_stale(client, contract.openapi_key(0).rsplit(":", 1)[0] + ":*", live_documents, stats)
    pipe = client.pipeline(transaction=True)
    pipe.delete(contract.ROUTES_KEY)
    if routes:
        pipe.hset(contract.ROUTES_KEY, mapping=routes)
    pipe.execute()
    stats.routes = len(routes)

    # Applications with their subscriptions, plans and overrides.
    live_apps: set[str] = set()
    pipe = client.pipeline(transaction=False)
    for application in applications_all().iterator(chunk_size=2000):
        name = contract.app_key(application.pk)
        pipe.set(name, publish.application_record(application).to_json())
        live_apps.add(name)
        if len(pipe) >= CHUNK:
            pipe.execute()
    pipe.execute()
    stats.applications = len(live_apps)
    _remove_stale(client, contract.app_key(0).rsplit(":", 1)[0] + ":*", live_apps, stats)

    # Keys: the big set. Built straight from column values to keep 1M keys quick.
    total = api_keys_all().count()
    rows: Iterable[KeyRow] = api_keys_all().values_list(
        "pk", "prefix", "application_id", "status", "expires_at", "grace_until", "key_hash"
    ).iterator(chunk_size=CHUNK)
    if progress is not None:
        rows = progress(rows, total)
    live_keys: set[str] = set()
    pipe = client.pipeline(transaction=False)
    for pk, prefix, application_id, status, expires_at, grace_until, key_hash in rows:
        key_rec = contract.KeyRecord(
            key_id=pk,
            prefix=prefix,
            application_id=application_id,
            status=status,  # type: ignore[arg-type]  # a str column whose choices are the Literal's values
            expires_at=_iso(expires_at),
            grace_until=_iso(grace_until),
        )
        name = contract.key_key(key_hash)
        pipe.set(name, key_rec.to_json())
        live_keys.add(name)
        if len(pipe) >= CHUNK:
            pipe.execute()
    pipe.execute()
    stats.keys = len(live_keys)
    _remove_stale(client, contract.key_key("*"), live_keys, stats)
    del live_keys

    # OAuth2 access tokens of Tollway applications that are still valid.
    live_tokens: set[str] = set()
    pipe = client.pipeline(transaction=False)
    token_ids = (
        get_access_token_model()
        .objects.filter(expires__gt=timezone.now(), application__tollway_application__isnull=False)
        .values_list("pk", flat=True)
    )
    for token_id in token_ids.iterator(chunk_size=CHUNK):
        found = token_record_for(token_id)
        if found is None:
            continue
        token_hash, token_rec, ttl = found
        if ttl > 0:
            name = contract.token_key(token_hash)
            pipe.set(name, token_rec.to_json(), ex=ttl)
            live_tokens.add(name)
    pipe.execute()
    stats.tokens = len(live_tokens)
    _remove_stale(client, contract.token_key("*"), live_tokens, stats)

    generation = client.incr(contract.GENERATION_KEY)
    client.publish(contract.INVALIDATION_CHANNEL, contract.Invalidation(kind="all", generation=generation).to_json())
    if outbox_high_water is not None:
        PublishOutbox.objects.filter(id__lte=outbox_high_water).delete()
    stats.seconds = time.monotonic() - started
    return stats


def wait_for_redis(client: redis.Redis, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.ping()
            return
        except REDIS_UNREACHABLE:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
