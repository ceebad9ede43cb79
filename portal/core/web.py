"""Small helpers shared by the server-rendered views."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from django import forms
from django.http import HttpRequest

from portal.core.errors import ApplicationError

if TYPE_CHECKING:
    from portal.accounts.models import User


class AuthenticatedHttpRequest(HttpRequest):
    """The request a @login_required view receives: its user is signed in. Only for
    annotations (django-stubs' pattern); Django still builds a plain HttpRequest."""

    user: User


def base_url(request: HttpRequest) -> str:
    """Scheme and host the user reached us on, for links in emails."""
    return f"{request.scheme}://{request.get_host()}"


def form_add_error(form: forms.Form, exc: ApplicationError) -> None:
    """Show a domain error on the form: next to each named field, else at the top."""
    form.add_error(None, exc.message)
    for field, messages in exc.fields.items():
        if field in form.fields:
            for message in messages:
                form.add_error(field, message)


ONCE_TTL_SECONDS = 24 * 3600


def once_claim(request: HttpRequest, scope: str, token: str) -> bool:
    """True the first time this user submits this form token. Reloading a page that
    answered a POST resubmits it; for forms that mint a secret that must not mint a
    second one."""
    from django.core.cache import cache

    digest = hashlib.sha256(token.encode()).hexdigest()  # the token is client input: keep it out of the key
    return bool(cache.add(f"web-once:{scope}:{request.user.pk}:{digest}", 1, timeout=ONCE_TTL_SECONDS))
