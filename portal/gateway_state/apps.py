from django.apps import AppConfig


class GatewayStateConfig(AppConfig):
    name = "portal.gateway_state"
    label = "gateway_state"
    verbose_name = "Gateway state"

    def ready(self) -> None:
        # Connects the outbox writers to portal.core.changes and to OAuth token saves/deletes.
        from portal.gateway_state import receivers  # noqa: F401
