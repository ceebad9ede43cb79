from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.contrib.auth.models import AnonymousUser
from django.db.models import Q, QuerySet

from portal.catalog.models import LIFECYCLE_TRANSITIONS, Api, ApiVersion, LifecycleState
from portal.catalog.models import RedisFailureMode as RedisFailureMode  # re-exported: the config schema names it
from portal.catalog.models import Visibility as Visibility  # re-exported: plans share the vocabulary

if TYPE_CHECKING:
    from portal.accounts.models import User

# What developers may see of a version: drafts are the operators' work in progress.
VISIBLE_STATES = (LifecycleState.PUBLISHED, LifecycleState.DEPRECATED, LifecycleState.RETIRED)


def apis_visible_to(user: User | AnonymousUser) -> QuerySet[Api]:
    if getattr(user, "is_staff", False):
        return Api.objects.all()
    return Api.objects.filter(visibility=Visibility.PUBLIC).filter(versions__state__in=VISIBLE_STATES).distinct()


def versions_visible_to(user: User | AnonymousUser) -> QuerySet[ApiVersion]:
    qs = ApiVersion.objects.select_related("api", "successor")
    if getattr(user, "is_staff", False):
        return qs
    return qs.filter(api__visibility=Visibility.PUBLIC, state__in=VISIBLE_STATES)


def api_search(queryset: QuerySet[Api], text: str) -> QuerySet[Api]:
    """Full-text-ish search over name, summary and tags, portable across SQLite and PostgreSQL."""
    for word in text.split()[:8]:
        queryset = queryset.filter(
            Q(name__icontains=word) | Q(summary__icontains=word) | Q(tags__icontains=word) | Q(slug__icontains=word)
        )
    return queryset


def api_tags(queryset: QuerySet[Api]) -> list[str]:
    """Every tag in use, sorted, for the marketplace's tag filter."""
    tags: set[str] = set()
    for api_tags_value in queryset.values_list("tags", flat=True):
        tags.update(str(t) for t in api_tags_value or [] if t)
    return sorted(tags, key=str.lower)


def api_filter_tag(apis: list[Api], tag: str) -> list[Api]:
    # In Python rather than tags__contains: SQLite has no JSON containment lookup, and
    # the catalog is small enough (one row per API product) to filter after the query.
    return [api for api in apis if tag in (api.tags or [])]


def latest_version(versions: list[ApiVersion]) -> ApiVersion | None:
    """The newest version a developer should build on: published first, else deprecated."""
    for state in (LifecycleState.PUBLISHED, LifecycleState.DEPRECATED):
        candidates = [v for v in versions if v.state == state]
        if candidates:
            return max(candidates, key=lambda v: v.created_at)
    return None


def api_names(*, ids: Iterable[int] | None = None) -> dict[int, str]:
    """API id -> name, in the catalog's order; every API unless ``ids`` is given."""
    qs = Api.objects.all() if ids is None else Api.objects.filter(pk__in=list(ids))
    return dict(qs.values_list("pk", "name"))


def api_version_get(*, api_id: int, label: str) -> ApiVersion:
    """One version by its API and label (ApiVersion.DoesNotExist if there is none)."""
    return ApiVersion.objects.select_related("api", "successor").get(api_id=api_id, label=label)


def version_is_deprecated(version: ApiVersion) -> bool:
    return version.state == LifecycleState.DEPRECATED


def deprecated_versions(*, api_id: int | None = None, label: str | None = None) -> QuerySet[ApiVersion]:
    versions = ApiVersion.objects.filter(state=LifecycleState.DEPRECATED).select_related("api", "successor")
    if api_id is not None:
        versions = versions.filter(api_id=api_id)
    if label is not None:
        versions = versions.filter(label=label)
    return versions


def apis_all() -> QuerySet[Api]:
    """Every API, unscoped: names the model for a scoped id field's schema, never for lookups."""
    return Api.objects.all()
def versions_for_routes() -> QuerySet[ApiVersion]:
    """Every version (drafts included), with what its gateway route record needs preloaded."""
    return ApiVersion.objects.select_related("api", "successor").prefetch_related("upstreams")


def lifecycle_path(*, from_state: str, to_state: str) -> list[str] | None:
    """The shortest run of allowed transitions from one state to another: [] when they are
    equal, None when the rules allow no way there (e.g. out of retired)."""
    paths: dict[str, list[str]] = {from_state: []}
    frontier = [from_state]
    while frontier:
        state = frontier.pop(0)
        if state == to_state:
            return paths[state]
        for nxt in sorted(LIFECYCLE_TRANSITIONS.get(state, set())):
            if nxt not in paths:
                paths[nxt] = [*paths[state], str(nxt)]
                frontier.append(nxt)
    return None


def lifecycle_states() -> list[str]:
    return [str(state) for state in LifecycleState]
