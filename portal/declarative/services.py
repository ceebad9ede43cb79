"""Apply a declarative configuration: every change through the catalog's and plans' services."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from django.db import transaction

from portal.accounts.selectors import is_operator
from portal.audit.services import audit_record
from portal.core.errors import NotAllowed
from portal.declarative.engine import Change, canonical_sha256, dump, reconcile
from portal.declarative.loader import ConfigError, Document, config_parse
from portal.declarative.models import AppliedConfig

if TYPE_CHECKING:
    from portal.accounts.models import User

__all__ = ["ConfigError", "Document", "SyncResult", "config_load", "config_parse", "config_sync"]


def config_load(path: Path) -> Document:
    """Read and check a configuration file; errors name it as given (e.g. tollway.yaml:14)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read: {exc}"]) from exc
    return config_parse(text, filename=str(path), base_dir=path.parent)


@dataclass(frozen=True)
class SyncResult:
    changes: list[Change]
    applied: bool  # False for a dry run
    sha256: str = ""  # of the live state after the sync, the drift check's reference


@transaction.atomic
def config_sync(
    *, document: Document, actor: User, prune: bool = False, force: bool = False, dry_run: bool = False
) -> SyncResult:
    """Bring the live state to the document, all or nothing. A dry run only says what would change.

    Each change is a service call (validated, audited as ``actor``, published after commit);
    the first refusal raises ConfigError naming the file line and rolls every change back."""
    if not is_operator(actor):
        raise NotAllowed("Only operators can sync the configuration.")
    plan = reconcile(document, prune=prune, force=force)
    if dry_run:
        return SyncResult(changes=plan.changes, applied=False)
    plan.apply(document=document, actor=actor)
    sha256 = canonical_sha256(dump())
    applied = AppliedConfig.objects.create(
        sha256=sha256, actor=actor, actor_email=actor.email, source=document.filename[:300], changes=len(plan.changes)
    )
    audit_record(
        actor=actor,
        action="config.sync",
        obj=applied,
        after={"source": applied.source, "sha256": sha256, "changes": [str(c) for c in plan.changes][:200]},
    )
    return SyncResult(changes=plan.changes, applied=True, sha256=sha256)
