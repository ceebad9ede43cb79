"""Validation of a version's allowed methods and CORS policy: one set of rules for the
model (and so for the services, the REST API and the admin alike)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

from gateway import contract
from portal.core.validators import origin_of

# RFC 9110 §5.1 token: what a method or header field name may be made of.
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


def _strings(value: object, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError(f"Give {what} as a list of strings.")
    if len(value) > 50:
        raise ValidationError(f"At most 50 {what}.")
    return [str(v) for v in value]


def validate_methods(value: object) -> None:
    """Upper-case HTTP method tokens; never TRACE or CONNECT (the gateway refuses them anyway)."""
    methods = _strings(value, "methods")
    for method in methods:
        if not _TOKEN.match(method) or method != method.upper():
            raise ValidationError(f"{method!r} is not an HTTP method: use upper-case names such as GET.")
        if method in contract.NEVER_ALLOWED_METHODS:
            raise ValidationError(f"{method} is never allowed: the gateway refuses TRACE and CONNECT.")
    if len(set(methods)) != len(methods):
        raise ValidationError("A method is listed twice.")


def validate_allowed_methods(value: object) -> None:
    validate_methods(value)
    if not value:
        raise ValidationError("Allow at least one method.")


def validate_header_names(value: object) -> None:
    for name in _strings(value, "header names"):
        if not _TOKEN.match(name) or name == "*":
            raise ValidationError(f"{name!r} is not a header name.")


def validate_origins(value: object) -> None:
    """Each entry is ``*`` or an exact origin as a browser sends it: scheme://host[:port],
    no path, query, fragment or credentials."""
    for origin in _strings(value, "origins"):
        if origin == "*":
            continue
        parts = urlsplit(origin)
        try:
            exact = origin_of(origin)
        except ValueError:
            raise ValidationError(
                f"{origin!r} is not an origin: write scheme://host[:port], e.g. https://app.example.com."
            ) from None
        if parts.username or parts.password or parts.path or parts.query or parts.fragment or origin != exact:
            raise ValidationError(
                f"{origin!r} is not an origin as browsers send it: write {exact} "
                "(no path, lower case, no default port)."
            )
