"""Marketplace pages: the public catalog, an API's overview, versions, plans and docs."""

from __future__ import annotations

import copy
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from portal.catalog.models import Api, ApiVersion, LifecycleState
from portal.catalog.samples import KEY_ENV, operation_samples
from portal.catalog.selectors import (
    api_filter_tag,
    api_search,
    api_tags,
    apis_visible_to,
    latest_version,
    versions_visible_to,
)
from portal.keys.selectors import active_keys_for
from portal.plans.selectors import plans_visible_to

MAX_QUERY_CHARS = 200
KEY_HEADER = "X-API-Key"
SECURITY_SCHEME = "TollwayKey"


def _api_or_404(request: HttpRequest, slug: str) -> Api:
    return get_object_or_404(apis_visible_to(request.user), slug=slug)


def _version_or_404(request: HttpRequest, api: Api, label: str) -> ApiVersion:
    return get_object_or_404(versions_visible_to(request.user), api=api, label=label)


def gateway_base(api: Api, version: ApiVersion) -> str:
    return f"{settings.GATEWAY_PUBLIC_URL.rstrip('/')}/{api.slug}/{version.label}"


@require_GET
def marketplace_home(request: HttpRequest) -> HttpResponse:
    # NUL is legal in a query string but PostgreSQL refuses it in a text parameter.
    query = request.GET.get("q", "").replace("\x00", "").strip()[:MAX_QUERY_CHARS]
    tag = request.GET.get("tag", "").replace("\x00", "").strip()[:MAX_QUERY_CHARS]
    visible = apis_visible_to(request.user)
    apis = list(api_search(visible, query).prefetch_related("versions")) if query else list(
        visible.prefetch_related("versions")
    )
    if tag:
        apis = api_filter_tag(apis, tag)
    plans = plans_visible_to(request.user).filter(api__in=[a.pk for a in apis]).order_by("monthly_price", "name")
    cheapest: dict[int, Any] = {}
    for plan in plans:
        cheapest.setdefault(plan.api_id, plan)
    staff = request.user.is_staff
    cards = []
    for api in apis:
        versions = [v for v in api.versions.all() if staff or v.state != LifecycleState.DRAFT]
        cards.append(
            {
                "api": api,
                "latest": latest_version(versions),
                "versions": sorted(versions, key=lambda v: v.created_at, reverse=True),
                "cheapest": cheapest.get(api.pk),
            }
        )
    return render(
        request,
        "catalog/home.html",
        {"cards": cards, "query": query, "tag": tag, "tags": api_tags(visible)},
    )


@require_GET
def api_detail(request: HttpRequest, slug: str) -> HttpResponse:
    api = _api_or_404(request, slug)
    versions = list(versions_visible_to(request.user).filter(api=api).order_by("-created_at"))
    return render(
        request,
        "catalog/api_detail.html",
        {
            "api": api,
            "versions": versions,
            "latest": latest_version(versions),
            "has_changelog": any(v.changelog for v in versions),
            "plans": plans_visible_to(request.user).filter(api=api).order_by("monthly_price", "name"),
        },
    )


@require_GET
def version_docs(request: HttpRequest, slug: str, label: str) -> HttpResponse:
    api = _api_or_404(request, slug)
    version = _version_or_404(request, api, label)
    return render(
        request,
        "catalog/version_docs.html",
        {"api": api, "version": version, "gateway_base": gateway_base(api, version), "key_header": KEY_HEADER,
         "key_env": KEY_ENV},
    )


@require_GET
def version_reference(request: HttpRequest, slug: str, label: str) -> HttpResponse:
    api = _api_or_404(request, slug)
    version = _version_or_404(request, api, label)
    keys = []
    if request.user.is_authenticated:
        keys = [
            k
            for k in active_keys_for(request.user).order_by("application__name", "-created_at")
            if k.effective_status in {"active", "rotating"}
        ]
    return render(
        request,
        "catalog/version_reference.html",
        {
            "api": api,
            "version": version,
            "gateway_base": gateway_base(api, version),
            "keys": keys,
            "key_header": KEY_HEADER,
            "key_env": KEY_ENV,
            # Generated from the same document the reference renders, so every operation has them.
            "operations": operation_samples(
                version.openapi, base_url=gateway_base(api, version), key_header=KEY_HEADER
            ),
        },
    )


def openapi_for_gateway(document: dict[str, Any], server_url: str) -> dict[str, Any]:
    """The version's OpenAPI document as the try-it needs it: served through the
    gateway, authenticated with the developer's key in the X-API-Key header."""
    doc = copy.deepcopy(document)
    doc["servers"] = [{"url": server_url, "description": "Tollway gateway"}]
    if str(doc.get("openapi", "")).startswith("3"):
        components = doc.setdefault("components", {})
        components.setdefault("securitySchemes", {})[SECURITY_SCHEME] = {
            "type": "apiKey",
            "in": "header",
            "name": KEY_HEADER,
            "description": "Your Tollway API key. Create one in your dashboard.",
        }
        doc["security"] = [{SECURITY_SCHEME: []}]
    return doc


@require_GET
def version_openapi(request: HttpRequest, slug: str, label: str) -> HttpResponse:
    api = _api_or_404(request, slug)
    version = _version_or_404(request, api, label)
    if not isinstance(version.openapi, dict):
        body = {"error": {"type": "not_found", "message": "This version has no OpenAPI document."}}
        return JsonResponse(body, status=404)
    return JsonResponse(openapi_for_gateway(version.openapi, gateway_base(api, version)))
