from django.apps import AppConfig


class DeclarativeConfig(AppConfig):
    """The business layer as code: dump, diff and sync one YAML file (docs/configuration-as-code.md)."""

    name = "portal.declarative"
    label = "declarative"
