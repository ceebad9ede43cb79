"""Operators are staff users: they hold every permission on Tollway's own apps, without
per-model permission bookkeeping. Superuser-only areas (auth groups, sessions) stay
governed by Django's normal permissions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import AnonymousUser
from django.db.models import Model
from django.http import HttpRequest

if TYPE_CHECKING:
    from portal.accounts.models import User

OPERATOR_APPS = frozenset(
    {"accounts", "catalog", "plans", "keys", "audit", "analytics", "oauth2_provider", "declarative", "webhooks"}
)


class EmailBackend(ModelBackend):
    """Logs in by email (case-insensitive) and grants operators their apps."""

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> User | None:
        email = kwargs.get("email") or username
        if email is None or password is None:
            return None
        from portal.accounts.models import User

        user = User.objects.filter(email__iexact=email.strip()).first()
        if user is None:
            User().set_password(password)  # same work either way: no timing hint that the email exists
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None

    def has_perm(self, user_obj: User | AnonymousUser, perm: str, obj: Model | None = None) -> bool:
        if user_obj.is_active and user_obj.is_staff and perm.split(".", 1)[0] in OPERATOR_APPS:
            return True
        return super().has_perm(user_obj, perm, obj)

    def has_module_perms(self, user_obj: User | AnonymousUser, app_label: str) -> bool:
        if user_obj.is_active and user_obj.is_staff and app_label in OPERATOR_APPS:
            return True
        return super().has_module_perms(user_obj, app_label)
