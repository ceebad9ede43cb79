"""The portal's webhook pages: an organization's endpoints, their delivery log, test
events, manual retries and secret rotation. A secret appears only in the response to
the POST that made it, marked no-store."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from portal.accounts.selectors import organizations_of_member
from portal.core.errors import ApplicationError
from portal.core.web import AuthenticatedHttpRequest, form_add_error, once_claim
from portal.webhooks import services
from portal.webhooks.forms import EndpointCreateForm, EndpointForm, OnceForm
from portal.webhooks.models import WebhookEndpoint
from portal.webhooks.selectors import deliveries_of, endpoints_of_member

ALREADY_SHOWN = "That secret was already shown once and cannot be shown again."


def _endpoint_or_404(request: HttpRequest, endpoint_id: int) -> WebhookEndpoint:
    # Only the caller's organizations' endpoints (operators manage the platform's in the admin);
    # 404 rather than 403: do not confirm that someone else's endpoint exists.
    return get_object_or_404(endpoints_of_member(request.user), pk=endpoint_id)


def _secret_page(request: HttpRequest, endpoint: WebhookEndpoint, secret: str, *, rotated: bool) -> HttpResponse:
    return render(request, "webhooks/secret.html", {"endpoint": endpoint, "secret": secret, "rotated": rotated})


@login_required
@require_http_methods(["GET"])
def endpoint_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    return render(request, "webhooks/endpoint_list.html", {"endpoints": list(endpoints_of_member(request.user))})


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def endpoint_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    organizations = organizations_of_member(request.user)
    if not organizations.exists():
        messages.info(request, "Webhook endpoints belong to an organization. Create one first.")
        return redirect("organization-create")
    form = EndpointCreateForm(
        request.POST or None, organizations=organizations, initial={"organization": organizations[0]}
    )
    if request.method == "POST" and form.is_valid():
        if not once_claim(request, "webhook-create", form.cleaned_data["once"]):
            messages.info(request, ALREADY_SHOWN)
            return redirect("webhook-list")
        try:
            created = services.webhook_endpoint_create(
                organization=form.cleaned_data["organization"],
                url=form.cleaned_data["url"],
                event_types=list(form.cleaned_data["events"]),
                description=form.cleaned_data["description"],
                actor=request.user,
            )
        except ApplicationError as exc:
            form_add_error(form, exc)
        else:
            return _secret_page(request, created.endpoint, created.secret, rotated=False)
    return render(request, "webhooks/endpoint_form.html", {"form": form})


@login_required
@require_http_methods(["GET"])
def endpoint_detail(request: AuthenticatedHttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint_or_404(request, endpoint_id)
    page = Paginator(deliveries_of(endpoint), 25).get_page(request.GET.get("page"))
    return render(
        request,
        "webhooks/endpoint_detail.html",
        {"endpoint": endpoint, "page": page, "once_form": OnceForm()},
    )


@login_required
@require_http_methods(["GET", "POST"])
def endpoint_edit(request: AuthenticatedHttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint_or_404(request, endpoint_id)
    initial = {"url": endpoint.url, "description": endpoint.description, "events": endpoint.event_types}
    form = EndpointForm(request.POST or None, editing=True, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.webhook_endpoint_update(
                endpoint=endpoint,
                actor=request.user,
                url=form.cleaned_data["url"],
                event_types=list(form.cleaned_data["events"]),
                description=form.cleaned_data["description"],
            )
        except ApplicationError as exc:
            form_add_error(form, exc)
        else:
            messages.success(request, "Endpoint saved.")
            return redirect("webhook-detail", endpoint_id=endpoint.pk)
    return render(request, "webhooks/endpoint_form.html", {"form": form, "endpoint": endpoint})


@login_required
@require_POST
def endpoint_set_enabled(request: AuthenticatedHttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint_or_404(request, endpoint_id)
    enable = request.POST.get("enabled") == "1"
    services.webhook_endpoint_update(endpoint=endpoint, actor=request.user, is_enabled=enable)
    messages.success(request, "Endpoint enabled." if enable else "Endpoint disabled: nothing is sent to it.")
    return redirect("webhook-detail", endpoint_id=endpoint.pk)


@login_required
@require_http_methods(["GET", "POST"])
def endpoint_delete(request: AuthenticatedHttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint_or_404(request, endpoint_id)
    if request.method == "POST":
        services.webhook_endpoint_delete(endpoint=endpoint, actor=request.user)
        messages.success(request, f"Endpoint {endpoint.url} deleted.")
        return redirect("webhook-list")
    return render(request, "webhooks/endpoint_confirm_delete.html", {"endpoint": endpoint})


@login_required
@require_POST
def endpoint_test(request: AuthenticatedHttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint_or_404(request, endpoint_id)
    services.webhook_test_send(endpoint=endpoint, actor=request.user)
    messages.success(request, "Test event queued: its delivery appears in the log below.")
    return redirect("webhook-detail", endpoint_id=endpoint.pk)


@never_cache
@login_required
@require_POST
def endpoint_rotate(request: AuthenticatedHttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint_or_404(request, endpoint_id)
    form = OnceForm(request.POST)
    if not form.is_valid() or not once_claim(request, "webhook-rotate", form.cleaned_data["once"]):
        messages.info(request, ALREADY_SHOWN)
        return redirect("webhook-detail", endpoint_id=endpoint.pk)
    rotated = services.webhook_endpoint_secret_rotate(
        endpoint=endpoint, actor=request.user, overlap=dt.timedelta(hours=24)
    )
    return _secret_page(request, rotated.endpoint, rotated.secret, rotated=True)


@login_required
@require_POST
def delivery_retry(request: AuthenticatedHttpRequest, endpoint_id: int, delivery_id: int) -> HttpResponse:
    endpoint = _endpoint_or_404(request, endpoint_id)
    delivery = get_object_or_404(deliveries_of(endpoint), pk=delivery_id)
    services.webhook_delivery_retry(delivery=delivery, actor=request.user)
    messages.success(request, f"Delivery of {delivery.event.event_type} queued again.")
    return redirect("webhook-detail", endpoint_id=endpoint.pk)
