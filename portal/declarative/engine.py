"""The live state as a document (dump), and the steps that bring it to a document (reconcile).

Reconciling first checks everything it can without writing (references, lifecycle paths,
dates, OpenAPI documents, --prune's refusals) and collects every problem with its file line;
only a clean plan yields steps. Each step calls a catalog or plans service, so the write is
validated, audited as the operator and published to the gateway after commit. The caller
(services.config_sync) runs the steps in one transaction: a service's refusal half-way rolls
back the steps before it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from portal.catalog import selectors as catalog_selectors
from portal.catalog import services as catalog_services
from portal.core.errors import ApplicationError
from portal.core.extensions import version_traffic
from portal.declarative.loader import ConfigError, Document, PathKey
from portal.declarative.schema import FORMAT_VERSION, VERSION_OPTION_PROPERTIES
from portal.plans import selectors as plan_selectors
from portal.plans import services as plan_services
from portal.plans.limits import LIMIT_FIELDS

if TYPE_CHECKING:
    from portal.accounts.models import User
    from portal.catalog.models import Api, ApiVersion
    from portal.plans.models import Override, Plan

API_VALUE_FIELDS = [f for f in catalog_services.API_FIELDS if f != "slug"]
VERSION_VALUE_FIELDS = ["changelog", *VERSION_OPTION_PROPERTIES]
PLAN_VALUE_FIELDS = [f for f in plan_services.PLAN_FIELDS if f != "slug"]
MONEY_FIELDS = {"monthly_price", "overage_price_per_1000"}
# --prune does not retire a version that served requests this recently, unless forced.
TRAFFIC_WINDOW = dt.timedelta(hours=24)


# --- dump --------------------------------------------------------------------------------


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _version_entry(version: ApiVersion) -> dict[str, Any]:
    return {
        "label": version.label,
        "state": version.state,
        "sunset_at": _iso(version.sunset_at),
        "successor": version.successor.label if version.successor is not None else None,
        **{f: getattr(version, f) for f in VERSION_VALUE_FIELDS},
        "upstreams": [{"url": u.url, "weight": u.weight} for u in version.upstreams.all()],
        "openapi": version.openapi,
    }


def _plan_entry(plan: Plan) -> dict[str, Any]:
    values = {f: getattr(plan, f) for f in PLAN_VALUE_FIELDS}
    for name in MONEY_FIELDS:
        values[name] = _money(values[name])
    return {"api": plan.api.slug, "slug": plan.slug, **values}


def _override_entry(override: Override) -> dict[str, Any]:
    return {
        "subscription": override.subscription_id,
        "expires_at": _iso(override.expires_at),
        "reason": override.reason,
        **{f: getattr(override, f) for f in LIMIT_FIELDS},
    }


def dump() -> dict[str, Any]:
    """The live state in the file's format, in a stable order (so two dumps compare as text)."""
    versions: dict[int, list[ApiVersion]] = {}
    for version in catalog_selectors.versions_for_routes().order_by("api_id", "label"):
        versions.setdefault(version.api_id, []).append(version)
    apis = [
        {
            "slug": api.slug,
            **{f: getattr(api, f) for f in API_VALUE_FIELDS},
            "versions": [_version_entry(v) for v in versions.get(api.pk, [])],
        }
        for api in catalog_selectors.apis_all().order_by("slug")
    ]
    return {
        "format_version": FORMAT_VERSION,
        "apis": apis,
        "plans": [_plan_entry(p) for p in plan_selectors.plans_with_api().order_by("api__slug", "slug")],
        "overrides": [_override_entry(o) for o in plan_selectors.overrides_unexpired()],
    }


def canonical_sha256(data: dict[str, Any]) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


# --- changes -----------------------------------------------------------------------------


def _jsonable(value: object) -> object:
    if isinstance(value, dt.datetime):
        return _iso(value)
    if isinstance(value, Decimal):
        return str(value)
    return value


def _show(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return str(value)
    text = json.dumps(_jsonable(value), ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:79] + "…"


@dataclass(frozen=True)
class Change:
    """One field-level difference: ``plan echo/pro: quota_per_month 1000000 -> 2000000``."""

    action: str  # create, update, delete, transition
    subject: str  # "api echo", "version echo v1", "plan echo/pro", "override 12 until …"
    field: str = ""
    before: object = None
    after: object = None

    def __str__(self) -> str:
        if self.action == "transition":
            return f"{self.subject}: {self.field} {self.before} -> {self.after}"
        if self.action == "update":
            return f"{self.subject}: {self.field} {_show(self.before)} -> {_show(self.after)}"
        return f"{self.subject}: {self.action}"

    def as_dict(self) -> dict[str, object]:
        return {
            "action": self.action,
            "subject": self.subject,
            "field": self.field,
            "before": _jsonable(self.before),
            "after": _jsonable(self.after),
            "text": str(self),
        }


@dataclass
class Step:
    changes: list[Change]
    apply: Callable[[User], object]
    path: PathKey  # where the file asked for it, to place a service's refusal


@dataclass
class Reconciliation:
    steps: list[Step] = field(default_factory=list)

    @property
    def changes(self) -> list[Change]:
        return [change for step in self.steps for change in step.changes]

    def apply(self, *, document: Document, actor: User) -> None:
        for step in self.steps:
            try:
                step.apply(actor)
            except (ApplicationError, ValidationError) as exc:
                raise ConfigError([document.error(step.path, _service_message(exc))]) from exc


def _service_message(exc: ApplicationError | ValidationError) -> str:
    if isinstance(exc, ApplicationError):
        message, fields = exc.message, exc.fields
    else:
        message = "invalid"
        fields = exc.message_dict if hasattr(exc, "error_dict") else {"": exc.messages}
    details = "; ".join(
        f"{name}: {' '.join(map(str, errs))}" if name else " ".join(map(str, errs)) for name, errs in fields.items()
    )
    return f"{message} ({details})" if details else message


def _same(current: object, wanted: object) -> bool:
    if isinstance(current, Decimal) or isinstance(wanted, Decimal):
        return (current is None and wanted is None) or (
            current is not None and wanted is not None and Decimal(str(current)) == Decimal(str(wanted))
        )
    return current == wanted


# --- reconcile ---------------------------------------------------------------------------


def _api_get(slug: str) -> Api:
    return catalog_selectors.apis_all().get(slug=slug)


def _version_get(api_slug: str, label: str) -> ApiVersion:
    return catalog_selectors.api_version_get(api_id=_api_get(api_slug).pk, label=label)


class _Planner:
    def __init__(self, document: Document, *, prune: bool, force: bool) -> None:
        self.doc = document
        self.prune = prune
        self.force = force
        self.errors: list[str] = []
        self.refusals: list[str] = []
        self.now = timezone.now()
        # Steps run phase by phase: a successor or a plan may name what an earlier phase creates.
        self.phases: dict[str, list[Step]] = {
            name: [] for name in ("apis", "versions", "successors", "transitions", "plans", "overrides", "prune")
        }

    def add(self, phase: str, changes: list[Change], apply: Callable[[User], object], path: PathKey) -> None:
        self.phases[phase].append(Step(changes=changes, apply=apply, path=path))

    def error(self, path: PathKey, message: str) -> None:
        self.errors.append(self.doc.error(path, message))

    def when(self, path: PathKey, value: object) -> dt.datetime | None:
        if value is None:
            return None
        try:
            parsed = parse_datetime(str(value))
        except ValueError:  # well-formed but not on the calendar: 2027-02-30
            parsed = None
        if parsed is None:
            self.error(path, f"not a date and time: {value!r} (use ISO 8601, e.g. 2027-01-31T00:00:00Z)")
            return None
        return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, dt.UTC)

    def run(self) -> Reconciliation:
        data = self.doc.data
        self.db_apis = {api.slug: api for api in catalog_selectors.apis_all()}
        self.db_versions = {(v.api.slug, v.label): v for v in catalog_selectors.versions_for_routes()}
        self.file_apis: set[str] = set()
        self.file_versions: set[tuple[str, str]] = set()
        for i, api_data in enumerate(data.get("apis", [])):
            self.api(("apis", i), api_data)
        self.plans(data.get("plans", []))
        self.overrides(data.get("overrides", []))
        if self.prune:
            self.prune_versions()
        if self.errors:
            raise ConfigError(self.errors)
        if self.refusals and not self.force:
            raise ConfigError(
                [f"{self.doc.filename}: --prune refuses: {r}; give --force to do it anyway" for r in self.refusals]
            )
        return Reconciliation(steps=[step for steps in self.phases.values() for step in steps])

    # APIs and versions -------------------------------------------------------------------

    def api(self, path: PathKey, api_data: dict[str, Any]) -> None:
        slug = api_data["slug"]
        if slug in self.file_apis:
            self.error((*path, "slug"), f"the API {slug} is named twice")
            return
        self.file_apis.add(slug)
        subject = f"api {slug}"
        fields = {f: api_data[f] for f in API_VALUE_FIELDS if f in api_data}
        api = self.db_apis.get(slug)
        if api is None:
            self.add(
                "apis",
                [Change("create", subject)],
                lambda actor: catalog_services.api_create(actor=actor, slug=slug, **fields),
                path,
            )
        else:
            changed = {f: v for f, v in fields.items() if not _same(getattr(api, f), v)}
            if changed:
                changes = [Change("update", subject, f, getattr(api, f), v) for f, v in changed.items()]
                self.add(
                    "apis",
                    changes,
                    lambda actor: catalog_services.api_update(api=_api_get(slug), actor=actor, **changed),
                    path,
                )
        versions = api_data.get("versions", [])
        labels = {v["label"] for v in versions}
        for j, version_data in enumerate(versions):
            self.version((*path, "versions", j), slug, version_data, labels)

    def openapi(self, path: PathKey, version_data: dict[str, Any]) -> tuple[bool, Any]:
        """(given, document): the inline document, or the one at openapi_file, checked now."""
        if "openapi_file" in version_data:
            file_path = (*path, "openapi_file")
            name = version_data["openapi_file"]
            if self.doc.base_dir is None:
                self.error(file_path, "openapi_file needs a file on disk; inline the document as openapi")
                return False, None
            base = self.doc.base_dir.resolve()
            target = (base / name).resolve()
            if not target.is_relative_to(base):
                self.error(file_path, f"{name} is outside the configuration's directory")
                return False, None
            try:
                raw = target.read_bytes()
                return True, catalog_services.openapi_parse(raw)
            except OSError as exc:
                self.error(file_path, f"cannot read {name}: {exc.strerror}")
            except ApplicationError as exc:
                self.error(file_path, _service_message(exc))
            return False, None
        if "openapi" in version_data:
            document = version_data["openapi"]
            if document is not None:
                try:
                    catalog_services.openapi_validate_document(document)
                except ApplicationError as exc:
                    self.error((*path, "openapi"), _service_message(exc))
                    return False, None
            return True, document
        return False, None

    def version(self, path: PathKey, api_slug: str, version_data: dict[str, Any], labels: set[str]) -> None:
        label = version_data["label"]
        key = (api_slug, label)
        if key in self.file_versions:
            self.error((*path, "label"), f"the version {label} of {api_slug} is named twice")
            return
        self.file_versions.add(key)
        subject = f"version {api_slug} {label}"
        fields: dict[str, Any] = {f: version_data[f] for f in VERSION_VALUE_FIELDS if f in version_data}
        if "sunset_at" in version_data:
            fields["sunset_at"] = self.when((*path, "sunset_at"), version_data["sunset_at"])
        given, document = self.openapi(path, version_data)
        if given:
            fields["openapi"] = document
        upstreams = [{"url": u["url"], "weight": u.get("weight", 1)} for u in version_data["upstreams"]]
        version = self.db_versions.get(key)
        if version is None:
            self.add(
                "versions",
                [Change("create", subject)],
                lambda actor: catalog_services.version_create(
                    api=_api_get(api_slug), label=label, upstreams=upstreams, actor=actor, **fields
                ),
                path,
            )
            state = "draft"
        else:
            changed = {f: v for f, v in fields.items() if not _same(getattr(version, f), v)}
            changes = [
                Change(
                    "update",
                    subject,
                    f,
                    "(document)" if f == "openapi" else getattr(version, f),
                    "(document)" if f == "openapi" else v,
                )
                for f, v in changed.items()
            ]
            current = [{"url": u.url, "weight": u.weight} for u in version.upstreams.all()]
            new_upstreams = upstreams if current != upstreams else None
            if new_upstreams is not None:
                changes.append(Change("update", subject, "upstreams", current, upstreams))
            if changes:
                self.add(
                    "versions",
                    changes,
                    lambda actor: catalog_services.version_update(
                        version=_version_get(api_slug, label), actor=actor, upstreams=new_upstreams, **changed
                    ),
                    path,
                )
            state = version.state
        self.successor(path, api_slug, label, version_data, version, labels)
        wanted = version_data.get("state")
        if wanted is not None and wanted != state:
            if wanted == "published" and fields.get("sunset_at") is not None:
                # Publishing (again) clears the sunset date: keeping it in the file would
                # show as drift on every later diff.
                self.error((*path, "sunset_at"), "a version that becomes published has no sunset date: remove it")
            self.transition((*path, "state"), subject, api_slug, label, state, wanted, fields.get("sunset_at"))

    def successor(
        self,
        path: PathKey,
        api_slug: str,
        label: str,
        version_data: dict[str, Any],
        version: ApiVersion | None,
        labels: set[str],
    ) -> None:
        if "successor" not in version_data:
            return
        wanted = version_data["successor"]
        if wanted is not None and (
            wanted == label or (wanted not in labels and (api_slug, wanted) not in self.db_versions)
        ):
            self.error((*path, "successor"), f"unknown version {wanted!r}: not another version of {api_slug}")
            return
        current = version.successor.label if version is not None and version.successor is not None else None
        if current == wanted:
            return

        def apply(actor: User) -> object:
            successor_id = _version_get(api_slug, wanted).pk if wanted is not None else None
            return catalog_services.version_update(
                version=_version_get(api_slug, label), actor=actor, successor_id=successor_id
            )

        self.add(
            "successors",
            [Change("update", f"version {api_slug} {label}", "successor", current, wanted)],
            apply,
            (*path, "successor"),
        )

    def transition(
        self,
        path: PathKey,
        subject: str,
        api_slug: str,
        label: str,
        state: str,
        wanted: str,
        sunset_at: dt.datetime | None,
    ) -> None:
        steps = catalog_selectors.lifecycle_path(from_state=state, to_state=wanted)
        if steps is None:
            self.error(path, f"cannot go from {state} to {wanted}")
            return

        def apply(actor: User) -> object:
            for to_state in steps:
                catalog_services.version_transition(
                    version=_version_get(api_slug, label),
                    to_state=to_state,
                    actor=actor,
                    sunset_at=sunset_at if to_state == "deprecated" else None,
                )
            return None

        self.add("transitions", [Change("transition", subject, "state", state, wanted)], apply, path)

    # plans and overrides -----------------------------------------------------------------

    def plans(self, plans: list[dict[str, Any]]) -> None:
        db_plans = {(p.api.slug, p.slug): p for p in plan_selectors.plans_with_api()}
        named: set[tuple[str, str]] = set()
        for i, plan_data in enumerate(plans):
            path: PathKey = ("plans", i)
            api_slug, slug = plan_data["api"], plan_data["slug"]
            if api_slug not in self.file_apis and api_slug not in self.db_apis:
                self.error((*path, "api"), f"unknown API {api_slug!r}: neither in this file nor in the portal")
                continue
            if (api_slug, slug) in named:
                self.error((*path, "slug"), f"the plan {api_slug}/{slug} is named twice")
                continue
            named.add((api_slug, slug))
            self.plan(path, api_slug, slug, plan_data, db_plans.get((api_slug, slug)))
        if self.prune:
            self.prune_plans([p for key, p in db_plans.items() if key not in named])

    def plan(self, path: PathKey, api_slug: str, slug: str, plan_data: dict[str, Any], plan: Plan | None) -> None:
        subject = f"plan {api_slug}/{slug}"
        fields: dict[str, Any] = {f: plan_data[f] for f in PLAN_VALUE_FIELDS if f in plan_data}
        for name in MONEY_FIELDS & fields.keys():
            fields[name] = None if fields[name] is None else Decimal(fields[name])
        if plan is None:
            self.add(
                "plans",
                [Change("create", subject)],
                lambda actor: plan_services.plan_create(actor=actor, api=_api_get(api_slug), slug=slug, **fields),
                path,
            )
            return
        changed = {f: v for f, v in fields.items() if not _same(getattr(plan, f), v)}
        if changed:
            plan_id = plan.pk
            changes = [Change("update", subject, f, getattr(plan, f), v) for f, v in changed.items()]
            self.add(
                "plans",
                changes,
                lambda actor: plan_services.plan_update(
                    plan=plan_selectors.plan_get(plan_id=plan_id), actor=actor, **changed
                ),
                path,
            )

    def overrides(self, overrides: list[dict[str, Any]]) -> None:
        live = list(plan_selectors.overrides_unexpired())
        by_key = {(o.subscription_id, o.expires_at): o for o in live}
        subscriptions = plan_selectors.subscriptions_by_id(ids=[o["subscription"] for o in overrides])
        kept: set[int] = set()
        for i, override_data in enumerate(overrides):
            path: PathKey = ("overrides", i)
            subscription_id = override_data["subscription"]
            expires_at = self.when((*path, "expires_at"), override_data["expires_at"])
            if subscription_id not in subscriptions:
                self.error((*path, "subscription"), f"unknown subscription {subscription_id}")
                continue
            if expires_at is None:
                continue
            existing = by_key.get((subscription_id, expires_at))
            if existing is None and expires_at <= self.now:
                self.error((*path, "expires_at"), "an override must expire in the future")
                continue
            self.override(path, override_data, subscription_id, expires_at, existing)
            if existing is not None:
                kept.add(existing.pk)
        if self.prune:
            for override in live:
                if override.pk not in kept:
                    self.add(
                        "prune",
                        [Change("delete", _override_subject(override.subscription_id, override.expires_at))],
                        _override_deleter(override),
                        (),
                    )

    def override(
        self,
        path: PathKey,
        override_data: dict[str, Any],
        subscription_id: int,
        expires_at: dt.datetime,
        existing: Override | None,
    ) -> None:
        subject = _override_subject(subscription_id, expires_at)
        limits = {f: override_data.get(f) for f in LIMIT_FIELDS}
        reason = override_data.get("reason", "")
        wanted = {**limits, "reason": reason}
        if existing is not None:
            # An override has no update service: a changed one is replaced (both audited).
            changes = [
                Change("update", subject, f, getattr(existing, f), v)
                for f, v in wanted.items()
                if getattr(existing, f) != v
            ]
            if not changes:
                return
        else:
            changes = [Change("create", subject)]

        def apply(actor: User) -> object:
            if existing is not None:
                plan_services.override_delete(override=existing, actor=actor)
            subscription = plan_selectors.subscriptions_by_id(ids=[subscription_id])[subscription_id]
            return plan_services.override_create(
                subscription=subscription, actor=actor, expires_at=expires_at, reason=reason, **limits
            )

        self.add("overrides", changes, apply, path)

    # prune -------------------------------------------------------------------------------

    def prune_plans(self, plans: list[Plan]) -> None:
        ids = [p.pk for p in plans]
        live = plan_selectors.live_subscription_counts(plan_ids=ids)
        history = plan_selectors.plan_ids_ever_subscribed(plan_ids=ids)
        for plan in plans:
            subject = f"plan {plan.api.slug}/{plan.slug}"
            if plan.pk in history and not live.get(plan.pk) and not plan.is_active and plan.visibility == "private":
                continue  # already pruned: kept (deactivated) only for its subscriptions' billing history
            if live.get(plan.pk):
                self.refusals.append(f"{subject} has {live[plan.pk]} live subscription(s)")
            action = "delete" if plan.pk not in history else "deactivate"
            self.add(
                "prune",
                [Change(action, subject)],
                _plan_deleter(plan, force=self.force),
                (),
            )

    def prune_versions(self) -> None:
        since = self.now - TRAFFIC_WINDOW
        for key, version in sorted(self.db_versions.items()):
            if key in self.file_versions or version.state == "retired":
                continue
            subject = f"version {key[0]} {key[1]}"
            requests = version_traffic(version.api_id, version.label, since)
            if requests:
                self.refusals.append(f"{subject} had {requests:,} request(s) in the last 24 hours")
            self.add(
                "prune",
                [Change("transition", subject, "state", version.state, "retired")],
                _version_retirer(version),
                (),
            )


# Closures over one object each (a lambda in a loop would see only the last one).
def _override_deleter(override: Override) -> Callable[[User], object]:
    return lambda actor: plan_services.override_delete(override=override, actor=actor)


def _plan_deleter(plan: Plan, *, force: bool) -> Callable[[User], object]:
    return lambda actor: plan_services.plan_delete(plan=plan, actor=actor, force=force)


def _version_retirer(version: ApiVersion) -> Callable[[User], object]:
    return lambda actor: catalog_services.version_transition(version=version, to_state="retired", actor=actor)


def _override_subject(subscription_id: int, expires_at: dt.datetime) -> str:
    return f"override of subscription {subscription_id} until {_iso(expires_at)}"


def reconcile(document: Document, *, prune: bool = False, force: bool = False) -> Reconciliation:
    """The steps from the live state to the document; ConfigError lists every problem, with lines."""
    return _Planner(document, prune=prune, force=force).run()
