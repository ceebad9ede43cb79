from django.apps import AppConfig


class KeysConfig(AppConfig):
    name = "portal.keys"
    label = "keys"

    def ready(self) -> None:
        from portal.keys import signals  # noqa: F401  (OAuth token publishing)
