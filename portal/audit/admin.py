from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from portal.audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin[AuditEvent]):
    """Read-only: the audit log is append-only."""

    list_display = ["created_at", "actor_email", "action", "object_type", "object_repr", "organization"]
    list_filter = ["action", "object_type", "created_at"]
    search_fields = ["actor_email", "object_repr", "object_id", "action"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in AuditEvent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False
