"""Admin plumbing: save through services, so the admin is audited and published like the API."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from portal.core.errors import ApplicationError


def run_action(request: HttpRequest, queryset: Any, service: Any, verb: str, **kwargs: Any) -> None:
    """Apply a service to each selected object; report successes and refusals as messages."""
    done, refused = 0, []
    for obj in queryset:
        try:
            service(obj, **kwargs)
            done += 1
        except (ApplicationError, ValidationError) as exc:
            refused.append(f"{obj}: {getattr(exc, 'message', exc)}")
    if done:
        messages.success(request, f"{verb.capitalize()} {done} object(s).")
    for line in refused[:20]:
        messages.warning(request, line)


def changed_fields(form: Any, names: list[str]) -> dict[str, Any]:
    return {name: form.cleaned_data[name] for name in names if name in form.changed_data}
