"""Helpers for the REST API tests: clients signed in as the cast, and bearer tokens."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient

from tests.conftest import PASSWORD

PASSWORD_FOR_LOGIN = PASSWORD


@pytest.fixture(autouse=True)
def _empty_throttle_cache(db: Any) -> Iterator[None]:
    # Throttle counters live in the shared Redis cache, keyed by user id; ids are
    # reused across tests, so a test must not inherit another test's counts.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def client_for() -> Callable[[Any], APIClient]:
    """An APIClient with a session for the given user (None: anonymous)."""

    def make(user: Any) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_login(user)
        return client

    return make


@pytest.fixture
def bearer_for(db: Any) -> Callable[..., APIClient]:
    """An APIClient that sends an OAuth2 access token of the user with the given scopes."""
    from oauth2_provider.models import AccessToken

    def make(user: Any, scope: str = "read write") -> APIClient:
        raw = secrets.token_urlsafe(30)
        AccessToken.objects.create(user=user, token=raw, scope=scope, expires=timezone.now() + dt.timedelta(hours=1))
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        return client

    return make


def assert_error_shape(response: Any, status: int) -> dict[str, Any]:
    """Every error: the given 4xx status, JSON, and {"error": {"type", "message", ["fields"]}}."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert isinstance(error["type"], str)
    assert error["type"]
    assert isinstance(error["message"], str)
    assert error["message"]
    assert set(error) <= {"type", "message", "fields"}
    if "fields" in error:
        assert isinstance(error["fields"], dict)
    return error
