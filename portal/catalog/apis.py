"""REST API for the catalog: APIs and their versions (with lifecycle); an API's plans are in portal/plans/apis.py.

Developers read the catalog: public APIs and their non-draft versions, without the
upstream addresses. Operators see everything and create and change APIs and
versions, including upstreams, the OpenAPI document and lifecycle transitions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.serializer_helpers import ReturnDict

from gateway import contract
from portal.catalog import services
from portal.catalog.filters import ApiFilter, ApiVersionFilter
from portal.catalog.models import Api, ApiVersion, LifecycleState, RedisFailureMode, Visibility
from portal.catalog.selectors import apis_visible_to, versions_visible_to
from portal.catalog.validators import (
    validate_allowed_methods,
    validate_header_names,
    validate_methods,
    validate_origins,
)
from portal.core.api import BaseViewSet, InputSerializer, ScopedPrimaryKeyRelatedField, request_user, validated
from portal.core.errors import ApplicationError

MAX_BODY_BYTES = 10 * 1024**3


def _names(help_text: str, *validators: Callable[[object], None], max_chars: int = 100) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.CharField(max_length=max_chars), max_length=50, required=False, validators=list(validators),
        help_text=help_text,
    )


class VersionBriefSerializer(serializers.ModelSerializer[ApiVersion]):
    class Meta:
        model = ApiVersion
        fields = ["id", "label", "state", "sunset_at"]
        read_only_fields = fields


class ApiOutputSerializer(serializers.ModelSerializer[Api]):
    tags = serializers.ListField(child=serializers.CharField())
    versions = serializers.SerializerMethodField(help_text="The versions you may see.")

    class Meta:
        model = Api
        fields = [
            "id",
            "slug",
            "name",
            "summary",
            "description",
            "tags",
            "visibility",
            "versions",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(VersionBriefSerializer(many=True))
    def get_versions(self, obj: Api) -> Any:
        versions = versions_visible_to(self.context["request"].user).filter(api=obj).order_by("label")
        return VersionBriefSerializer(versions, many=True).data


class UpstreamSerializer(InputSerializer):
    url = serializers.URLField(max_length=500, help_text="http(s) origin, no credentials, query or fragment.")
    weight = serializers.IntegerField(min_value=1, max_value=1000, default=1)


class GatewayOptionsSerializer(serializers.Serializer[Any]):
    """Operator-only part of a version: where and how the gateway forwards."""

    upstreams = UpstreamSerializer(many=True)
    connect_timeout_s = serializers.FloatField()
    read_timeout_s = serializers.FloatField()
    total_timeout_s = serializers.FloatField()
    redis_failure_mode = serializers.ChoiceField(choices=RedisFailureMode.choices)
    cors_enabled = serializers.BooleanField()
    cors_allowed_origins = serializers.ListField(child=serializers.CharField())
    cors_allowed_methods = serializers.ListField(child=serializers.CharField())
    cors_allowed_headers = serializers.ListField(child=serializers.CharField())
    cors_exposed_headers = serializers.ListField(child=serializers.CharField())
    cors_max_age_s = serializers.IntegerField()
    cors_allow_credentials = serializers.BooleanField()


class VersionOutputSerializer(serializers.ModelSerializer[ApiVersion]):
    openapi = serializers.JSONField(allow_null=True)
    allowed_methods = serializers.ListField(child=serializers.CharField(), read_only=True)
    gateway = serializers.SerializerMethodField(help_text="Only operators see it; null for everyone else.")
    policies = serializers.SerializerMethodField(
        help_text="The version's edge policies (docs/gateway.md). Operators see them all; everyone else only "
        "what affects a caller: request_validation, when it is on."
    )

    class Meta:
        model = ApiVersion
        fields = [
            "id",
            "api",
            "label",
            "state",
            "deprecated_at",
            "sunset_at",
            "successor",
            "changelog",
            "openapi",
            "max_body_bytes",
            "allow_query_key",
            "allowed_methods",
            "policies",
            "gateway",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(GatewayOptionsSerializer(allow_null=True))
    def get_gateway(self, obj: ApiVersion) -> dict[str, object] | None:
        if not self.context["request"].user.is_staff:
            return None
        return {
            "upstreams": [{"url": u.url, "weight": u.weight} for u in obj.upstreams.all()],
            "connect_timeout_s": obj.connect_timeout_s,
            "read_timeout_s": obj.read_timeout_s,
            "total_timeout_s": obj.total_timeout_s,
            "redis_failure_mode": obj.redis_failure_mode,
            **{name: getattr(obj, name) for name in services.CORS_FIELDS},
        }


    @extend_schema_field(serializers.JSONField())
    def get_policies(self, obj: ApiVersion) -> dict[str, object]:
        if self.context["request"].user.is_staff:
            return dict(obj.policies or {})
        mode = (obj.policies or {}).get("request_validation", "off")
        return {"request_validation": mode} if mode != "off" else {}


class ApiProductViewSet(BaseViewSet[Api]):
    queryset = Api.objects.none()
    filterset_class = ApiFilter
    operator_actions = frozenset({"create", "partial_update"})

    class CreateInputSerializer(InputSerializer):
        slug = serializers.SlugField(max_length=80)
        name = serializers.CharField(max_length=120)
        summary = serializers.CharField(max_length=280, required=False, allow_blank=True)
        description = serializers.CharField(required=False, allow_blank=True, max_length=100_000)
        tags = serializers.ListField(child=serializers.CharField(max_length=40), max_length=30, required=False)
        visibility = serializers.ChoiceField(choices=Visibility.choices, required=False)

    class UpdateInputSerializer(CreateInputSerializer):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, partial=True, **kwargs)

    def visible_queryset(self) -> QuerySet[Api]:
        return apis_visible_to(self.request.user).order_by("name", "id")

    def _out(self, api: Api) -> ReturnDict[str, Any]:
        return ApiOutputSerializer(api, context={"request": self.request}).data

    @extend_schema(responses=ApiOutputSerializer(many=True))
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(ApiOutputSerializer(page, many=True, context={"request": request}).data)

    @extend_schema(responses=ApiOutputSerializer)
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(self._out(self.get_object()))

    @extend_schema(request=CreateInputSerializer, responses={201: ApiOutputSerializer})
    def create(self, request: Request) -> Response:
        data = validated(self.CreateInputSerializer, request)
        api = services.api_create(actor=request_user(request), **data)
        return Response(self._out(api), status=status.HTTP_201_CREATED)

    @extend_schema(request=UpdateInputSerializer, responses=ApiOutputSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        api = self.get_object()
        data = validated(self.UpdateInputSerializer, request)
        api = services.api_update(api=api, actor=request_user(request), **data)
        return Response(self._out(api))


def _openapi_document(data: dict[str, Any]) -> None:
    """Accept the OpenAPI document as a JSON object (``openapi``) or as JSON/YAML text
    (``openapi_text``, e.g. the content of an uploaded file); both are validated."""
    text = data.pop("openapi_text", None)
    if text is not None:
        if "openapi" in data:
            raise ApplicationError(
                "Send either openapi or openapi_text, not both.", fields={"openapi_text": ["Send only one."]}
            )
        data["openapi"] = services.openapi_parse(text) if text.strip() else None


class VersionInputSerializer(InputSerializer):
    changelog = serializers.CharField(required=False, allow_blank=True, max_length=100_000)
    openapi = serializers.JSONField(required=False, allow_null=True, help_text="The OpenAPI document as an object.")
    openapi_text = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=services.MAX_OPENAPI_BYTES,
        trim_whitespace=False,
        help_text="The OpenAPI document as JSON or YAML text (instead of openapi).",
    )
    connect_timeout_s = serializers.FloatField(required=False, min_value=0.05, max_value=60)
    read_timeout_s = serializers.FloatField(required=False, min_value=0.05, max_value=600)
    total_timeout_s = serializers.FloatField(required=False, min_value=0.05, max_value=3600)
    max_body_bytes = serializers.IntegerField(required=False, min_value=0, max_value=MAX_BODY_BYTES)
    allow_query_key = serializers.BooleanField(required=False)
    redis_failure_mode = serializers.ChoiceField(choices=RedisFailureMode.choices, required=False)
    allowed_methods = _names(
        "HTTP methods the gateway forwards (upper case); anything else gets 405. Never TRACE or CONNECT.",
        validate_allowed_methods,
        max_chars=20,
    )
    cors_enabled = serializers.BooleanField(
        required=False, help_text="Allow cross-origin calls from cors_allowed_origins (the portal's own always is)."
    )
    cors_allowed_origins = _names(
        "Exact origins (scheme://host[:port]); * for any, not with credentials.", validate_origins, max_chars=300
    )
    cors_allowed_methods = _names(
        "Methods a browser may use cross-origin, among allowed_methods; empty: all of them.",
        validate_methods,
        max_chars=20,
    )
    cors_allowed_headers = _names("Request headers a browser may send.", validate_header_names)
    cors_exposed_headers = _names("Response headers a browser script may read.", validate_header_names)
    cors_max_age_s = serializers.IntegerField(
        required=False, min_value=0, max_value=contract.MAX_CORS_MAX_AGE_S, help_text="Preflight cache lifetime."
    )
    cors_allow_credentials = serializers.BooleanField(required=False, help_text="Let browsers send cookies.")
    policies = serializers.JSONField(
        required=False,
        help_text="Edge policies: request_transform, response_transform, ip_rules, request_validation, cache, "
        "websocket, upstream_health (docs/gateway.md). Replaces the whole object; {} switches them all off.",
    )


class ApiVersionViewSet(BaseViewSet[ApiVersion]):
    """Versions of one API: apis/{api_id}/versions/."""

    queryset = ApiVersion.objects.none()
    filterset_class = ApiVersionFilter
    operator_actions = frozenset({"create", "partial_update", "transition"})

    class CreateInputSerializer(VersionInputSerializer):
        # DRF's metaclass moves declared fields off the class, so this does not shadow Field.label.
        label = serializers.SlugField(max_length=20, help_text="v1, v2, …")  # type: ignore[assignment]
        # many=True hands max_length to the ListSerializer; the stubs' Serializer.__init__ omits it.
        upstreams = UpstreamSerializer(many=True, allow_empty=False, max_length=50)  # type: ignore[call-arg]

    class UpdateInputSerializer(VersionInputSerializer):
        upstreams = UpstreamSerializer(  # type: ignore[call-arg]  # max_length: see CreateInputSerializer
            many=True, allow_empty=False, max_length=50, required=False
        )
        successor = ScopedPrimaryKeyRelatedField(
            model=ApiVersion, scope=versions_visible_to, required=False, allow_null=True
        )

    class TransitionInputSerializer(InputSerializer):
        to_state = serializers.ChoiceField(choices=LifecycleState.choices)
        sunset_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
        successor = ScopedPrimaryKeyRelatedField(
            model=ApiVersion, scope=versions_visible_to, required=False, allow_null=True, default=None
        )

    def get_api(self) -> Api:
        return self.parent_object(apis_visible_to(self.request.user), "api_id")

    def visible_queryset(self) -> QuerySet[ApiVersion]:
        return (
            versions_visible_to(self.request.user)
            .filter(api=self.get_api())
            .prefetch_related("upstreams")
            .order_by("label", "id")
        )

    def _out(self, version: ApiVersion) -> ReturnDict[str, Any]:
        return VersionOutputSerializer(version, context={"request": self.request}).data

    @extend_schema(responses=VersionOutputSerializer(many=True))
    def list(self, request: Request, api_id: str) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(VersionOutputSerializer(page, many=True, context={"request": request}).data)

    @extend_schema(responses=VersionOutputSerializer)
    def retrieve(self, request: Request, api_id: str, pk: str) -> Response:
        return Response(self._out(self.get_object()))

    @extend_schema(request=CreateInputSerializer, responses={201: VersionOutputSerializer})
    def create(self, request: Request, api_id: str) -> Response:
        api = self.get_api()
        data = validated(self.CreateInputSerializer, request)
        _openapi_document(data)
        version = services.version_create(api=api, actor=request_user(request), **data)
        return Response(self._out(version), status=status.HTTP_201_CREATED)

    @extend_schema(request=UpdateInputSerializer, responses=VersionOutputSerializer)
    def partial_update(self, request: Request, api_id: str, pk: str) -> Response:
        version = self.get_object()
        data = validated(self.UpdateInputSerializer, request)
        _openapi_document(data)
        if "successor" in data:
            successor = data.pop("successor")  # null clears it
            data["successor_id"] = successor.pk if successor else None
        version = services.version_update(version=version, actor=request_user(request), **data)
        return Response(self._out(version))

    @extend_schema(
        request=TransitionInputSerializer,
        responses=VersionOutputSerializer,
        description="draft → published → deprecated → retired; deprecated may go back to published; "
        "retired is final. sunset_at and successor apply to deprecation.",
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def transition(self, request: Request, api_id: str, pk: str) -> Response:
        version = self.get_object()
        data = validated(self.TransitionInputSerializer, request)
        version = services.version_transition(
            version=version,
            to_state=data["to_state"],
            sunset_at=data["sunset_at"],
            successor=data["successor"],
            actor=request_user(request),
        )
        return Response(self._out(version))
