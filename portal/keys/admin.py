from __future__ import annotations

from typing import Any

from django.contrib import admin

from portal.core.admin_helpers import run_action
from portal.keys import services
from portal.keys.models import ApiKey, Application


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    fk_name = "application"
    extra = 0
    can_delete = False
    fields = ["prefix", "label", "status", "expires_at", "grace_until", "created_at", "last_used_at"]
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False  # keys are issued to developers, who alone see the secret


@admin.register(Application)
class ApplicationAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "created_at"]
    search_fields = ["name", "organization__name"]
    list_filter = ["organization"]
    fields = ["organization", "name", "description", "oauth_client", "created_by", "created_at"]
    readonly_fields = ["organization", "oauth_client", "created_by", "created_at"]
    inlines = [ApiKeyInline]

    def has_add_permission(self, request: Any) -> bool:
        return False

    def save_model(self, request: Any, obj: Application, form: Any, change: bool) -> None:
        services.application_update(
            application=obj, actor=request.user, **{name: form.cleaned_data[name] for name in form.changed_data}
        )

    def delete_model(self, request: Any, obj: Application) -> None:
        services.application_delete(application=obj, actor=request.user)

    def delete_queryset(self, request: Any, queryset: Any) -> None:
        for application in queryset:
            services.application_delete(application=application, actor=request.user)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["prefix", "label", "application", "status", "expires_at", "grace_until", "created_at",
                    "last_used_at"]
    list_filter = ["status"]
    search_fields = ["prefix", "label", "application__name", "application__organization__name"]
    list_select_related = ["application"]
    fields = ["prefix", "label", "application", "status", "expires_at", "grace_until", "replaced_by",
              "created_by", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = fields
    actions = ["keys_revoke"]

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False  # revoke instead: the gateway must learn the key is dead

    @admin.action(description="Revoke selected keys (irreversible)")
    def keys_revoke(self, request: Any, queryset: Any) -> None:
        run_action(request, queryset, lambda k: services.api_key_revoke(key=k, actor=request.user), "revoked")
