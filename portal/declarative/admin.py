from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from portal.core.admin_helpers import admin_user, run_action
from portal.declarative import services
from portal.declarative.models import AutomationToken

# Shown, never edited: the secret exists only in the output of `manage.py config token create`.
TOKEN_FIELDS = ("name", "prefix", "created_by", "created_at", "last_used_at", "revoked_at")


@admin.register(AutomationToken)
class AutomationTokenAdmin(admin.ModelAdmin[AutomationToken]):
    list_display = list(TOKEN_FIELDS)
    search_fields = ["name", "prefix"]
    list_select_related = ["created_by"]
    fields = TOKEN_FIELDS
    readonly_fields = TOKEN_FIELDS
    actions = ["tokens_revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # created with `manage.py config token create`, which shows the token once

    def has_delete_permission(self, request: HttpRequest, obj: AutomationToken | None = None) -> bool:
        return False  # revoke instead: the audit log keeps naming the token

    @admin.action(description="Revoke selected automation tokens (irreversible)")
    def tokens_revoke(self, request: HttpRequest, queryset: QuerySet[AutomationToken]) -> None:
        run_action(
            request,
            queryset,
            lambda t: services.automation_token_revoke(token=t, actor=admin_user(request)),
            "revoked",
        )
