"""REST API for the audit log: operators only, read-only, filterable."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from portal.audit.filters import AuditEventFilter
from portal.audit.models import AuditEvent
from portal.core.api import OPERATOR_PERMISSIONS, BaseViewSet


class AuditEventOutputSerializer(serializers.ModelSerializer[AuditEvent]):
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "created_at",
            "actor",
            "actor_email",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "organization",
            "before",
            "after",
        ]
        read_only_fields = fields


class AuditEventViewSet(BaseViewSet[AuditEvent]):
    permission_classes = OPERATOR_PERMISSIONS
    filterset_class = AuditEventFilter
    queryset = AuditEvent.objects.none()

    def visible_queryset(self) -> QuerySet[AuditEvent]:
        return AuditEvent.objects.order_by("-created_at", "-id")

    @extend_schema(responses=AuditEventOutputSerializer(many=True))
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(AuditEventOutputSerializer(page, many=True).data)

    @extend_schema(responses=AuditEventOutputSerializer)
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(AuditEventOutputSerializer(self.get_object()).data)
