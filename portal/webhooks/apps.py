from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "portal.webhooks"
    label = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        # Connects the outbox writer to portal.core.changes.event_occurred.
        from portal.webhooks import receivers  # noqa: F401
