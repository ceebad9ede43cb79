from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

from portal.catalog.selectors import Visibility
from portal.plans.limits import OverrideLimits, PlanLimits

currency_validator = RegexValidator(r"^[A-Z]{3}$", "Use a three-letter ISO 4217 currency code, e.g. EUR.")


class Plan(PlanLimits):  # limit fields: see portal/plans/limits.py
    """Limits are per subscription. None means unlimited in that dimension."""

    api = models.ForeignKey("catalog.Api", on_delete=models.CASCADE, related_name="plans")
    slug = models.SlugField(max_length=60)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    monthly_price = models.DecimalField(
        max_digits=12, decimal_places=2, default=Decimal("0.00"), validators=[MinValueValidator(Decimal("0"))]
    )
    currency = models.CharField(max_length=3, default="EUR", validators=[currency_validator])
    included_requests = models.PositiveBigIntegerField(default=0)
    overage_price_per_1000 = models.DecimalField(
        max_digits=12,
        decimal_places=4,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Price per 1,000 requests beyond the included ones. Empty: requests beyond are not billed.",
    )
    requires_approval = models.BooleanField(default=False)
    visibility = models.CharField(max_length=10, choices=Visibility.choices, default=Visibility.PUBLIC)
    is_active = models.BooleanField(default=True, help_text="Inactive plans take no new subscriptions.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["api", "monthly_price", "name"]
        constraints = [models.UniqueConstraint(fields=["api", "slug"], name="plan_unique_slug")]

    def __str__(self) -> str:
        return f"{self.api.name} · {self.name}"


class SubscriptionStatus(models.TextChoices):
    PENDING = "pending", "Pending approval"
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"
    CANCELLED = "cancelled", "Cancelled"


LIVE_SUBSCRIPTION_STATES = (SubscriptionStatus.PENDING, SubscriptionStatus.ACTIVE, SubscriptionStatus.SUSPENDED)


class Subscription(models.Model):
    application = models.ForeignKey("keys.Application", on_delete=models.CASCADE, related_name="subscriptions")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="subscriptions")
    # Denormalised from plan.api so that the database can enforce one live
    # subscription per application and API.
    api = models.ForeignKey("catalog.Api", on_delete=models.PROTECT, related_name="subscriptions")
    status = models.CharField(max_length=10, choices=SubscriptionStatus.choices, default=SubscriptionStatus.PENDING)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    # A change to a plan that needs approval waits here until an operator approves it;
    # until then the subscription keeps its current plan.
    requested_plan = models.ForeignKey(
        Plan, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["application", "api"],
                condition=Q(status__in=["pending", "active", "suspended"]),
                name="subscription_one_live_per_app_api",
            )
        ]

    def __str__(self) -> str:
        return f"{self.application} → {self.plan} ({self.status})"


class Override(OverrideLimits):  # limit fields: see portal/plans/limits.py
    """Temporary limits for one subscription, e.g. double the quota until a date.
    Empty fields keep the plan's value."""

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="overrides")
    expires_at = models.DateTimeField()
    reason = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Override for {self.subscription_id} until {self.expires_at:%Y-%m-%d %H:%M}"


class PlanChange(models.Model):
    """History of a subscription's plan, for proration: the plan in force from changed_at on."""

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="plan_changes")
    from_plan = models.ForeignKey(Plan, on_delete=models.PROTECT, null=True, related_name="+")
    to_plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+")
    changed_at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")

    class Meta:
        ordering = ["changed_at", "id"]

    def __str__(self) -> str:
        return f"{self.subscription_id}: {self.from_plan_id} → {self.to_plan_id} at {self.changed_at:%Y-%m-%d %H:%M}"


class Approval(Subscription):
    """The operators' approvals inbox in the admin: subscriptions waiting for a decision,
    new ones (pending) and plan changes (requested_plan set). Same rows, same services."""

    class Meta:
        proxy = True
        verbose_name = "approval"
        verbose_name_plural = "approvals"
