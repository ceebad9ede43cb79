from __future__ import annotations

from argparse import ArgumentParser
from collections.abc import Iterable
from typing import Any, TextIO, cast

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from portal.gateway_state import publish
from portal.gateway_state.sync import KeyRow, state_rebuild, wait_for_redis
from tollway.redis_url import REDIS_UNREACHABLE


class Command(BaseCommand):
    help = "Rebuild the gateway's whole published state in Redis from the database (idempotent)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--wait", action="store_true", help="Wait up to --timeout seconds for Redis first.")
        parser.add_argument("--timeout", type=float, default=30.0)

    def handle(self, *args: Any, wait: bool, timeout: float, **options: Any) -> None:
        client = publish.redis_client()
        try:
            wait_for_redis(client, timeout if wait else 0)
        except REDIS_UNREACHABLE as exc:
            raise CommandError(f"Redis is not reachable: {exc}") from exc

        # The stream self.stderr wraps; django-stubs leave OutputWrapper._out undeclared.
        stderr = cast(TextIO, self.stderr._out)

        def progress(rows: Iterable[KeyRow], total: int) -> Iterable[KeyRow]:
            # tqdm hides itself when stderr is not a terminal (CI, logs).
            return tqdm(rows, total=total, unit="key", desc="keys", disable=None, file=stderr)

        stats = state_rebuild(client=client, progress=progress)
        self.stdout.write(
            f"gateway_sync: {stats.routes} routes, {stats.applications} applications, {stats.keys} keys, "
            f"{stats.tokens} tokens published; {stats.removed} stale entries removed in {stats.seconds:.1f}s"
        )
