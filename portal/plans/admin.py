"""Operators' admin for plans, subscriptions and overrides, through the services."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone

from portal.core.admin_helpers import ServiceAdmin, admin_user, changed_fields, run_action
from portal.plans import services
from portal.plans.limits import CEILING_FIELDS, LIMIT_FIELDS
from portal.plans.models import Approval, Override, Plan, PlanChange, Subscription, SubscriptionStatus
from portal.plans.selectors import approvals_pending

# The admin index shows the approvals inbox's count (templates/admin/tollway_index.html).
admin.site.index_template = "admin/tollway_index.html"

if TYPE_CHECKING:
    from portal.accounts.models import Organization

PLAN_FORM_FIELDS = [f for f in services.PLAN_FIELDS]


@admin.register(Plan)
class PlanAdmin(ServiceAdmin[Plan]):
    list_display = [
        "name", "api", *LIMIT_FIELDS, "monthly_price", "currency", "requires_approval", "visibility", "is_active",
    ]
    list_filter = ["api", "requires_approval", "visibility", "is_active", "currency"]
    search_fields = ["name", "slug", "api__name"]
    fields = ("api", *PLAN_FORM_FIELDS)

    def has_delete_permission(self, request: HttpRequest, obj: Plan | None = None) -> bool:
        return False  # deactivate instead: invoices and subscriptions refer to plans

    def get_readonly_fields(self, request: HttpRequest, obj: Plan | None = None) -> list[str]:
        return ["api"] if obj else []

    def save_model(self, request: HttpRequest, obj: Plan, form: forms.ModelForm[Plan], change: bool) -> None:
        if change:
            services.plan_update(plan=obj, actor=admin_user(request), **changed_fields(form, PLAN_FORM_FIELDS))
        else:
            data = {name: form.cleaned_data[name] for name in ["api", *PLAN_FORM_FIELDS]}
            obj.pk = services.plan_create(actor=admin_user(request), **data).pk


class OverrideSetForm(forms.Form):
    """The "set override" action's own page: every field required, nothing assumed."""

    factor = forms.DecimalField(
        min_value=Decimal("0.1"), max_value=Decimal("1000"), max_digits=7, decimal_places=2,
        label="Multiply the plan's limits by",
        help_text="From 0.1 to 1000, e.g. 2 doubles the rate limits and quotas. The burst allowance stays the plan's.",
    )
    days = forms.IntegerField(min_value=1, max_value=365, label="For how many days",
                              help_text="From 1 to 365; the override then expires on its own.")
    reason = forms.CharField(max_length=150, required=False, label="Reason (for the audit log)")


def _scaled(value: int | None, factor: Decimal) -> int | None:
    return None if value is None else max(1, int(Decimal(value) * factor))


# Tuples: the admin types these attributes as read-only sequences.
OVERRIDE_INLINE_FIELDS = (*LIMIT_FIELDS, "expires_at", "reason", "created_by", "created_at")
PLAN_CHANGE_INLINE_FIELDS = ("from_plan", "to_plan", "changed_at", "actor")
SUBSCRIPTION_FIELDS = ("application", "api", "plan", "requested_plan", "status", "created_by", "approved_by",
                       "approved_at", "created_at", "cancelled_at")
OVERRIDE_FIELDS = ("subscription", *services.OVERRIDE_FIELDS, "reason")


class OverrideInline(admin.TabularInline[Override, Subscription]):
    model = Override
    extra = 0
    can_delete = False
    fields = OVERRIDE_INLINE_FIELDS
    readonly_fields = OVERRIDE_INLINE_FIELDS

    def has_add_permission(self, request: HttpRequest, obj: Subscription | None = None) -> bool:
        return False


class PlanChangeInline(admin.TabularInline[PlanChange, Subscription]):
    model = PlanChange
    extra = 0
    can_delete = False
    fields = PLAN_CHANGE_INLINE_FIELDS
    readonly_fields = PLAN_CHANGE_INLINE_FIELDS

    def has_add_permission(self, request: HttpRequest, obj: Subscription | None = None) -> bool:
        return False


class AwaitingApprovalFilter(admin.SimpleListFilter):
    """Pending subscriptions and plan changes alike (the status filter alone misses the latter)."""

    title = "approval"
    parameter_name = "awaiting"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Awaiting approval (subscriptions and plan changes)")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(pk__in=approvals_pending().values("pk"))
        return queryset


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin[Subscription]):
    list_display = ["application", "organization", "api", "plan", "requested_plan", "status", "created_at",
                    "approved_by"]
    search_fields = ["application__name", "application__organization__name", "plan__name"]
    list_select_related = ["application__organization", "api", "plan", "requested_plan", "approved_by"]
    readonly_fields = SUBSCRIPTION_FIELDS
    fields = SUBSCRIPTION_FIELDS
    inlines = [OverrideInline, PlanChangeInline]
    actions = ["subscriptions_approve", "subscriptions_reject", "subscriptions_suspend", "subscriptions_resume",
               "subscriptions_cancel", "subscriptions_set_override"]
    list_filter = [AwaitingApprovalFilter, "status", "api", "plan"]

    @admin.display(ordering="application__organization__name")
    def organization(self, obj: Subscription) -> Organization:
        return obj.application.organization

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # developers subscribe in the portal; operators approve here

    def has_delete_permission(self, request: HttpRequest, obj: Subscription | None = None) -> bool:
        return False  # cancel instead: billing history refers to subscriptions

    def _act(
        self,
        request: HttpRequest,
        queryset: QuerySet[Subscription],
        service: services.SubscriptionTransition,
        verb: str,
    ) -> None:
        actor = admin_user(request)
        run_action(request, queryset, lambda s: service(subscription=s, actor=actor), verb)

    @admin.action(description="Approve selected subscriptions (or their plan change)")
    def subscriptions_approve(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        self._act(request, queryset, services.subscription_approve, "approved")

    @admin.action(description="Reject selected pending subscriptions")
    def subscriptions_reject(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        self._act(request, queryset, services.subscription_reject, "rejected")

    @admin.action(description="Suspend selected subscriptions")
    def subscriptions_suspend(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        self._act(request, queryset, services.subscription_suspend, "suspended")

    @admin.action(description="Resume selected suspended subscriptions")
    def subscriptions_resume(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        self._act(request, queryset, services.subscription_resume, "resumed")

    @admin.action(description="Cancel selected subscriptions")
    def subscriptions_cancel(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        self._act(request, queryset, services.subscription_cancel, "cancelled")

    @admin.action(description="Set an override on selected subscriptions…")
    def subscriptions_set_override(
        self, request: HttpRequest, queryset: QuerySet[Subscription]
    ) -> TemplateResponse | None:
        """Opens its own form page; that page posts back here with "apply" and the values."""
        form = OverrideSetForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            context = {
                **self.admin_site.each_context(request),
                "title": "Set an override",
                "opts": self.model._meta,
                "form": form,
                "subscriptions": list(queryset.select_related("application", "plan")),
                "action": "subscriptions_set_override",
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
                "select_across": request.POST.get("select_across", "0"),
            }
            return TemplateResponse(request, "admin/plans/subscription/set_override.html", context,
                                    status=400 if form.is_bound else 200)
        factor: Decimal = form.cleaned_data["factor"]
        days: int = form.cleaned_data["days"]
        reason = form.cleaned_data["reason"].strip() or "admin"

        def apply(sub: Subscription) -> None:
            plan = sub.plan
            services.override_create(
                subscription=sub,
                actor=admin_user(request),
                expires_at=timezone.now() + dt.timedelta(days=days),
                reason=f"×{factor} for {days} days ({reason})"[:200],
                # Ceilings scale; the burst allowance stays the plan's.
                **{name: _scaled(getattr(plan, name), factor) for name in CEILING_FIELDS},
            )

        run_action(request, queryset, apply, "set overrides on")
        return None


@admin.register(Approval)
class ApprovalAdmin(admin.ModelAdmin[Approval]):
    """One inbox for everything waiting for an operator: new subscriptions to plans that
    need approval, and plan changes to such plans. Approve or reject through the services."""

    list_display = ["application", "organization", "api", "request", "requested_at"]
    list_select_related = ["application__organization", "api", "plan", "requested_plan"]
    search_fields = ["application__name", "application__organization__name"]
    actions = ["approvals_approve", "approvals_reject"]
    list_display_links = None  # decided here, in bulk; the subscription's own page has the details

    def get_queryset(self, request: HttpRequest) -> QuerySet[Approval]:
        ids = approvals_pending().values("pk")
        return super().get_queryset(request).filter(pk__in=ids)

    @admin.display(ordering="application__organization__name")
    def organization(self, obj: Approval) -> Organization:
        return obj.application.organization

    @admin.display(description="Request")
    def request(self, obj: Approval) -> str:
        if obj.status == SubscriptionStatus.PENDING:
            return f"New subscription to {obj.plan.name}"
        return f"Plan change {obj.plan.name} → {obj.requested_plan.name if obj.requested_plan else '?'}"

    @admin.display(description="Requested", ordering="updated_at")
    def requested_at(self, obj: Approval) -> dt.datetime:
        return obj.updated_at

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Approval | None = None) -> bool:
        return False  # nothing to edit: approve or reject

    def has_delete_permission(self, request: HttpRequest, obj: Approval | None = None) -> bool:
        return False

    @admin.action(description="Approve selected requests")
    def approvals_approve(self, request: HttpRequest, queryset: QuerySet[Approval]) -> None:
        actor = admin_user(request)
        run_action(request, queryset, lambda s: services.subscription_approve(subscription=s, actor=actor), "approved")

    @admin.action(description="Reject selected requests")
    def approvals_reject(self, request: HttpRequest, queryset: QuerySet[Approval]) -> None:
        actor = admin_user(request)
        run_action(request, queryset, lambda s: services.subscription_reject(subscription=s, actor=actor), "rejected")


class OverrideForm(forms.ModelForm[Override]):
    class Meta:
        model = Override
        fields = OVERRIDE_FIELDS

    def clean_expires_at(self) -> dt.datetime:
        value: dt.datetime = self.cleaned_data["expires_at"]
        if value <= timezone.now():
            raise ValidationError("An override must expire in the future.")
        return value


@admin.register(Override)
class OverrideAdmin(ServiceAdmin[Override]):
    form = OverrideForm
    list_display = ["subscription", *LIMIT_FIELDS, "expires_at", "reason", "created_by"]
    list_filter = ["expires_at"]
    search_fields = ["subscription__application__name", "reason"]
    fields = OVERRIDE_FIELDS
    autocomplete_fields = ["subscription"]

    def get_readonly_fields(self, request: HttpRequest, obj: Override | None = None) -> list[str]:
        return list(OVERRIDE_FIELDS) if obj else []  # an override is replaced, not edited: the audit stays simple

    def save_model(self, request: HttpRequest, obj: Override, form: forms.ModelForm[Override], change: bool) -> None:
        data = {name: form.cleaned_data[name] for name in OVERRIDE_FIELDS if name != "subscription"}
        obj.pk = services.override_create(
            subscription=form.cleaned_data["subscription"], actor=admin_user(request), **data
        ).pk

    def delete_model(self, request: HttpRequest, obj: Override) -> None:
        services.override_delete(override=obj, actor=admin_user(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Override]) -> None:
        for override in queryset:
            services.override_delete(override=override, actor=admin_user(request))
