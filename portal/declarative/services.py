"""Apply a declarative configuration: every change through the catalog's and plans' services."""

from __future__ import annotations

import hmac
import secrets
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from gateway import contract
from portal.accounts.selectors import is_operator
from portal.audit.services import audit_acting_as, audit_record, model_snapshot
from portal.core.errors import ApplicationError, Conflict, NotAllowed
from portal.declarative.engine import Change, canonical_sha256, dump, reconcile
from portal.declarative.loader import ConfigError, Document, config_parse
from portal.declarative.models import AppliedConfig, AutomationToken
from portal.keys.services import key_hash

if TYPE_CHECKING:
    from portal.accounts.models import User

__all__ = [
    "AutomationToken",
    "ConfigError",
    "Document",
    "SyncResult",
    "automation_token_authenticate",
    "automation_token_create",
    "automation_token_revoke",
    "automation_token_secret_new",
    "config_load",
    "config_parse",
    "config_sync",
]

AUTOMATION_TOKEN_PREFIX = "twc_"  # noqa: S105 (a public prefix, not a secret)
AUTOMATION_TOKEN_RANDOM_CHARS = 32
AUTOMATION_TOKEN_DISPLAY_CHARS = 10  # "twc_" and 6 random characters


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
    *,
    document: Document,
    actor: User,
    prune: bool = False,
    force: bool = False,
    dry_run: bool = False,
    token: AutomationToken | None = None,
) -> SyncResult:
    """Bring the live state to the document, all or nothing. A dry run only says what would change.

    Each change is a service call (validated, audited as ``actor``, published after commit);
    the first refusal raises ConfigError naming the file line and rolls every change back.
    With ``token`` (an automation token acting with ``actor``'s rights), the sync and every
    change it makes are audited as "automation:NAME" instead."""
    if not is_operator(actor):
        raise NotAllowed("Only operators can sync the configuration.")
    plan = reconcile(document, prune=prune, force=force)
    if dry_run:
        return SyncResult(changes=plan.changes, applied=False)
    label = token.actor_label if token is not None else ""
    with audit_acting_as(label) if label else nullcontext():
        plan.apply(document=document, actor=actor)
    sha256 = canonical_sha256(dump())
    applied = AppliedConfig.objects.create(
        sha256=sha256,
        actor=None if label else actor,
        actor_email=label or actor.email,
        source=document.filename[:300],
        changes=len(plan.changes),
    )
    audit_record(
        actor=actor,
        actor_label=label,
        action="config.sync",
        obj=applied,
        after={"source": applied.source, "sha256": sha256, "changes": [str(c) for c in plan.changes][:200]},
    )
    return SyncResult(changes=plan.changes, applied=True, sha256=sha256)


# --- automation tokens ----------------------------------------------------------------------


def automation_token_secret_new() -> str:
    """A fresh token: "twc_" and 32 base62 characters (about 190 random bits)."""
    return AUTOMATION_TOKEN_PREFIX + "".join(
        secrets.choice(contract.BASE62) for _ in range(AUTOMATION_TOKEN_RANDOM_CHARS)
    )


@transaction.atomic
def automation_token_create(*, name: str, actor: User) -> tuple[AutomationToken, str]:
    """A named token for CI. Returns the row and the token, which is shown once and never stored."""
    if not is_operator(actor):
        raise NotAllowed("Only operators can create automation tokens.")
    if not name or slugify(name) != name:
        hint = "Use lowercase letters, digits and hyphens, e.g. ci-deploy."
        raise ApplicationError(f"Invalid token name {name!r}. {hint}", fields={"name": [hint]})
    if AutomationToken.objects.filter(name=name).exists():
        raise Conflict(f"An automation token named {name!r} already exists; revoke it or choose another name.")
    secret = automation_token_secret_new()
    try:
        with transaction.atomic():
            token = AutomationToken.objects.create(
                name=name,
                prefix=secret[:AUTOMATION_TOKEN_DISPLAY_CHARS],
                token_hash=key_hash(secret),
                created_by=actor,
            )
    except IntegrityError as exc:  # a concurrent create of the same name
        raise Conflict(f"An automation token named {name!r} already exists.") from exc
    audit_record(actor=actor, action="automation_token.create", obj=token, after=model_snapshot(token))
    return token, secret


@transaction.atomic
def automation_token_revoke(*, token: AutomationToken, actor: User) -> AutomationToken:
    """Stop the token at once; the row stays, for the audit log. Revoking twice changes nothing."""
    if not is_operator(actor):
        raise NotAllowed("Only operators can revoke automation tokens.")
    if token.revoked_at is not None:
        return token
    before = model_snapshot(token)
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    audit_record(actor=actor, action="automation_token.revoke", obj=token, before=before, after=model_snapshot(token))
    return token


def automation_token_authenticate(secret: str) -> AutomationToken | None:
    """The live token ``secret`` names, its use recorded; None if unknown, revoked, or its
    creator is no longer an active operator (a token never outlives its creator's rights)."""
    if not secret.startswith(AUTOMATION_TOKEN_PREFIX):
        return None
    digest = key_hash(secret)
    # Found by its display prefix, then compared in constant time (healthchecks, Stripe).
    candidates = AutomationToken.objects.select_related("created_by").filter(
        prefix=secret[:AUTOMATION_TOKEN_DISPLAY_CHARS]
    )
    token = next((t for t in candidates if hmac.compare_digest(t.token_hash, digest)), None)
    if token is None or token.revoked_at is not None:
        return None
    creator = token.created_by
    if creator is None or not creator.is_active or not is_operator(creator):
        return None
    now = timezone.now()
    AutomationToken.objects.filter(pk=token.pk).update(last_used_at=now)
    token.last_used_at = now
    return token
