"""The declarative configuration over REST, for operators: /api/v1/config/ (dump), .../diff/,
.../sync/ and .../schema/. Thin views: validate, call the selector or service, render."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from oauth2_provider.contrib.rest_framework import OAuth2Authentication
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.core.api import OPERATOR_PERMISSIONS, AutoSchema, InputSerializer, request_user, validated
from portal.declarative.authentication import AutomationTokenAuthentication
from portal.declarative.models import AutomationToken
from portal.declarative.selectors import config_diff, config_dump, config_schema
from portal.declarative.services import config_parse, config_sync

# Errors in a posted document name this instead of a file.
REQUEST_FILENAME = "request"
MAX_DOCUMENT_CHARS = 8 * 1024 * 1024


class ConfigChangeSerializer(serializers.Serializer[Any]):
    action = serializers.CharField(help_text="create, update, delete, deactivate or transition")
    subject = serializers.CharField(help_text='e.g. "plan echo/pro"')
    field = serializers.CharField(allow_blank=True)
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)
    text = serializers.CharField(help_text='e.g. "plan echo/pro: quota_per_month 1000000 -> 2000000"')


class _ConfigApi(APIView):
    # Automation tokens (twc_...) authenticate here and nowhere else.
    authentication_classes = [AutomationTokenAuthentication, OAuth2Authentication, SessionAuthentication]
    permission_classes = OPERATOR_PERMISSIONS
    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]
    schema = AutoSchema()


class ConfigDumpApi(_ConfigApi):
    @extend_schema(
        operation_id="config_dump",
        responses={200: OpenApiTypes.OBJECT},
        description="The live APIs, versions, plans and overrides in the configuration's format.",
    )
    def get(self, request: Request) -> Response:
        return Response(config_dump())


class ConfigSchemaApi(_ConfigApi):
    @extend_schema(
        operation_id="config_schema",
        responses={200: OpenApiTypes.OBJECT},
        description="The configuration's JSON Schema (also docs/tollway-config.schema.json).",
    )
    def get(self, request: Request) -> Response:
        return Response(config_schema())


class ConfigDiffApi(_ConfigApi):
    class Input(InputSerializer):
        document = serializers.CharField(
            max_length=MAX_DOCUMENT_CHARS, trim_whitespace=False, help_text="The configuration, as YAML or JSON text."
        )
        prune = serializers.BooleanField(default=False)
        force = serializers.BooleanField(default=False)

    class Output(serializers.Serializer[Any]):
        changes = ConfigChangeSerializer(many=True)

    @extend_schema(
        operation_id="config_diff",
        request=Input,
        responses={200: Output},
        description="What a sync of the document would change; 400 names each bad line.",
    )
    def post(self, request: Request) -> Response:
        data = validated(self.Input, request)
        document = config_parse(data["document"], filename=REQUEST_FILENAME)
        changes = config_diff(document=document, prune=data["prune"], force=data["force"])
        return Response({"changes": [c.as_dict() for c in changes]})


class ConfigSyncApi(_ConfigApi):
    class Input(InputSerializer):
        document = serializers.CharField(
            max_length=MAX_DOCUMENT_CHARS, trim_whitespace=False, help_text="The configuration, as YAML or JSON text."
        )
        dry_run = serializers.BooleanField(default=False, help_text="Return the changes; change nothing.")
        prune = serializers.BooleanField(default=False, help_text="Remove what the document no longer names.")
        force = serializers.BooleanField(default=False, help_text="Prune even plans in use and versions in use.")

    class Output(serializers.Serializer[Any]):
        changes = ConfigChangeSerializer(many=True)
        applied = serializers.BooleanField(help_text="False for a dry run.")
        sha256 = serializers.CharField(allow_blank=True, help_text="The live state's hash after the sync.")

    @extend_schema(
        operation_id="config_sync",
        request=Input,
        responses={200: Output},
        description="Apply the document, all or nothing, audited as the caller (or as automation:NAME for a token).",
    )
    def post(self, request: Request) -> Response:
        data = validated(self.Input, request)
        document = config_parse(data["document"], filename=REQUEST_FILENAME)
        result = config_sync(
            document=document,
            actor=request_user(request),
            prune=data["prune"],
            force=data["force"],
            dry_run=data["dry_run"],
            token=request.auth if isinstance(request.auth, AutomationToken) else None,
        )
        return Response(
            {"changes": [c.as_dict() for c in result.changes], "applied": result.applied, "sha256": result.sha256}
        )
