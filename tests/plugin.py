"""pytest plugin (loaded with -p in pyproject.toml) that starts real services
before pytest-django imports the settings, and points the settings at them.

TOLLWAY_TEST_DB=postgres (what CI and `make test` use) starts a throwaway
PostgreSQL cluster; TOLLWAY_TEST_DB=sqlite uses SQLite. A DATABASE_URL or
REDIS_URL already in the environment is respected, so the suite can also run
against servers you started yourself.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.services import PostgresServer, RedisServer

_started: list[Any] = []


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-0123456789abcdef")
    os.environ.setdefault("TOLLWAY_KEY_HASH_SECRET", "test-key-hash-secret-0123456789")
    os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
    os.environ.setdefault("EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")
    if not os.environ.get("REDIS_URL"):
        redis = RedisServer().start()
        _started.append(redis)
        os.environ["REDIS_URL"] = redis.url
    if not os.environ.get("DATABASE_URL"):
        backend = os.environ.get("TOLLWAY_TEST_DB", "sqlite")
        if backend == "postgres":
            pg = PostgresServer().start()
            _started.append(pg)
            os.environ["DATABASE_URL"] = pg.url
        elif backend != "sqlite":
            raise pytest.UsageError(f"TOLLWAY_TEST_DB={backend!r}: use 'postgres' or 'sqlite'")


def pytest_unconfigure(config: pytest.Config) -> None:
    while _started:
        _started.pop().cleanup()


def pytest_report_header(config: pytest.Config) -> str:
    db = os.environ.get("DATABASE_URL", "sqlite (default)")
    engine = "postgresql" if db.startswith("postgres") else "sqlite"
    return f"tollway: database={engine} redis={os.environ.get('REDIS_URL')}"
