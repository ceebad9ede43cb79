"""Subscribe an application to a plan, change plan, cancel."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from portal.core.errors import ApplicationError
from portal.core.web import AuthenticatedHttpRequest, form_add_error
from portal.keys.selectors import applications_of_member
from portal.plans import services
from portal.plans.forms import ChangePlanForm, SubscriptionForm
from portal.plans.models import Subscription, SubscriptionStatus
from portal.plans.selectors import plans_visible_to, subscriptions_for


def _subscription_or_404(request: AuthenticatedHttpRequest, subscription_id: int) -> Subscription:
    return get_object_or_404(subscriptions_for(request.user), pk=subscription_id)


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) < 19 else None


@login_required
@require_http_methods(["GET", "POST"])
def subscription_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    applications = applications_of_member(request.user).order_by("organization__name", "name")
    if not applications.exists():
        messages.info(request, "Subscriptions belong to an application. Create one first.")
        return redirect("application-create")
    plans = plans_visible_to(request.user).order_by("api__name", "monthly_price", "name")
    initial = {
        "application": _int_or_none(request.GET.get("application")),
        "plan": _int_or_none(request.GET.get("plan")),
    }
    form = SubscriptionForm(request.POST or None, applications=applications, plans=plans, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            subscription = services.subscription_create(actor=request.user, **form.cleaned_data)
        except ApplicationError as exc:
            form_add_error(form, exc)
        else:
            if subscription.status == SubscriptionStatus.PENDING:
                messages.warning(
                    request,
                    f"Subscription to {subscription.plan} requested. It is pending approval by an operator; "
                    "keys get access once it is approved.",
                )
            else:
                messages.success(request, f"Subscribed to {subscription.plan}. Your keys can call it now.")
            return redirect("application-detail", application_id=subscription.application_id)
    return render(request, "plans/subscription_form.html", {"form": form})


@login_required
@require_http_methods(["GET", "POST"])
def subscription_change(request: AuthenticatedHttpRequest, subscription_id: int) -> HttpResponse:
    subscription = _subscription_or_404(request, subscription_id)
    plans = plans_visible_to(request.user).filter(api=subscription.api).exclude(pk=subscription.plan_id)
    form = ChangePlanForm(request.POST or None, plans=plans)
    if request.method == "POST" and form.is_valid():
        try:
            subscription = services.subscription_change_plan(
                subscription=subscription, plan=form.cleaned_data["plan"], actor=request.user
            )
        except ApplicationError as exc:
            form_add_error(form, exc)
        else:
            if subscription.requested_plan_id:
                messages.warning(
                    request,
                    f"Change to {subscription.requested_plan.name} requested; it needs an operator's approval. "  # type: ignore[union-attr]
                    f"{subscription.plan.name} stays in force until then.",
                )
            else:
                messages.success(request, f"Plan changed to {subscription.plan.name}.")
            return redirect("application-detail", application_id=subscription.application_id)
    return render(request, "plans/subscription_change.html", {"form": form, "subscription": subscription})


@login_required
@require_http_methods(["GET", "POST"])
def subscription_cancel(request: AuthenticatedHttpRequest, subscription_id: int) -> HttpResponse:
    subscription = _subscription_or_404(request, subscription_id)
    if request.method == "POST":
        try:
            services.subscription_cancel(subscription=subscription, actor=request.user)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Subscription to {subscription.plan} cancelled.")
        return redirect("application-detail", application_id=subscription.application_id)
    return render(request, "plans/subscription_confirm_cancel.html", {"subscription": subscription})
