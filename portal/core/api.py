"""Shared pieces of the REST API: the base view set, the error schema, scoped fields.

Every API view set inherits ``BaseViewSet``: JSON only, OAuth2 bearer or session
authentication, read/write scopes for tokens, and an OpenAPI schema that documents
the one error body every 4xx answers with (see portal/core/errors.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import Model, QuerySet
from drf_spectacular import openapi
from oauth2_provider.contrib.rest_framework import OAuth2Authentication
from rest_framework import serializers, viewsets
from rest_framework.authentication import SessionAuthentication
from rest_framework.generics import get_object_or_404
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer

from portal.core.permissions import IsOperator, TokenHasScopeForMethod

# Declared scopes are checked for bearer tokens: read for GET, write for the rest.
DEFAULT_PERMISSIONS = [IsAuthenticated, TokenHasScopeForMethod]
OPERATOR_PERMISSIONS = [*DEFAULT_PERMISSIONS, IsOperator]


class ErrorDetailSerializer(serializers.Serializer):
    type = serializers.CharField(help_text="A stable code, e.g. invalid, not_found, permission_denied, conflict.")
    message = serializers.CharField()
    fields = serializers.DictField(
        child=serializers.JSONField(), required=False, help_text="Per-field messages, for invalid input."
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


class AutoSchema(openapi.AutoSchema):
    """Adds the error responses each operation can give, all with the ErrorSerializer body."""

    def _error_codes(self) -> list[int]:
        codes = [400, 401, 403, 404]  # 400 also for bad filters, 404 for a bad page number
        if self.method not in {"GET", "HEAD", "OPTIONS"}:
            codes.append(409)
        if self.view.get_throttles():
            codes.append(429)
        return codes

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        for code in map(str, self._error_codes()):
            responses.setdefault(code, self._get_response_for_code(ErrorSerializer, code, direction=direction))
        return responses

    def get_serializer_name(self, serializer: Any, direction: Any) -> str:
        # Input/output serializers nested in a view set are named after it
        # (ApplicationViewSet.CreateInputSerializer -> ApplicationCreateInput), so
        # every view set can call its own CreateInputSerializer without clashing.
        outer, _, inner = type(serializer).__qualname__.rpartition(".")
        if outer:
            return outer.removesuffix("ViewSet") + inner
        return str(super().get_serializer_name(serializer, direction))


class BaseViewSet(viewsets.GenericViewSet):
    # Bearer first: an unauthenticated request then gets 401 with a WWW-Authenticate header.
    authentication_classes = [OAuth2Authentication, SessionAuthentication]
    permission_classes = DEFAULT_PERMISSIONS
    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]
    schema = AutoSchema()
    # Operator-only actions; everything else needs only an authenticated caller.
    operator_actions: frozenset[str] = frozenset()

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            # Schema generation: no user and no URL kwargs; the class queryset names the model.
            return self.queryset
        return self.visible_queryset()

    def visible_queryset(self) -> Any:
        """What the caller may see; every lookup by id goes through it, hence 404 for the rest."""
        raise NotImplementedError

    def get_permissions(self) -> list[Any]:
        classes = OPERATOR_PERMISSIONS if self.action in self.operator_actions else self.permission_classes
        return [cls() for cls in classes]

    def parent_object(self, queryset: QuerySet[Any], kwarg: str) -> Any:
        """The object a nested route hangs under; 404 when the caller may not see it."""
        return get_object_or_404(queryset, pk=self.kwargs[kwarg])


class ScopedPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A primary key that must name an object the caller may see: anything else is
    answered like a non-existent id, so a guess reveals nothing."""

    def __init__(self, *, model: type[Model], scope: Callable[[Any], QuerySet[Any]], **kwargs: Any) -> None:
        self.scope = scope
        # The unscoped queryset is only for the schema (the id's type); lookups use get_queryset.
        super().__init__(queryset=model._default_manager.all(), **kwargs)

    def get_queryset(self) -> QuerySet[Any]:
        return self.scope(self.context["request"].user)


def validated(serializer_class: type[serializers.Serializer], request: Any) -> dict[str, Any]:
    """Validate the request body with an input serializer; only its declared fields come out,
    so anything else a caller sends (status, organization, key_hash, ...) is dropped here."""
    serializer = serializer_class(data=request.data, context={"request": request})
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)
