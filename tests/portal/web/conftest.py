from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _empty_cache(db: object) -> None:
    # Throttle counters and one-time form tokens live in the (Redis) cache: each test
    # starts with none, so one test's logins cannot throttle the next one's.
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    # PBKDF2's deliberate slowness is the point in production and most of the run time
    # here, where every test creates several users. These tests are about pages.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
