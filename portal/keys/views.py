"""Developer dashboard: applications, API keys and OAuth2 clients.

Secrets (API keys, OAuth client secrets) appear only in the response to the POST that
created them, marked no-store, and are never kept by the portal.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from portal.accounts.selectors import home_url_for, is_finance_staff, organizations_of_member
from portal.core.errors import ApplicationError
from portal.core.extensions import application_usage
from portal.core.throttle import throttle_allows
from portal.core.web import AuthenticatedHttpRequest, form_add_error, once_claim
from portal.keys import services
from portal.keys.forms import ApplicationForm, KeyIssueForm, KeyRotateForm, OnceForm
from portal.keys.models import ApiKey, Application
from portal.keys.selectors import applications_for, applications_of_member, keys_for
from portal.plans.selectors import (
    subscription_is_active,
    subscription_is_pending,
    subscriptions_current_for,
    subscriptions_for,
)

if TYPE_CHECKING:
    from portal.plans.models import Subscription

ALREADY_SHOWN = "That secret was already shown once and cannot be shown again. The list shows its prefix."
TOO_MANY_KEYS = "You have created many keys recently. Wait a while and try again."


def key_create_allowed(request: HttpRequest) -> bool:
    # The same budget as the API's key_create throttle (THROTTLE_KEY_CREATE), per user:
    # minting keys is what a stolen session or a script would abuse.
    return throttle_allows("key_create", f"user:{request.user.pk}")


def _application_or_404(request: HttpRequest, application_id: int) -> Application:
    # 404, not 403, for someone else's application: do not confirm that it exists.
    return get_object_or_404(applications_for(request.user), pk=application_id)


def _key_or_404(request: HttpRequest, application: Application, key_id: int) -> ApiKey:
    return get_object_or_404(keys_for(request.user), pk=key_id, application=application)


def usage_counters(
    keys: list[ApiKey],
    subscriptions: list[Subscription],
    application_id: int | None = None,
) -> dict[str, object]:
    """What the usage panel shows (templates/keys/_usage_panel.html). With an application id
    (its own page, not the dashboard's list) it adds what other apps register for the
    panel (portal/core/extensions.py): analytics adds quota use from its rollups."""
    used = [k.last_used_at for k in keys if k.last_used_at]
    return {
        "quotas": [],
        **(application_usage(application_id) if application_id else {}),
        "working_keys": sum(1 for k in keys if k.effective_status in {"active", "rotating"}),
        "last_used_at": max(used) if used else None,
        "active_subscriptions": sum(1 for s in subscriptions if subscription_is_active(s)),
        "pending_subscriptions": sum(1 for s in subscriptions if subscription_is_pending(s)),
    }


@login_required
@require_http_methods(["GET"])
def dashboard(request: AuthenticatedHttpRequest) -> HttpResponse:
    applications = list(
        applications_of_member(request.user).prefetch_related("keys").order_by("organization__name", "name")
    )
    if not applications and is_finance_staff(request.user):
        return redirect(home_url_for(request.user))  # finance's home is the billing report, not "create an app"
    subscriptions = list(
        subscriptions_current_for(request.user).filter(application__in=applications).order_by("api__name")
    )
    by_app: dict[int, list[Subscription]] = {}
    for subscription in subscriptions:
        by_app.setdefault(subscription.application_id, []).append(subscription)
    rows = []
    for application in applications:
        app_subscriptions = by_app.get(application.pk, [])
        keys = list(application.keys.all())
        rows.append(
            {
                "application": application,
                "subscriptions": app_subscriptions,
                "usage": usage_counters(keys, app_subscriptions),
            }
        )
    return render(
        request,
        "keys/dashboard.html",
        {"rows": rows, "pending": [s for s in subscriptions if subscription_is_pending(s)]},
    )


@login_required
@require_http_methods(["GET", "POST"])
def application_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    organizations = organizations_of_member(request.user)
    if not organizations.exists():
        messages.info(request, "Applications belong to an organization. Create one first.")
        return redirect("organization-create")
    form = ApplicationForm(
        request.POST or None, organizations=organizations, initial={"organization": organizations[0]}
    )
    if request.method == "POST" and form.is_valid():
        try:
            application = services.application_create(actor=request.user, **form.cleaned_data)
        except ApplicationError as exc:
            form_add_error(form, exc)
        else:
            messages.success(request, f"Application “{application.name}” created. Next: subscribe it to an API.")
            return redirect("application-detail", application_id=application.pk)
    return render(request, "keys/application_form.html", {"form": form})


@login_required
@require_http_methods(["GET"])
def application_detail(request: AuthenticatedHttpRequest, application_id: int) -> HttpResponse:
    application = _application_or_404(request, application_id)
    subscriptions = list(
        subscriptions_for(request.user).filter(application=application).order_by("status", "api__name")
    )
    keys = list(application.keys.all())
    return render(
        request,
        "keys/application_detail.html",
        {
            "application": application,
            "keys": keys,
            "subscriptions": subscriptions,
            "usage": usage_counters(keys, subscriptions, application_id=application.pk),
            "key_form": KeyIssueForm(),
            "once_form": OnceForm(),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def application_edit(request: AuthenticatedHttpRequest, application_id: int) -> HttpResponse:
    application = _application_or_404(request, application_id)
    form = ApplicationForm(
        request.POST or None, editing=True, initial={"name": application.name, "description": application.description}
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.application_update(application=application, actor=request.user, **form.cleaned_data)
        except ApplicationError as exc:
            form_add_error(form, exc)
        else:
            messages.success(request, "Application saved.")
            return redirect("application-detail", application_id=application.pk)
    return render(request, "keys/application_form.html", {"form": form, "application": application})


@login_required
@require_http_methods(["GET", "POST"])
def application_delete(request: AuthenticatedHttpRequest, application_id: int) -> HttpResponse:
    application = _application_or_404(request, application_id)
    if request.method == "POST":
        name = application.name
        services.application_delete(application=application, actor=request.user)
        messages.success(request, f"Application “{name}” deleted; its keys stopped working.")
        return redirect("dashboard")
    return render(request, "keys/application_confirm_delete.html", {"application": application})


# --- API keys ---------------------------------------------------------------------------


def _secret_page(
    request: HttpRequest, application: Application, secret: str, key: ApiKey, rotated: ApiKey | None = None
) -> HttpResponse:
    return render(
        request,
        "keys/key_secret.html",
        {"application": application, "secret": secret, "key": key, "rotated": rotated},
    )


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def key_issue(request: AuthenticatedHttpRequest, application_id: int) -> HttpResponse:
    application = _application_or_404(request, application_id)
    form = KeyIssueForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        # Throttle before claiming the one-time token: a refused attempt must stay retryable.
        if not key_create_allowed(request):
            form.add_error(None, TOO_MANY_KEYS)
            return render(request, "keys/key_form.html", {"form": form, "application": application}, status=429)
        if not once_claim(request, "key-issue", form.cleaned_data["once"]):
            messages.info(request, ALREADY_SHOWN)
            return redirect("application-detail", application_id=application.pk)
        try:
            issued = services.api_key_issue(
                application=application, label=form.cleaned_data["label"], expires_at=form.expires_at(),
                actor=request.user,
            )
        except ApplicationError as exc:
            form_add_error(form, exc)
        else:
            return _secret_page(request, application, issued.secret, issued.key)
    return render(request, "keys/key_form.html", {"form": form, "application": application})


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def key_rotate(request: AuthenticatedHttpRequest, application_id: int, key_id: int) -> HttpResponse:
    application = _application_or_404(request, application_id)
    key = _key_or_404(request, application, key_id)
    form = KeyRotateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if not key_create_allowed(request):
            messages.error(request, TOO_MANY_KEYS)
            return redirect("application-detail", application_id=application.pk)
        if not once_claim(request, "key-rotate", form.cleaned_data["once"]):
            messages.info(request, ALREADY_SHOWN)
            return redirect("application-detail", application_id=application.pk)
        try:
            issued = services.api_key_rotate(
                key=key, grace=dt.timedelta(seconds=form.cleaned_data["grace_seconds"]), actor=request.user
            )
        except ApplicationError as exc:
            messages.error(request, exc.message)
            return redirect("application-detail", application_id=application.pk)
        key.refresh_from_db()
        return _secret_page(request, application, issued.secret, issued.key, rotated=key)
    return render(request, "keys/key_rotate.html", {"form": form, "application": application, "key": key})


@login_required
@require_http_methods(["GET", "POST"])
def key_revoke(request: AuthenticatedHttpRequest, application_id: int, key_id: int) -> HttpResponse:
    application = _application_or_404(request, application_id)
    key = _key_or_404(request, application, key_id)
    if request.method == "POST":
        services.api_key_revoke(key=key, actor=request.user)
        messages.success(request, f"Key {key.prefix}… revoked. Requests with it are now refused.")
        return redirect("application-detail", application_id=application.pk)
    return render(request, "keys/key_confirm_revoke.html", {"application": application, "key": key})


# --- OAuth2 client credentials ----------------------------------------------------------


@never_cache
@login_required
@require_POST
def oauth_client_create(request: AuthenticatedHttpRequest, application_id: int) -> HttpResponse:
    application = _application_or_404(request, application_id)
    form = OnceForm(request.POST)
    if form.is_valid() and not once_claim(request, "oauth-client", form.cleaned_data["once"]):
        messages.info(request, ALREADY_SHOWN)
        return redirect("application-detail", application_id=application.pk)
    try:
        issued = services.oauth_client_create(application=application, actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("application-detail", application_id=application.pk)
    return render(request, "keys/oauth_secret.html", {"application": application, "issued": issued})


@login_required
@require_http_methods(["GET", "POST"])
def oauth_client_delete(request: AuthenticatedHttpRequest, application_id: int) -> HttpResponse:
    application = _application_or_404(request, application_id)
    if request.method == "POST":
        services.oauth_client_delete(application=application, actor=request.user)
        messages.success(request, "OAuth2 client deleted; its tokens stopped working.")
        return redirect("application-detail", application_id=application.pk)
    return render(request, "keys/oauth_confirm_delete.html", {"application": application})
