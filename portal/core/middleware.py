"""The styled 404 page in DEBUG too.

With DEBUG on, Django answers a 404 with its technical page: every URL pattern of the
site, the settings module's name, the view that raised. That is the page a developer
running the demo with DEBUG on (`make dev`) would show anyone who mistypes an address,
so the portal answers its own 404 page whatever DEBUG says. A server error in DEBUG
still gets Django's traceback page: that one is the point of DEBUG, and `make run`
(like production) runs with DEBUG off.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import Resolver404, get_resolver


class StyledNotFoundMiddleware:
    """Last in MIDDLEWARE, so the page it renders still passes out through CSP and the
    other security middleware. Does nothing when DEBUG is off (Django's handler404
    already renders templates/404.html)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # No resolver match and a 404: the address matched no URL pattern, and DEBUG's
        # technical page (the URL list) is what came back.
        if settings.DEBUG and response.status_code == 404 and request.resolver_match is None:
            return self._not_found(request, Resolver404({"path": request.path_info}))
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if settings.DEBUG and isinstance(exception, Http404):
            return self._not_found(request, exception)
        return None

    @staticmethod
    def _not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
        # The site's handler404 (Django's page_not_found: templates/404.html), as with DEBUG off.
        # django-stubs types the handler as taking the request alone; Django calls it with the exception too.
        view = cast(Callable[[HttpRequest, Exception], HttpResponse], get_resolver().resolve_error_handler(404))
        return view(request, exception)
