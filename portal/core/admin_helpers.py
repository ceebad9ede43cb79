"""Admin plumbing: save through services, so the admin is audited and published like the API."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Model
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from portal.core.errors import ApplicationError

if TYPE_CHECKING:
    from portal.accounts.models import User

_M = TypeVar("_M", bound=Model)


def run_action(request: HttpRequest, queryset: Iterable[_M], service: Callable[[_M], object], verb: str) -> None:
    """Apply a service to each selected object; report successes and refusals as messages."""
    done, refused = 0, list[str]()
    for obj in queryset:
        try:
            service(obj)
            done += 1
        except (ApplicationError, ValidationError) as exc:
            refused.append(f"{obj}: {getattr(exc, 'message', exc)}")
    if done:
        messages.success(request, f"{verb.capitalize()} {done} object(s).")
    for line in refused[:20]:
        messages.warning(request, line)


def admin_user(request: HttpRequest) -> User:
    """The operator behind an admin request. The admin site lets only active staff in
    (AdminSite.admin_view), so this narrows the type and never refuses in practice."""
    user = request.user
    if not user.is_authenticated:
        raise PermissionDenied
    return user


def changed_fields(form: forms.BaseForm, names: Iterable[str]) -> dict[str, Any]:
    return {name: form.cleaned_data[name] for name in names if name in form.changed_data}


class ServiceAdmin(admin.ModelAdmin[_M]):
    """Forms validate what they can; a domain rule only the service knows (a conflict,
    a state transition) arrives as ApplicationError from save_model. The whole save is
    rolled back and the operator sees the reason, never a 500."""

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return super().changeform_view(request, *args, **kwargs)
        except ApplicationError as exc:
            details = "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in exc.fields.items())
            messages.error(request, f"{exc.message} {details}".strip())
            return HttpResponseRedirect(request.get_full_path())
