"""Shared pieces of the REST API: the base view set, the error schema, scoped fields.

Every API view set inherits ``BaseViewSet``: JSON only, OAuth2 bearer or session
authentication, read/write scopes for tokens, and an OpenAPI schema that documents
the one error body every 4xx answers with (see portal/core/errors.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from django.contrib.auth.models import AnonymousUser
from django.core.paginator import Paginator
from django.db.models import Model, QuerySet
from django.http import HttpRequest, JsonResponse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular import openapi
from oauth2_provider.contrib.rest_framework import OAuth2Authentication
from rest_framework import exceptions, serializers, viewsets
from rest_framework.authentication import SessionAuthentication
from rest_framework.generics import get_object_or_404
from rest_framework.metadata import SimpleMetadata
from rest_framework.parsers import JSONParser
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from portal.core.pagination import Pagination
from portal.core.permissions import IsOperator, TokenHasScopeForMethod

if TYPE_CHECKING:
    from drf_spectacular.utils import Direction

    from portal.accounts.models import User

_M = TypeVar("_M", bound=Model)
_P = TypeVar("_P", bound=Model)

# Declared scopes are checked for bearer tokens: read for GET, write for the rest.
DEFAULT_PERMISSIONS: list[type[BasePermission]] = [IsAuthenticated, TokenHasScopeForMethod]
OPERATOR_PERMISSIONS: list[type[BasePermission]] = [*DEFAULT_PERMISSIONS, IsOperator]


class ErrorDetailSerializer(serializers.Serializer[Any]):
    type = serializers.CharField(help_text="A stable code, e.g. invalid, not_found, permission_denied, conflict.")
    message = serializers.CharField()
    # DRF's metaclass moves declared fields off the class, so this does not shadow Serializer.fields.
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.JSONField(), required=False, help_text="Per-field messages, for invalid input."
    )


class ErrorSerializer(serializers.Serializer[Any]):
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

    def _get_response_bodies(self, direction: Direction = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        for code in map(str, self._error_codes()):
            # drf-spectacular leaves this hook unannotated.
            response = self._get_response_for_code(ErrorSerializer, code, direction=direction)  # type: ignore[no-untyped-call]
            responses.setdefault(code, response)
        return responses

    def get_serializer_name(self, serializer: serializers.Serializer[Any], direction: Direction) -> str:
        # Input/output serializers nested in a view set are named after it
        # (ApplicationViewSet.CreateInputSerializer -> ApplicationCreateInput), so
        # every view set can call its own CreateInputSerializer without clashing.
        outer, _, inner = type(serializer).__qualname__.rpartition(".")
        if outer:
            return outer.removesuffix("ViewSet") + inner
        return str(super().get_serializer_name(serializer, direction))


class StrictPagination(Pagination):
    """Page numbers as in settings, but a malformed page or page_size is an error (404 and
    400, as DRF answers an out-of-range page) rather than silently replaced by a default."""

    def get_page_number(self, request: Request, paginator: Paginator[Any]) -> int:
        raw = request.query_params.get(self.page_query_param)
        if raw is None:
            return 1
        if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
            raise exceptions.NotFound(self.invalid_page_message.format(page_number=raw, message="Not a page number."))
        return int(raw)

    def get_page_size(self, request: Request) -> int | None:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if not 1 <= size <= self.max_page_size:
            message = f"A whole number from 1 to {self.max_page_size}."
            raise exceptions.ValidationError({self.page_size_query_param: [message]})
        return size

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_query_param:
                parameter["schema"]["minimum"] = 1
            elif parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
        return parameters


class PlainMetadata(SimpleMetadata):
    """OPTIONS answers name, description and formats. DRF's default also describes the
    serializer of each action, which these view sets pick per action (so it would crash)."""

    def determine_actions(self, request: Request, view: APIView) -> dict[str, Any]:
        return {}


def _json_type_error(field: serializers.Field[Any, Any, Any, Any], value: object) -> str | None:
    """What is wrong with the JSON type of ``value`` for ``field``, if anything. DRF coerces
    (0 becomes "0", "5" becomes 5, "yes" becomes True); the API takes JSON as its schema says."""
    if value is None:
        return None  # allow_null decides
    if isinstance(field, serializers.BooleanField):
        ok, expected = isinstance(value, bool), "a boolean"
    elif isinstance(field, (serializers.IntegerField, serializers.PrimaryKeyRelatedField)):
        ok, expected = isinstance(value, int) and not isinstance(value, bool), "an integer"
    elif isinstance(field, serializers.FloatField):
        ok, expected = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
    elif isinstance(field, (serializers.CharField, serializers.ChoiceField, serializers.DecimalField)):
        ok, expected = isinstance(value, str), "a string"
    elif isinstance(field, serializers.DateTimeField):
        ok, expected = isinstance(value, str), "a date-time string"
    elif isinstance(field, (serializers.ListField, serializers.ListSerializer)):
        if not isinstance(value, list):
            return "Expected a list."
        if isinstance(field, serializers.ListField):
            for item in value:
                error = _json_type_error(field.child, item)
                if error:
                    return error
        return None
    else:
        return None  # JSONField and nested serializers check themselves
    return None if ok else f"Expected {expected}."


class InputSerializer(serializers.Serializer[Any]):
    """Base of every input serializer: JSON types are checked strictly before DRF's coercion."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            errors: dict[str, list[str]] = {}
            for name, field in self.fields.items():
                if not field.read_only and name in data:
                    error = _json_type_error(field, data[name])
                    if error:
                        errors[name] = [error]
            if errors:
                raise exceptions.ValidationError(errors)
        return super().to_internal_value(data)


class BaseViewSet(viewsets.GenericViewSet[_M]):
    """Typed by the model it serves: ``class ApplicationViewSet(BaseViewSet[Application])``."""

    # Bearer first: an unauthenticated request then gets 401 with a WWW-Authenticate header.
    authentication_classes = [OAuth2Authentication, SessionAuthentication]
    permission_classes = DEFAULT_PERMISSIONS
    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]
    pagination_class = StrictPagination
    metadata_class = PlainMetadata
    filter_backends = [DjangoFilterBackend]
    # Any id shape reaches the view, which answers a JSON 404 for ids it cannot find.
    lookup_value_regex = "[^/]+"
    schema = AutoSchema()
    # Each view set sets Model.objects.none(): it names the model for the schema.
    queryset: QuerySet[_M] | None
    # Operator-only actions; everything else needs only an authenticated caller.
    operator_actions: frozenset[str] = frozenset()

    def get_queryset(self) -> QuerySet[_M]:
        if getattr(self, "swagger_fake_view", False):
            # Schema generation: no user and no URL kwargs; the class queryset names the model.
            # A view set without a model has None here, from which drf-spectacular names no model.
            return self.queryset  # type: ignore[return-value]
        return self.visible_queryset()

    def visible_queryset(self) -> QuerySet[_M]:
        """What the caller may see; every lookup by id goes through it, hence 404 for the rest."""
        raise NotImplementedError

    def get_permissions(self) -> Sequence[BasePermission]:
        classes = OPERATOR_PERMISSIONS if self.action in self.operator_actions else self.permission_classes
        return [cls() for cls in classes]

    def parent_object(self, queryset: QuerySet[_P], kwarg: str) -> _P:
        """The object a nested route hangs under; 404 when the caller may not see it."""
        return get_object_or_404(queryset, pk=self.kwargs[kwarg])


class ScopedPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField[_M]):
    """A primary key that must name an object the caller may see: anything else is
    answered like a non-existent id, so a guess reveals nothing."""

    def __init__(
        self, *, model: type[_M], scope: Callable[[User | AnonymousUser], QuerySet[_M]], **kwargs: Any
    ) -> None:
        self.scope = scope
        # The unscoped queryset is only for the schema (the id's type); lookups use get_queryset.
        super().__init__(queryset=model._default_manager.all(), **kwargs)

    def get_queryset(self) -> QuerySet[_M]:
        return self.scope(self.context["request"].user)


def request_user(request: Request) -> User:
    """The signed-in caller. Every view set requires IsAuthenticated, so DRF has refused
    anonymous callers before an action runs; this narrows the type and keeps it so."""
    user = request.user
    if not user.is_authenticated:
        raise exceptions.NotAuthenticated()
    return user


def validated(serializer_class: type[serializers.Serializer[Any]], request: Request) -> dict[str, Any]:
    """Validate the request body with an input serializer; only its declared fields come out,
    so anything else a caller sends (status, organization, key_hash, ...) is dropped here."""
    serializer = serializer_class(data=request.data, context={"request": request})
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def api_not_found(request: HttpRequest) -> JsonResponse:
    body = {"error": {"type": "not_found", "message": "No API resource at this path."}}
    return JsonResponse(body, status=404)
