from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from oauth2_provider.models import get_application_admin_class, get_application_model

from portal.core.admin_helpers import admin_user, run_action
from portal.keys import services
from portal.keys.models import ApiKey, Application, OAuthClient

# django-oauth-toolkit registers its client model as plain "Applications"; show it as what
# it is, the OAuth client of a developer application, beside them (same admin class).
admin.site.unregister(get_application_model())
admin.site.register(OAuthClient, get_application_admin_class())

# Shown, never edited: a key changes only through the services (issue, rotate, revoke).
# Tuples: the admin's fields and readonly_fields are typed differently, and both accept one.
INLINE_KEY_FIELDS = ("prefix", "label", "status", "expires_at", "grace_until", "created_at", "last_used_at")
KEY_FIELDS = ("prefix", "label", "application", "status", "expires_at", "grace_until", "replaced_by",
              "created_by", "created_at", "last_used_at", "revoked_at")


class ApiKeyInline(admin.TabularInline[ApiKey, Application]):
    model = ApiKey
    fk_name = "application"
    extra = 0
    can_delete = False
    fields = INLINE_KEY_FIELDS
    readonly_fields = INLINE_KEY_FIELDS
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Application | None = None) -> bool:
        return False  # keys are issued to developers, who alone see the secret


@admin.register(Application)
class ApplicationAdmin(admin.ModelAdmin[Application]):
    list_display = ["name", "organization", "created_at"]
    search_fields = ["name", "organization__name"]
    list_filter = ["organization"]
    fields = ["organization", "name", "description", "ip_rules", "oauth_client", "created_by", "created_at"]
    readonly_fields = ["organization", "oauth_client", "created_by", "created_at"]
    inlines = [ApiKeyInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def save_model(
        self, request: HttpRequest, obj: Application, form: ModelForm[Application], change: bool
    ) -> None:
        services.application_update(
            application=obj, actor=admin_user(request), **{name: form.cleaned_data[name] for name in form.changed_data}
        )

    def delete_model(self, request: HttpRequest, obj: Application) -> None:
        services.application_delete(application=obj, actor=admin_user(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Application]) -> None:
        for application in queryset:
            services.application_delete(application=application, actor=admin_user(request))


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin[ApiKey]):
    list_display = ["prefix", "label", "application", "status", "expires_at", "grace_until", "created_at",
                    "last_used_at"]
    list_filter = ["status"]
    search_fields = ["prefix", "label", "application__name", "application__organization__name"]
    list_select_related = ["application"]
    fields = KEY_FIELDS
    readonly_fields = KEY_FIELDS
    actions = ["keys_revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ApiKey | None = None) -> bool:
        return False  # revoke instead: the gateway must learn the key is dead

    @admin.action(description="Revoke selected keys (irreversible)")
    def keys_revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        run_action(request, queryset, lambda k: services.api_key_revoke(key=k, actor=admin_user(request)), "revoked")
