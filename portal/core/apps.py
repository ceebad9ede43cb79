from django.apps import AppConfig
from django.core import checks


class CoreConfig(AppConfig):
    name = "portal.core"
    label = "core"

    def ready(self) -> None:
        from portal.core.changes import check_every_change_has_a_listener

        checks.register(check_every_change_has_a_listener)
