"""The portal's URLs plus two views that fail, for the error-page tests (API8)."""

from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

FAILURE = "boom-7d1f: an internal detail that must not reach the client"


def page_that_fails(request: HttpRequest) -> HttpResponse:
    raise RuntimeError(FAILURE)


class ApiThatFails(APIView):
    authentication_classes: list[type] = []
    permission_classes: list[type] = []

    def get(self, request: Request) -> Response:
        raise RuntimeError(FAILURE)


urlpatterns = [
    path("boom/", page_that_fails),
    path("api/v1/boom/", ApiThatFails.as_view()),
    path("", include("portal.urls")),
]
