"""REST API for applications, their API keys and their OAuth2 client.

A key's secret and a client's secret appear in exactly one response each: the one
that created them. List, detail and every later response carry only the prefix.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle

from portal.accounts.selectors import organizations_all, organizations_for
from portal.core.api import BaseViewSet, InputSerializer, ScopedPrimaryKeyRelatedField, request_user, validated
from portal.keys import services
from portal.keys.filters import ApiKeyFilter, ApplicationFilter
from portal.keys.models import ApiKey, Application
from portal.keys.selectors import applications_for, keys_for
from portal.keys.services import MAX_ROTATION_GRACE


class ApplicationOutputSerializer(serializers.ModelSerializer[Application]):
    has_oauth_client = serializers.SerializerMethodField()

    class Meta:
        model = Application
        fields = ["id", "organization", "name", "description", "has_oauth_client", "created_at", "updated_at"]
        read_only_fields = fields

    def get_has_oauth_client(self, obj: Application) -> bool:
        return obj.oauth_client_id is not None


class ApplicationViewSet(BaseViewSet[Application]):
    queryset = Application.objects.none()
    filterset_class = ApplicationFilter

    class CreateInputSerializer(InputSerializer):
        organization = ScopedPrimaryKeyRelatedField(model=organizations_all().model, scope=organizations_for)
        name = serializers.CharField(max_length=120)
        description = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")

    class UpdateInputSerializer(InputSerializer):
        name = serializers.CharField(max_length=120, required=False)
        description = serializers.CharField(required=False, allow_blank=True, max_length=2000)

    class OAuthClientOutputSerializer(serializers.Serializer[Any]):
        client_id = serializers.CharField()

    class OAuthClientCreatedSerializer(serializers.Serializer[Any]):
        client_id = serializers.CharField()
        client_secret = serializers.CharField(help_text="Shown only in this response; store it now.")

    def visible_queryset(self) -> QuerySet[Application]:
        return applications_for(self.request.user).order_by("name", "id")

    @extend_schema(responses=ApplicationOutputSerializer(many=True))
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(ApplicationOutputSerializer(page, many=True).data)

    @extend_schema(responses=ApplicationOutputSerializer)
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(ApplicationOutputSerializer(self.get_object()).data)

    @extend_schema(request=CreateInputSerializer, responses={201: ApplicationOutputSerializer})
    def create(self, request: Request) -> Response:
        data = validated(self.CreateInputSerializer, request)
        application = services.application_create(
            organization=data["organization"],
            name=data["name"],
            description=data["description"],
            actor=request_user(request),
        )
        return Response(ApplicationOutputSerializer(application).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=UpdateInputSerializer, responses=ApplicationOutputSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        application = self.get_object()
        data = validated(self.UpdateInputSerializer, request)
        application = services.application_update(application=application, actor=request_user(request), **data)
        return Response(ApplicationOutputSerializer(application).data)

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, pk: str) -> Response:
        services.application_delete(application=self.get_object(), actor=request_user(request))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses=OAuthClientOutputSerializer)
    @action(detail=True, methods=["get"], url_path="oauth-client", filterset_class=None)
    def oauth_client(self, request: Request, pk: str) -> Response:
        application = self.get_object()
        if application.oauth_client is None:
            raise exceptions.NotFound("This application has no OAuth2 client.")
        return Response({"client_id": application.oauth_client.client_id})

    @extend_schema(request=None, responses={201: OAuthClientCreatedSerializer})
    @oauth_client.mapping.post
    def oauth_client_create(self, request: Request, pk: str) -> Response:
        issued = services.oauth_client_create(application=self.get_object(), actor=request_user(request))
        return Response(
            {"client_id": issued.client_id, "client_secret": issued.client_secret}, status=status.HTTP_201_CREATED
        )

    @extend_schema(request=None, responses={204: None})
    @oauth_client.mapping.delete
    def oauth_client_delete(self, request: Request, pk: str) -> Response:
        services.oauth_client_delete(application=self.get_object(), actor=request_user(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ApiKeyOutputSerializer(serializers.ModelSerializer[ApiKey]):
    status = serializers.CharField(source="effective_status", help_text="active, rotating, expired or revoked.")

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "application",
            "label",
            "prefix",
            "status",
            "expires_at",
            "grace_until",
            "replaced_by",
            "created_at",
            "last_used_at",
            "revoked_at",
        ]
        read_only_fields = fields


class IssuedKeyOutputSerializer(ApiKeyOutputSerializer):
    secret = serializers.CharField(help_text="The full key. Shown only in this response; store it now.")

    class Meta(ApiKeyOutputSerializer.Meta):
        fields = [*ApiKeyOutputSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class RotatedKeyOutputSerializer(serializers.Serializer[Any]):
    key = IssuedKeyOutputSerializer(help_text="The new key, with its secret (shown only here).")
    previous = ApiKeyOutputSerializer(help_text="The rotated key; it keeps working until grace_until.")


def _issued(issued: services.IssuedKey) -> dict[str, Any]:
    return {**ApiKeyOutputSerializer(issued.key).data, "secret": issued.secret}


class ApiKeyViewSet(BaseViewSet[ApiKey]):
    """Keys of one application: applications/{application_id}/keys/."""

    queryset = ApiKey.objects.none()
    filterset_class = ApiKeyFilter
    throttle_scope = "key_create"

    class CreateInputSerializer(InputSerializer):
        # DRF's metaclass moves declared fields off the class, so this does not shadow Field.label.
        label = serializers.CharField(  # type: ignore[assignment]
            max_length=80, required=False, allow_blank=True, default=""
        )
        expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)

    class RotateInputSerializer(InputSerializer):
        grace_seconds = serializers.IntegerField(
            min_value=0,
            max_value=int(MAX_ROTATION_GRACE.total_seconds()),
            help_text="How long the old key keeps working (0 = it stops now; at most 30 days).",
        )
        label = serializers.CharField(  # type: ignore[assignment]  # as in CreateInputSerializer
            max_length=80, required=False, allow_blank=True
        )

    def get_throttles(self) -> list[Any]:
        # Issuing keys is what a stolen session would abuse; reading them is not throttled.
        return [ScopedRateThrottle()] if self.action in {"create", "rotate"} else []

    def get_application(self) -> Application:
        return self.parent_object(applications_for(self.request.user), "application_id")

    def visible_queryset(self) -> QuerySet[ApiKey]:
        application = self.get_application()
        return keys_for(self.request.user).filter(application=application).order_by("-created_at", "-id")

    @extend_schema(responses=ApiKeyOutputSerializer(many=True))
    def list(self, request: Request, application_id: str) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(ApiKeyOutputSerializer(page, many=True).data)

    @extend_schema(responses=ApiKeyOutputSerializer)
    def retrieve(self, request: Request, application_id: str, pk: str) -> Response:
        return Response(ApiKeyOutputSerializer(self.get_object()).data)

    @extend_schema(request=CreateInputSerializer, responses={201: IssuedKeyOutputSerializer})
    def create(self, request: Request, application_id: str) -> Response:
        application = self.get_application()
        data = validated(self.CreateInputSerializer, request)
        issued = services.api_key_issue(
            application=application, label=data["label"], expires_at=data["expires_at"], actor=request_user(request)
        )
        return Response(_issued(issued), status=status.HTTP_201_CREATED)

    @extend_schema(request=RotateInputSerializer, responses={201: RotatedKeyOutputSerializer})
    @action(detail=True, methods=["post"], filterset_class=None)
    def rotate(self, request: Request, application_id: str, pk: str) -> Response:
        key = self.get_object()
        data = validated(self.RotateInputSerializer, request)
        issued = services.api_key_rotate(
            key=key,
            grace=dt.timedelta(seconds=data["grace_seconds"]),
            label=data.get("label"),
            actor=request_user(request),
        )
        key.refresh_from_db()
        body = {"key": _issued(issued), "previous": ApiKeyOutputSerializer(key).data}
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=ApiKeyOutputSerializer)
    @action(detail=True, methods=["post"], filterset_class=None)
    def revoke(self, request: Request, application_id: str, pk: str) -> Response:
        key = services.api_key_revoke(key=self.get_object(), actor=request_user(request))
        return Response(ApiKeyOutputSerializer(key).data)
