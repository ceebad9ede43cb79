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


class AutomationToken(models.Model):
    """A named credential for CI to call the configuration endpoints (/api/v1/config/*).
    The token is shown once; only its display prefix and its HMAC-SHA256 (under
    settings.KEY_HASH_SECRET, like API keys) are stored. It acts with its creator's rights
    while the creator is an active operator; the audit log names it, not the creator."""

    name = models.SlugField(
        max_length=60, unique=True, help_text='e.g. "ci-deploy"; the audit log says automation:NAME.'
    )
    prefix = models.CharField(max_length=16, db_index=True, help_text="The token's first characters, to recognise it.")
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def actor_label(self) -> str:
        return f"automation:{self.name}"
