from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from portal.demo.seed import seed_demo


class Command(BaseCommand):
    help = "Create or refresh the demo content (idempotent) and print the demo logins and a new demo key."

    def handle(self, *args: Any, **options: Any) -> None:
        result = seed_demo()
        # The key is printed to the operator's terminal once and never logged or stored.
        self.stdout.write(f"Demo operator: {result.operator_email} / {result.password}")
        self.stdout.write(f"Demo developer: {result.developer_email} / {result.password}")
        self.stdout.write(f"Demo API key: {result.api_key}")
