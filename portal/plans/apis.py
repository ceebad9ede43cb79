"""REST API for plans, subscriptions and overrides.

Developers read plans and manage their applications' subscriptions (subscribe,
change plan, cancel). Operators also create and change plans, approve, reject,
suspend and resume subscriptions, and set temporary overrides.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import AnonymousUser
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from portal.catalog.selectors import Visibility, apis_all, apis_visible_to
from portal.core.api import BaseViewSet, InputSerializer, ScopedPrimaryKeyRelatedField, request_user, validated
from portal.keys.selectors import applications_all, applications_for
from portal.plans import services
from portal.plans.filters import PlanFilter, SubscriptionFilter
from portal.plans.limits import LIMIT_FIELDS, LIMITS, MAX_BIGINT
from portal.plans.models import Override, Plan, Subscription
from portal.plans.selectors import plans_visible_to, subscriptions_for

if TYPE_CHECKING:
    from portal.accounts.models import User


def limit_serializer_fields(*, nullable: bool) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
    """Input fields for the limits. On a plan, null means unlimited (the burst allowance is
    never null); on an override every limit may be null, which keeps the plan's value."""
    return {
        limit.name: serializers.IntegerField(
            required=False,
            allow_null=nullable or limit.ceiling,
            min_value=limit.min_value,
            max_value=limit.max_value,
        )
        for limit in LIMITS
    }


PlanLimitsInputSerializer = type(
    "PlanLimitsInputSerializer", (InputSerializer,), limit_serializer_fields(nullable=False)
)
OverrideLimitsInputSerializer = type(
    "OverrideLimitsInputSerializer", (InputSerializer,), limit_serializer_fields(nullable=True)
)


def plans_for(user: User | AnonymousUser) -> QuerySet[Plan]:
    """Plans a caller may see and subscribe to: visible plans of visible APIs."""
    return plans_visible_to(user).filter(api__in=apis_visible_to(user))


class PlanOutputSerializer(serializers.ModelSerializer[Plan]):
    class Meta:
        model = Plan
        fields = ["id", "api", *services.PLAN_FIELDS, "created_at", "updated_at"]
        read_only_fields = fields


class PlanInputSerializer(PlanLimitsInputSerializer):  # type: ignore[misc,valid-type]
    """Limits: null means unlimited in that dimension."""

    slug = serializers.SlugField(max_length=60)
    name = serializers.CharField(max_length=120)
    description = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    monthly_price = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal("0"), required=False)
    currency = serializers.RegexField(r"^[A-Z]{3}$", max_length=3, required=False)
    included_requests = serializers.IntegerField(required=False, min_value=0, max_value=MAX_BIGINT)
    overage_price_per_1000 = serializers.DecimalField(
        max_digits=12, decimal_places=4, min_value=Decimal("0"), required=False, allow_null=True
    )
    requires_approval = serializers.BooleanField(required=False)
    visibility = serializers.ChoiceField(choices=Visibility.choices, required=False)
    is_active = serializers.BooleanField(required=False)


class PlanViewSet(BaseViewSet[Plan]):
    queryset = Plan.objects.none()
    filterset_class = PlanFilter
    operator_actions = frozenset({"create", "partial_update"})

    class CreateInputSerializer(PlanInputSerializer):
        api = ScopedPrimaryKeyRelatedField(model=apis_all().model, scope=apis_visible_to)

    class UpdateInputSerializer(PlanInputSerializer):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, partial=True, **kwargs)

    def visible_queryset(self) -> QuerySet[Plan]:
        return plans_for(self.request.user).order_by("api_id", "monthly_price", "name", "id")

    @extend_schema(responses=PlanOutputSerializer(many=True))
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(PlanOutputSerializer(page, many=True).data)

    @extend_schema(responses=PlanOutputSerializer)
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(PlanOutputSerializer(self.get_object()).data)

    @extend_schema(request=CreateInputSerializer, responses={201: PlanOutputSerializer})
    def create(self, request: Request) -> Response:
        data = validated(self.CreateInputSerializer, request)
        plan = services.plan_create(actor=request_user(request), **data)
        return Response(PlanOutputSerializer(plan).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=UpdateInputSerializer, responses=PlanOutputSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        plan = self.get_object()
        data = validated(self.UpdateInputSerializer, request)
        plan = services.plan_update(plan=plan, actor=request_user(request), **data)
        return Response(PlanOutputSerializer(plan).data)


class ApiPlanViewSet(BaseViewSet[Plan]):
    """The plans of one API: apis/{pk}/plans/, pk being the API's. Served here, beside the other
    plan routes, so the catalog need not know plans; the route keeps the path and schema it had
    as an action of the catalog's ApiProductViewSet."""

    queryset = Plan.objects.none()

    def visible_queryset(self) -> QuerySet[Plan]:
        api = self.parent_object(apis_visible_to(self.request.user), "pk")
        return plans_for(self.request.user).filter(api=api).order_by("monthly_price", "name", "id")

    @extend_schema(responses=PlanOutputSerializer(many=True), description="The plans of this API you may see.")
    def list(self, request: Request, pk: str) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(PlanOutputSerializer(page, many=True).data)


class SubscriptionOutputSerializer(serializers.ModelSerializer[Subscription]):
    class Meta:
        model = Subscription
        fields = [
            "id",
            "application",
            "api",
            "plan",
            "status",
            "requested_plan",
            "approved_at",
            "created_at",
            "updated_at",
            "cancelled_at",
        ]
        read_only_fields = fields


class SubscriptionViewSet(BaseViewSet[Subscription]):
    queryset = Subscription.objects.none()
    filterset_class = SubscriptionFilter
    operator_actions = frozenset({"approve", "reject", "suspend", "resume"})

    class CreateInputSerializer(InputSerializer):
        application = ScopedPrimaryKeyRelatedField(model=applications_all().model, scope=applications_for)
        plan = ScopedPrimaryKeyRelatedField(model=Plan, scope=plans_for)

    class ChangePlanInputSerializer(InputSerializer):
        plan = ScopedPrimaryKeyRelatedField(model=Plan, scope=plans_for)

    def visible_queryset(self) -> QuerySet[Subscription]:
        return subscriptions_for(self.request.user).order_by("-created_at", "-id")

    @extend_schema(responses=SubscriptionOutputSerializer(many=True))
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(SubscriptionOutputSerializer(page, many=True).data)

    @extend_schema(responses=SubscriptionOutputSerializer)
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(SubscriptionOutputSerializer(self.get_object()).data)

    @extend_schema(
        request=CreateInputSerializer,
        responses={201: SubscriptionOutputSerializer},
        description="Active at once, or pending when the plan needs an operator's approval.",
    )
    def create(self, request: Request) -> Response:
        data = validated(self.CreateInputSerializer, request)
        subscription = services.subscription_create(
            application=data["application"], plan=data["plan"], actor=request_user(request)
        )
        return Response(SubscriptionOutputSerializer(subscription).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=ChangePlanInputSerializer,
        responses=SubscriptionOutputSerializer,
        description="Immediate, unless the new plan needs approval: then it waits in requested_plan.",
    )
    @action(detail=True, methods=["post"], url_path="change-plan", filterset_class=None)
    def change_plan(self, request: Request, pk: str) -> Response:
        subscription = self.get_object()
        data = validated(self.ChangePlanInputSerializer, request)
        subscription = services.subscription_change_plan(
            subscription=subscription, plan=data["plan"], actor=request_user(request)
        )
        return Response(SubscriptionOutputSerializer(subscription).data)

    def _transition(self, service: services.SubscriptionTransition) -> Response:
        subscription = service(subscription=self.get_object(), actor=request_user(self.request))
        return Response(SubscriptionOutputSerializer(subscription).data)

    @extend_schema(request=None, responses=SubscriptionOutputSerializer)
    @action(detail=True, methods=["post"], filterset_class=None)
    def cancel(self, request: Request, pk: str) -> Response:
        return self._transition(services.subscription_cancel)

    @extend_schema(
        request=None,
        responses=SubscriptionOutputSerializer,
        description="Operators: approve a pending subscription or a pending plan change.",
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def approve(self, request: Request, pk: str) -> Response:
        return self._transition(services.subscription_approve)

    @extend_schema(
        request=None,
        responses=SubscriptionOutputSerializer,
        description="Operators: turn down a pending subscription or a pending plan change.",
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def reject(self, request: Request, pk: str) -> Response:
        return self._transition(services.subscription_reject)

    @extend_schema(request=None, responses=SubscriptionOutputSerializer, description="Operators only.")
    @action(detail=True, methods=["post"], filterset_class=None)
    def suspend(self, request: Request, pk: str) -> Response:
        return self._transition(services.subscription_suspend)

    @extend_schema(request=None, responses=SubscriptionOutputSerializer, description="Operators only.")
    @action(detail=True, methods=["post"], filterset_class=None)
    def resume(self, request: Request, pk: str) -> Response:
        return self._transition(services.subscription_resume)


class OverrideOutputSerializer(serializers.ModelSerializer[Override]):
    class Meta:
        model = Override
        fields = [
            "id",
            "subscription",
            *LIMIT_FIELDS,
            "expires_at",
            "reason",
            "created_at",
        ]
        read_only_fields = fields


class OverrideViewSet(BaseViewSet[Override]):
    """Temporary limits of one subscription: subscriptions/{subscription_id}/overrides/."""

    queryset = Override.objects.none()
    operator_actions = frozenset({"create", "destroy"})

    class CreateInputSerializer(OverrideLimitsInputSerializer):  # type: ignore[misc,valid-type]
        """Empty limits keep the plan's value."""

        expires_at = serializers.DateTimeField()
        reason = serializers.CharField(required=False, allow_blank=True, max_length=200)

    def get_subscription(self) -> Subscription:
        return self.parent_object(subscriptions_for(self.request.user), "subscription_id")

    def visible_queryset(self) -> QuerySet[Override]:
        return Override.objects.filter(subscription=self.get_subscription()).order_by("-created_at", "-id")

    @extend_schema(responses=OverrideOutputSerializer(many=True))
    def list(self, request: Request, subscription_id: str) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(OverrideOutputSerializer(page, many=True).data)

    @extend_schema(request=CreateInputSerializer, responses={201: OverrideOutputSerializer})
    def create(self, request: Request, subscription_id: str) -> Response:
        subscription = self.get_subscription()
        data = validated(self.CreateInputSerializer, request)
        override = services.override_create(subscription=subscription, actor=request_user(request), **data)
        return Response(OverrideOutputSerializer(override).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, subscription_id: str, pk: str) -> Response:
        services.override_delete(override=self.get_object(), actor=request_user(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
