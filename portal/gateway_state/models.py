from __future__ import annotations

from django.db import models


class PublishOutbox(models.Model):
    """Transactional outbox for gateway state: a row is written in the same
    transaction as the change, so a crash or a Redis outage between commit and
    publish cannot lose the update. Flushed after commit and by a beat task."""

    kind = models.CharField(max_length=10)  # route | app | key | token | untoken
    ref = models.CharField(max_length=80)  # version id, application id, key hash, access token id, token hash
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        # The model moved here from the keys app; its table (and any pending rows) did not.
        db_table = "keys_publishoutbox"

    def __str__(self) -> str:
        return f"{self.kind} {self.ref}"
