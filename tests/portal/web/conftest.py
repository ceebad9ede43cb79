from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _empty_cache(db: object) -> None:
    # Throttle counters and one-time form tokens live in the (Redis) cache: each test
    # starts with none, so one test's logins cannot throttle the next one's.
    from django.core.cache import cache

    cache.clear()
