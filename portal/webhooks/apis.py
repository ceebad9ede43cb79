"""REST API: /api/v1/webhook-endpoints/.

An endpoint's signing secret appears in exactly two kinds of response: the one that
created the endpoint and the one that rotated its secret. Every other response
carries only ``secret_prefix``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.request import Request
from rest_framework.response import Response

from portal.accounts.selectors import organizations_all, organizations_for
from portal.core.api import (
    BaseViewSet,
    InputSerializer,
    ScopedPrimaryKeyRelatedField,
    StrictPagination,
    request_user,
    validated,
)
from portal.webhooks import services
from portal.webhooks.models import WebhookDelivery, WebhookEndpoint
from portal.webhooks.selectors import deliveries_of, endpoints_for


class EndpointOutputSerializer(serializers.ModelSerializer[WebhookEndpoint]):
    events = serializers.ListField(source="event_types", child=serializers.CharField())
    enabled = serializers.BooleanField(source="is_enabled")

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "organization",
            "url",
            "description",
            "events",
            "enabled",
            "secret_prefix",
            "previous_secret_until",
            "failing_since",
            "disabled_reason",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class EndpointCreatedSerializer(EndpointOutputSerializer):
    secret = serializers.CharField(help_text="The whsec_ signing secret. Shown only in this response; store it now.")

    class Meta(EndpointOutputSerializer.Meta):
        fields = [*EndpointOutputSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class DeliveryOutputSerializer(serializers.ModelSerializer[WebhookDelivery]):
    webhook_id = serializers.CharField(source="event.message_id", help_text="The webhook-id header.")
    event_type = serializers.CharField(source="event.event_type")

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "webhook_id",
            "event_type",
            "status",
            "attempts",
            "max_attempts",
            "next_attempt_at",
            "last_attempt_at",
            "last_status_code",
            "last_latency_ms",
            "last_response_excerpt",
            "last_error",
            "created_at",
        ]
        read_only_fields = fields


def _created(created: services.CreatedEndpoint) -> dict[str, Any]:
    return {**EndpointOutputSerializer(created.endpoint).data, "secret": created.secret}


class WebhookEndpointViewSet(BaseViewSet[WebhookEndpoint]):
    queryset = WebhookEndpoint.objects.none()

    class CreateInputSerializer(InputSerializer):
        organization = ScopedPrimaryKeyRelatedField(
            model=organizations_all().model,
            scope=organizations_for,
            allow_null=True,
            help_text="The organization that owns it; null (operators only) for a platform-wide endpoint.",
        )
        url = serializers.CharField(max_length=2000)
        events = serializers.ListField(child=serializers.CharField(max_length=60), max_length=50)
        description = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")

    class UpdateInputSerializer(InputSerializer):
        url = serializers.CharField(max_length=2000, required=False)
        events = serializers.ListField(child=serializers.CharField(max_length=60), max_length=50, required=False)
        description = serializers.CharField(max_length=200, required=False, allow_blank=True)
        enabled = serializers.BooleanField(required=False)

    class RotateInputSerializer(InputSerializer):
        overlap_seconds = serializers.IntegerField(
            min_value=0,
            max_value=int(services.MAX_ROTATION_OVERLAP.total_seconds()),
            default=int(services.DEFAULT_ROTATION_OVERLAP.total_seconds()),
            help_text="How long the old secret keeps signing too (0 = not at all; at most 7 days).",
        )

    def visible_queryset(self) -> QuerySet[WebhookEndpoint]:
        return endpoints_for(self.request.user).order_by("-created_at", "-id")

    @extend_schema(responses=EndpointOutputSerializer(many=True))
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(EndpointOutputSerializer(page, many=True).data)

    @extend_schema(responses=EndpointOutputSerializer)
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(EndpointOutputSerializer(self.get_object()).data)

    @extend_schema(request=CreateInputSerializer, responses={201: EndpointCreatedSerializer})
    def create(self, request: Request) -> Response:
        data = validated(self.CreateInputSerializer, request)
        created = services.webhook_endpoint_create(
            organization=data["organization"],
            url=data["url"],
            event_types=data["events"],
            description=data["description"],
            actor=request_user(request),
        )
        return Response(_created(created), status=status.HTTP_201_CREATED)

    @extend_schema(request=UpdateInputSerializer, responses=EndpointOutputSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        endpoint = self.get_object()
        data = validated(self.UpdateInputSerializer, request)
        endpoint = services.webhook_endpoint_update(
            endpoint=endpoint,
            actor=request_user(request),
            url=data.get("url"),
            event_types=data.get("events"),
            description=data.get("description"),
            is_enabled=data.get("enabled"),
        )
        return Response(EndpointOutputSerializer(endpoint).data)

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, pk: str) -> Response:
        services.webhook_endpoint_delete(endpoint=self.get_object(), actor=request_user(request))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=RotateInputSerializer, responses={201: EndpointCreatedSerializer})
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, pk: str) -> Response:
        endpoint = self.get_object()
        data = validated(self.RotateInputSerializer, request)
        created = services.webhook_endpoint_secret_rotate(
            endpoint=endpoint, overlap=dt.timedelta(seconds=data["overlap_seconds"]), actor=request_user(request)
        )
        return Response(_created(created), status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={202: DeliveryOutputSerializer})
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: str) -> Response:
        delivery = services.webhook_test_send(endpoint=self.get_object(), actor=request_user(request))
        return Response(DeliveryOutputSerializer(delivery).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=DeliveryOutputSerializer(many=True))
    @action(detail=True, methods=["get"])
    def deliveries(self, request: Request, pk: str) -> Response:
        # The log is another model than the view set's, so it gets a paginator of its own.
        paginator = StrictPagination()
        page = paginator.paginate_queryset(deliveries_of(self.get_object()), request, view=self)
        return paginator.get_paginated_response(DeliveryOutputSerializer(page, many=True).data)

    @extend_schema(request=None, responses={202: DeliveryOutputSerializer})
    @action(detail=True, methods=["post"], url_path=r"deliveries/(?P<delivery_id>[^/]+)/retry")
    def retry(self, request: Request, pk: str, delivery_id: str) -> Response:
        endpoint = self.get_object()
        if not delivery_id.isdigit():
            delivery_id = "0"
        delivery = get_object_or_404(deliveries_of(endpoint), pk=int(delivery_id))
        delivery = services.webhook_delivery_retry(delivery=delivery, actor=request_user(request))
        return Response(DeliveryOutputSerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
