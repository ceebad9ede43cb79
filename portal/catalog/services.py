"""APIs, versions and their lifecycle. Every write is audited; versions are published."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

import yaml
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Model
from django.utils import timezone
from openapi_spec_validator import validate as openapi_validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from portal.audit.services import audit_record, model_snapshot
from portal.catalog.models import LIFECYCLE_TRANSITIONS, Api, ApiVersion, LifecycleEvent, LifecycleState, UpstreamTarget
from portal.core.changes import announce, announce_event, route_changed
from portal.core.errors import ApplicationError, InvalidTransition

if TYPE_CHECKING:
    from portal.accounts.models import User

API_FIELDS = ["slug", "name", "summary", "description", "tags", "visibility"]
# A version's CORS policy (published in contract.RouteRecord.cors).
CORS_FIELDS = [
    "cors_enabled",
    "cors_allowed_origins",
    "cors_allowed_methods",
    "cors_allowed_headers",
    "cors_exposed_headers",
    "cors_max_age_s",
    "cors_allow_credentials",
]
VERSION_FIELDS = [
    "label",
    "state",
    "deprecated_at",
    "sunset_at",
    "successor_id",
    "changelog",
    "connect_timeout_s",
    "read_timeout_s",
    "total_timeout_s",
    "max_body_bytes",
    "allow_query_key",
    "redis_failure_mode",
    "allowed_methods",
    *CORS_FIELDS,
    "policies",
]
VERSION_EDITABLE = [f for f in VERSION_FIELDS if f not in {"state", "deprecated_at"}] + ["openapi"]
MAX_OPENAPI_BYTES = 2 * 1024 * 1024


def openapi_parse(raw: str | bytes) -> dict[str, Any]:
    """Parse an uploaded OpenAPI document (JSON or YAML) and validate it against the spec."""
    if len(raw) > MAX_OPENAPI_BYTES:
        raise ApplicationError("The OpenAPI document is larger than 2 MiB.", fields={"openapi": ["Too large."]})
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    try:
        document = json.loads(text)
    except ValueError:
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ApplicationError(
                "The OpenAPI document is neither valid JSON nor valid YAML.", fields={"openapi": [str(exc)[:300]]}
            ) from exc
    return openapi_validate_document(document)


def openapi_validate_document(document: object) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise ApplicationError("The OpenAPI document must be an object.", fields={"openapi": ["Must be an object."]})
    try:
        openapi_validate(document)
    except OpenAPIValidationError as exc:
        raise ApplicationError(
            "The OpenAPI document is not valid.", fields={"openapi": [str(exc.message)[:500]]}
        ) from exc
    except Exception as exc:  # the validator raises assorted errors on malformed input
        raise ApplicationError("The OpenAPI document is not valid.", fields={"openapi": [str(exc)[:500]]}) from exc
    return document


def _clean(obj: Model) -> None:
    try:
        obj.full_clean()
    except ValidationError as exc:
        raise ApplicationError("Invalid input.", fields=exc.message_dict) from exc


# --- APIs -------------------------------------------------------------------------------


@transaction.atomic
def api_create(*, actor: User, owner: User | None = None, **fields: object) -> Api:
    api = Api(owner=owner or actor, **fields)
    _clean(api)
    api.save()
    audit_record(actor=actor, action="api.create", obj=api, after=model_snapshot(api, API_FIELDS))
    return api


@transaction.atomic
def api_update(*, api: Api, actor: User, **changes: object) -> Api:
    before = model_snapshot(api, API_FIELDS)
    for name, value in changes.items():
        if name not in API_FIELDS:
            raise ValueError(f"API field {name!r} cannot be changed here")
        setattr(api, name, value)
    _clean(api)
    api.save()
    audit_record(actor=actor, action="api.update", obj=api, before=before, after=model_snapshot(api, API_FIELDS))
    # The slug is part of every route of this API.
    announce(route_changed, list(api.versions.values_list("pk", flat=True)))
    return api


# --- versions --------------------------------------------------------------------------


def _set_upstreams(version: ApiVersion, upstreams: list[dict[str, Any]]) -> None:
    if not upstreams:
        raise ApplicationError("A version needs at least one upstream.", fields={"upstreams": ["At least one."]})
    version.upstreams.all().delete()
    for item in upstreams:
        target = UpstreamTarget(version=version, url=item["url"], weight=item.get("weight", 1))
        _clean(target)
        target.save()


@transaction.atomic
def version_create(
    *, api: Api, label: str, upstreams: list[dict[str, Any]], actor: User, **fields: object
) -> ApiVersion:
    version = ApiVersion(api=api, label=label, state=LifecycleState.DRAFT, **fields)
    if version.openapi is not None:
        openapi_validate_document(version.openapi)
    _clean(version)
    version.save()
    _set_upstreams(version, upstreams)
    audit_record(
        actor=actor,
        action="version.create",
        obj=version,
        after={**model_snapshot(version, VERSION_FIELDS), "upstreams": upstreams},
    )
    announce(route_changed, [version.pk])
    return version


@transaction.atomic
def version_update(
    *, version: ApiVersion, actor: User, upstreams: list[dict[str, Any]] | None = None, **changes: object
) -> ApiVersion:
    version = ApiVersion.objects.select_for_update().get(pk=version.pk)
    before = {**model_snapshot(version, VERSION_FIELDS), "upstreams": _upstream_list(version)}
    for name, value in changes.items():
        if name not in VERSION_EDITABLE:
            raise ValueError(f"version field {name!r} cannot be changed here (use version_transition)")
        setattr(version, name, value)
    if "openapi" in changes and version.openapi is not None:
        openapi_validate_document(version.openapi)
    if version.successor_id and version.successor_id == version.pk:
        raise ApplicationError("A version cannot succeed itself.", fields={"successor": ["Pick another version."]})
    if version.successor_id and not ApiVersion.objects.filter(pk=version.successor_id, api_id=version.api_id).exists():
        raise ApplicationError(
            "The successor must be another version of the same API.", fields={"successor": ["Invalid successor."]}
        )
    _clean(version)
    version.save()
    if upstreams is not None:
        _set_upstreams(version, upstreams)
    after = {**model_snapshot(version, VERSION_FIELDS), "upstreams": _upstream_list(version)}
    audit_record(actor=actor, action="version.update", obj=version, before=before, after=after)
    announce(route_changed, [version.pk])
    return version


def _upstream_list(version: ApiVersion) -> list[dict[str, Any]]:
    return [{"url": u.url, "weight": u.weight} for u in version.upstreams.all()]


@transaction.atomic
def version_transition(
    *,
    version: ApiVersion,
    to_state: str,
    actor: User,
    sunset_at: dt.datetime | None = None,
    successor: ApiVersion | None = None,
) -> ApiVersion:
    """draft → published → deprecated → retired (deprecated may be undeprecated; retired is final)."""
    version = ApiVersion.objects.select_for_update().get(pk=version.pk)
    from_state = version.state
    if to_state not in LIFECYCLE_TRANSITIONS.get(from_state, set()):
        raise InvalidTransition(f"A {from_state} version cannot become {to_state}.")
    if successor is not None and (successor.api_id != version.api_id or successor.pk == version.pk):
        raise ApplicationError(
            "The successor must be another version of the same API.", fields={"successor": ["Invalid successor."]}
        )
    now = timezone.now()
    if sunset_at is not None and sunset_at <= now and to_state == LifecycleState.DEPRECATED:
        raise ApplicationError("The sunset date must be in the future.", fields={"sunset_at": ["Must be future."]})
    before = model_snapshot(version, VERSION_FIELDS)
    version.state = to_state
    if to_state == LifecycleState.DEPRECATED:
        version.deprecated_at = now
        version.sunset_at = sunset_at or version.sunset_at
        version.successor = successor or version.successor
    elif to_state == LifecycleState.PUBLISHED:
        version.deprecated_at = None
        version.sunset_at = None
    version.save()
    LifecycleEvent.objects.create(version=version, from_state=from_state, to_state=to_state, actor=actor)
    audit_record(
        actor=actor,
        action=f"version.{to_state}",
        obj=version,
        before=before,
        after=model_snapshot(version, VERSION_FIELDS),
    )
    announce(route_changed, [version.pk])
    if to_state in {LifecycleState.DEPRECATED, LifecycleState.RETIRED}:
        announce_event(f"version.{to_state}", version)
    return version
