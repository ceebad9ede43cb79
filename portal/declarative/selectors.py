"""Reads of the declarative configuration: the live state as a document, a file's diff
against it, its schema, and whether the live state drifted from the last sync."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from portal.declarative.engine import Change, canonical_sha256, dump, reconcile
from portal.declarative.loader import Document
from portal.declarative.models import AppliedConfig, AutomationToken
from portal.declarative.schema import config_json_schema

if TYPE_CHECKING:
    import datetime as dt

__all__ = [
    "Change",
    "Drift",
    "automation_token_get",
    "automation_token_list",
    "config_diff",
    "config_drift",
    "config_dump",
    "config_schema",
]


def config_dump() -> dict[str, Any]:
    """Every API, version, plan and unexpired override, in the file's format."""
    return dump()


def config_diff(*, document: Document, prune: bool = False, force: bool = False) -> list[Change]:
    """What a sync of the document would change, field by field (ConfigError if it cannot apply)."""
    return reconcile(document, prune=prune, force=force).changes


def config_schema() -> dict[str, Any]:
    return config_json_schema()


@dataclass(frozen=True)
class Drift:
    synced: bool  # has any configuration been synced?
    drifted: bool  # does the live state differ from what the last sync left?
    live_sha256: str
    applied_sha256: str = ""
    applied_at: dt.datetime | None = None
    applied_by: str = ""
    source: str = ""


def config_drift() -> Drift:
    # The dump is the costly part (every API, version and OpenAPI document): skip it
    # until something has been synced, since there is nothing to compare it with.
    last = AppliedConfig.objects.order_by("-applied_at", "-id").first()
    if last is None:
        return Drift(synced=False, drifted=False, live_sha256="")
    live = canonical_sha256(dump())
    return Drift(
        synced=True,
        drifted=live != last.sha256,
        live_sha256=live,
        applied_sha256=last.sha256,
        applied_at=last.applied_at,
        applied_by=last.actor_email,
        source=last.source,
    )


def automation_token_list() -> list[AutomationToken]:
    """Every automation token, revoked ones included (their names stay in the audit log)."""
    return list(AutomationToken.objects.select_related("created_by").order_by("name"))


def automation_token_get(*, name: str) -> AutomationToken | None:
    return AutomationToken.objects.filter(name=name).first()
