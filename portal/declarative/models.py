from __future__ import annotations

from django.conf import settings
from django.db import models


class AppliedConfig(models.Model):
    """One sync of the declarative configuration: what the live state hashed to right after it.
    The dashboard compares the live state's hash with the latest row to show drift."""

    sha256 = models.CharField(max_length=64)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    actor_email = models.CharField(max_length=254, blank=True, help_text="Kept if the user is deleted.")
    source = models.CharField(max_length=300, blank=True, help_text="The file name, or 'request' for the API.")
    changes = models.PositiveIntegerField(default=0)
    applied_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-applied_at", "-id"]

    def __str__(self) -> str:
        return f"{self.sha256[:12]} by {self.actor_email or 'system'} at {self.applied_at:%Y-%m-%d %H:%M}"
