"""Fixtures for the security tests. The gateway's (its own Redis, the echo upstream,
``python -m gateway`` processes) are borrowed from tests/gateway/conftest.py under
names that do not shadow the portal's ``redis_client``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.gateway import conftest as gateway_fixtures
from tests.gateway.conftest import ALICE_APP, CHARLIE_APP, ECHO_API_ID, Echo, Publisher, World, grant
from tests.services import RedisServer

# The gateway tests' fixtures, by name.
gw_redis = gateway_fixtures.gw_redis
echo = gateway_fixtures.echo
upstream = gateway_fixtures.upstream
start_gateway = gateway_fixtures.start_gateway


@pytest.fixture
def gw_publish(gw_redis: RedisServer) -> Iterator[Publisher]:
    """Publishes contract records into the gateway tests' Redis, emptied first."""
    client = redis.Redis.from_url(gw_redis.url)
    client.flushall()
    yield Publisher(client)
    client.close()


@pytest.fixture
def gw_world(gw_publish: Publisher, upstream: Echo) -> World:
    """alice may call echo v1; charlie's key is revoked."""
    route = gw_publish.route(upstream.url)
    gw_publish.application(ALICE_APP, {ECHO_API_ID: grant(1001)}, name="alice-app")
    gw_publish.application(CHARLIE_APP, {ECHO_API_ID: grant(1003)}, name="charlie-app")
    alice = gw_publish.key(ALICE_APP, key_id=1)
    charlie = gw_publish.key(CHARLIE_APP, key_id=3, status="revoked")
    return World(alice_key=alice, bob_key="", charlie_key=charlie, route=route)


@pytest.fixture
def empty_cache(db: object) -> Iterator[None]:
    """Throttle counters and one-time form tokens live in the shared Redis cache."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def throttle_rates(settings: object) -> object:
    """Set REST_FRAMEWORK's throttle rates for one test: throttle_rates(key_create="3/hour")."""

    def set_rates(**rates: str) -> None:
        rest = settings.REST_FRAMEWORK  # type: ignore[attr-defined]
        settings.REST_FRAMEWORK = {  # type: ignore[attr-defined]
            **rest, "DEFAULT_THROTTLE_RATES": {**rest["DEFAULT_THROTTLE_RATES"], **rates}
        }

    return set_rates


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: object) -> None:
    # PBKDF2's slowness is the point in production and most of these tests' set-up time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # type: ignore[attr-defined]
