from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Installed for its ``seed_demo`` management command; it has no models."""

    name = "portal.demo"
    label = "demo"
