"""Operators' admin for plans, subscriptions and overrides, through the services."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING

from django import forms
from django.contrib import admin
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from portal.core.admin_helpers import ServiceAdmin, admin_user, changed_fields, run_action
from portal.plans import services
from portal.plans.limits import CEILING_FIELDS, LIMIT_FIELDS
from portal.plans.models import Override, Plan, PlanChange, Subscription

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


class OverrideActionForm(ActionForm):
    factor = forms.DecimalField(
        required=False, min_value=Decimal("0.1"), max_value=Decimal("1000"), initial=2, label="Override: × limits"
    )
    days = forms.IntegerField(required=False, min_value=1, max_value=365, initial=7, label="for days")


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


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin[Subscription]):
    list_display = ["application", "organization", "api", "plan", "requested_plan", "status", "created_at",
                    "approved_by"]
    list_filter = ["status", "api", "plan"]
    search_fields = ["application__name", "application__organization__name", "plan__name"]
    list_select_related = ["application__organization", "api", "plan", "requested_plan", "approved_by"]
    readonly_fields = SUBSCRIPTION_FIELDS
    fields = SUBSCRIPTION_FIELDS
    inlines = [OverrideInline, PlanChangeInline]
    actions = ["subscriptions_approve", "subscriptions_reject", "subscriptions_suspend", "subscriptions_resume",
               "subscriptions_cancel", "subscriptions_set_override"]
    action_form = OverrideActionForm

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

    @admin.action(description="Set an override: multiply limits by × for N days")
    def subscriptions_set_override(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        try:
            factor = Decimal(request.POST.get("factor") or "2")
            days = int(request.POST.get("days") or "7")
        except (ArithmeticError, ValueError):
            self.message_user(request, "Give a number for × and a whole number of days.", level="error")
            return
        if not (Decimal("0.1") <= factor <= Decimal("1000") and 1 <= days <= 365):
            self.message_user(request, "× must be 0.1–1000 and days 1–365.", level="error")
            return

        def apply(sub: Subscription) -> None:
            plan = sub.plan
            services.override_create(
                subscription=sub,
                actor=admin_user(request),
                expires_at=timezone.now() + dt.timedelta(days=days),
                reason=f"×{factor} for {days} days (admin)",
                # Ceilings scale; the burst allowance stays the plan's.
                **{name: _scaled(getattr(plan, name), factor) for name in CEILING_FIELDS},
            )

        run_action(request, queryset, apply, "set overrides on")


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
