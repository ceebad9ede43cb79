"""REST usage API under /api/v1/usage/: thin views over selectors."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics import selectors
from analytics.models import Granularity, Rollup
from portal.core.filters import UtcIsoDateTimeFilter


class UsageFilter(django_filters.FilterSet):
    granularity = django_filters.ChoiceFilter(choices=Granularity.choices, empty_label=None)
    start = UtcIsoDateTimeFilter(field_name="bucket", lookup_expr="gte")
    end = UtcIsoDateTimeFilter(field_name="bucket", lookup_expr="lt")

    class Meta:
        model = Rollup
        fields = ["api_id", "version", "application_id", "key_prefix", "plan_id", "subscription_id", "status_class"]

    def filter_queryset(self, queryset: QuerySet[Rollup]) -> QuerySet[Rollup]:
        # Without a granularity the rows of all three would count each request three times.
        if not self.form.cleaned_data.get("granularity"):
            queryset = queryset.filter(granularity=Granularity.HOUR)
        return super().filter_queryset(queryset)


def _scoped(request: Request) -> QuerySet[Rollup]:
    return selectors.rollups_for(request.user).order_by("bucket", "api_id", "version", "application_id", "pk")


class UsageListApi(generics.ListAPIView):
    """Rollup rows, one per time bucket and combination of dimensions. Developers
    see their organizations' applications only; operators see everything.
    Defaults to hourly rows; use ?granularity=m|h|d."""

    class OutputSerializer(serializers.ModelSerializer):
        latency_avg_ms = serializers.SerializerMethodField()

        class Meta:
            model = Rollup
            fields = [
                "granularity", "bucket", "api_id", "version", "application_id", "key_prefix", "plan_id",
                "subscription_id", "status_class", "requests", "admitted", "errors", "bytes_in", "bytes_out",
                "latency_avg_ms",
            ]

        def get_latency_avg_ms(self, obj: Rollup) -> float | None:
            return round(obj.latency_sum_ms / obj.requests, 3) if obj.requests else None

    serializer_class = OutputSerializer
    filterset_class = UsageFilter
    ordering_fields = ["bucket", "requests", "errors"]

    def get_queryset(self) -> QuerySet[Rollup]:
        return _scoped(self.request)


class UsageSummaryApi(APIView):
    """Totals and latency percentiles over the same filters as the list."""

    class OutputSerializer(serializers.Serializer):
        requests = serializers.IntegerField()
        admitted = serializers.IntegerField()
        errors = serializers.IntegerField()
        error_rate = serializers.FloatField()
        bytes_in = serializers.IntegerField()
        bytes_out = serializers.IntegerField()
        p50_ms = serializers.FloatField(allow_null=True)
        p95_ms = serializers.FloatField(allow_null=True)
        p99_ms = serializers.FloatField(allow_null=True)

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        flt = UsageFilter(request.query_params, queryset=_scoped(request), request=request)
        if not flt.is_valid():
            from rest_framework.exceptions import ValidationError

            raise ValidationError(flt.errors)
        totals = selectors.totals(flt.qs.order_by())
        data = {**totals.__dict__, "error_rate": totals.error_rate}
        return Response(self.OutputSerializer(data).data)
