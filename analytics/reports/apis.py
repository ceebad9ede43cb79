"""REST usage API under /api/v1/usage/: thin views over selectors."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from analytics.models import Granularity, Rollup
from analytics.reports import selectors
from portal.core.filters import UtcIsoDateTimeFilter


class UsageFilter(django_filters.FilterSet):
    granularity = django_filters.ChoiceFilter(choices=Granularity.choices, empty_label=None)
    start = UtcIsoDateTimeFilter(field_name="bucket", lookup_expr="gte")
    end = UtcIsoDateTimeFilter(field_name="bucket", lookup_expr="lt")

    class Meta:
        model = Rollup
        fields = [
            "api_id", "version", "application_id", "key_prefix", "plan_id", "subscription_id", "endpoint", "status",
            "status_class",
        ]

    def filter_queryset(self, queryset: QuerySet[Rollup]) -> QuerySet[Rollup]:
        # Without a granularity the rows of all three would count each request three times.
        if not self.form.cleaned_data.get("granularity"):
            queryset = queryset.filter(granularity=Granularity.HOUR)
        return super().filter_queryset(queryset)


def _scoped(view: generics.GenericAPIView[Rollup]) -> QuerySet[Rollup]:
    if getattr(view, "swagger_fake_view", False):  # schema generation: no user
        return Rollup.objects.none()
    return selectors.rollups_for(view.request.user).order_by("bucket", "api_id", "version", "application_id", "pk")


class UsageListApi(generics.ListAPIView[Rollup]):
    """Rollup rows, one per time bucket and combination of dimensions. Developers
    see their organizations' applications only; operators see everything.
    Defaults to hourly rows; use ?granularity=m|h|d."""

    @extend_schema_serializer(component_name="UsageRow")
    class OutputSerializer(serializers.ModelSerializer[Rollup]):
        latency_avg_ms = serializers.SerializerMethodField()

        class Meta:
            model = Rollup
            fields = [
                "granularity", "bucket", "api_id", "version", "application_id", "key_prefix", "plan_id",
                "subscription_id", "endpoint", "status", "status_class", "requests", "admitted", "errors",
                "bytes_in", "bytes_out", "latency_avg_ms",
            ]

        def get_latency_avg_ms(self, obj: Rollup) -> float | None:
            return round(obj.latency_sum_ms / obj.requests, 3) if obj.requests else None

    serializer_class = OutputSerializer
    filterset_class = UsageFilter
    ordering_fields = ["bucket", "requests", "errors"]

    def get_queryset(self) -> QuerySet[Rollup]:
        return _scoped(self)


class UsageSummaryApi(generics.GenericAPIView[Rollup]):
    """Totals and latency percentiles over the same filters as the list."""

    filterset_class = UsageFilter
    pagination_class = None

    @extend_schema_serializer(component_name="UsageSummary")
    class OutputSerializer(serializers.Serializer[Any]):
        requests = serializers.IntegerField()
        admitted = serializers.IntegerField()
        # Shadows Serializer.errors only in the stubs: DRF's metaclass moves declared fields
        # into _declared_fields, so the property stays. The name is the API's, so it stays too.
        errors = serializers.IntegerField()  # type: ignore[assignment]
        error_rate = serializers.FloatField()
        bytes_in = serializers.IntegerField()
        bytes_out = serializers.IntegerField()
        p50_ms = serializers.FloatField(allow_null=True)
        p95_ms = serializers.FloatField(allow_null=True)
        p99_ms = serializers.FloatField(allow_null=True)

    serializer_class = OutputSerializer

    def get_queryset(self) -> QuerySet[Rollup]:
        return _scoped(self)

    @extend_schema(responses=OutputSerializer, filters=True)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        totals = selectors.totals(self.filter_queryset(self.get_queryset()).order_by())
        data = {**totals.__dict__, "error_rate": totals.error_rate}
        return Response(self.OutputSerializer(data).data)
