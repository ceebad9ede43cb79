"""Shared fixtures. The cast: alice and bob are members of Acme; charlie belongs to
Globex and must be denied everything of Acme's; olivia is an operator (staff)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import redis

PASSWORD = "correct-horse-battery-staple-42"


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    """The suite's real Redis, emptied before each test that asks for it."""
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(autouse=True)
def _fresh_publisher_client() -> Iterator[None]:
    # The publisher caches its client; a test that restarts Redis must not inherit a dead one.
    from portal.gateway_state import publish

    publish.redis_client.cache_clear()
    yield
    publish.redis_client.cache_clear()


def _user(email: str, *, staff: bool = False) -> Any:
    from portal.accounts.models import User

    return User.objects.create_user(email=email, password=PASSWORD, is_staff=staff, email_verified=True)


@pytest.fixture
def acme(db: Any) -> Any:
    from portal.accounts.models import Organization

    return Organization.objects.create(name="Acme", slug="acme")


@pytest.fixture
def globex(db: Any) -> Any:
    from portal.accounts.models import Organization

    return Organization.objects.create(name="Globex", slug="globex")


@pytest.fixture
def alice(acme: Any) -> Any:
    from portal.accounts.models import Membership, Role

    user = _user("alice@acme.test")
    Membership.objects.create(organization=acme, user=user, role=Role.OWNER)
    return user


@pytest.fixture
def bob(acme: Any) -> Any:
    from portal.accounts.models import Membership, Role

    user = _user("bob@acme.test")
    Membership.objects.create(organization=acme, user=user, role=Role.MEMBER)
    return user


@pytest.fixture
def charlie(globex: Any) -> Any:
    from portal.accounts.models import Membership, Role

    user = _user("charlie@globex.test")
    Membership.objects.create(organization=globex, user=user, role=Role.OWNER)
    return user


@pytest.fixture
def olivia(db: Any) -> Any:
    """An operator."""
    return _user("olivia@tollway.test", staff=True)


@pytest.fixture
def echo_api(olivia: Any) -> Any:
    """The Echo API: v1 deprecated (successor v2), v2 published; plans Free and Pro (needs approval)."""
    from portal.catalog import services as catalog
    from portal.plans import services as plans

    api = catalog.api_create(actor=olivia, slug="echo", name="Echo", summary="Echoes requests", tags=["demo"])
    upstreams = [{"url": "http://127.0.0.1:8090", "weight": 1}]
    v1 = catalog.version_create(api=api, label="v1", upstreams=upstreams, actor=olivia)
    v2 = catalog.version_create(api=api, label="v2", upstreams=upstreams, actor=olivia)
    catalog.version_transition(version=v1, to_state="published", actor=olivia)
    catalog.version_transition(version=v2, to_state="published", actor=olivia)
    catalog.version_transition(version=v1, to_state="deprecated", actor=olivia, successor=v2)
    plans.plan_create(
        actor=olivia, api=api, slug="free", name="Free", rate_per_second=5, rate_per_minute=60, quota_per_day=1000
    )
    plans.plan_create(
        actor=olivia,
        api=api,
        slug="pro",
        name="Pro",
        rate_per_second=50,
        quota_per_month=1_000_000,
        monthly_price=Decimal("49.00"),
        included_requests=100_000,
        overage_price_per_1000=Decimal("0.50"),
        requires_approval=True,
    )
    return api


@pytest.fixture
def free_plan(echo_api: Any) -> Any:
    return echo_api.plans.get(slug="free")


@pytest.fixture
def pro_plan(echo_api: Any) -> Any:
    return echo_api.plans.get(slug="pro")


@pytest.fixture
def alice_app(alice: Any, acme: Any) -> Any:
    from portal.keys import services as keys

    return keys.application_create(organization=acme, name="Acme Shop", actor=alice)


@pytest.fixture
def charlie_app(charlie: Any, globex: Any) -> Any:
    from portal.keys import services as keys

    return keys.application_create(organization=globex, name="Globex Tool", actor=charlie)
