"""The portal's URLs plus one view that fails, for the 500 page's test."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from portal.urls import urlpatterns as portal_urlpatterns


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("SECRET_INTERNAL_DETAIL in /work/portal/settings.py")


urlpatterns = [path("boom/", boom), *portal_urlpatterns]
