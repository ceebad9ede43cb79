"""Helpers for the declarative configuration: dump the live state to a file, edit it, load it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from portal.declarative.management.commands.config import config_yaml
from portal.declarative.selectors import config_dump
from portal.declarative.services import Document, config_load
from tests.portal.api.conftest import bearer_for, client_for  # noqa: F401  (fixtures for the REST tests)


def line_of(text: str, needle: str, *, after: str | None = None) -> int:
    """The 1-based line of the first ``needle`` (after the first ``after``, if given)."""
    lines = text.splitlines()
    start = 0
    if after is not None:
        start = next(i for i, line in enumerate(lines) if after in line)
    return next(i for i, line in enumerate(lines) if i >= start and needle in line) + 1


@pytest.fixture
def dumped(tmp_path: Path) -> Callable[..., Path]:
    """Write the live state to tollway.yaml, optionally edited first (a function of the data)."""

    def make(edit: Callable[[dict[str, Any]], None] | None = None) -> Path:
        data = config_dump()
        if edit is not None:
            edit(data)
        path = tmp_path / "tollway.yaml"
        path.write_text(config_yaml(data), encoding="utf-8")
        return path

    return make


@pytest.fixture
def written(tmp_path: Path) -> Callable[[str], Path]:
    def make(text: str) -> Path:
        path = tmp_path / "tollway.yaml"
        path.write_text(text, encoding="utf-8")
        return path

    return make


def load(path: Path) -> Document:
    return config_load(path)


def plan_entry(data: dict[str, Any], api: str, slug: str) -> dict[str, Any]:
    return next(p for p in data["plans"] if p["api"] == api and p["slug"] == slug)


def version_entry(data: dict[str, Any], api: str, label: str) -> dict[str, Any]:
    entry = next(a for a in data["apis"] if a["slug"] == api)
    return next(v for v in entry["versions"] if v["label"] == label)


@pytest.fixture
def token_client() -> Callable[[str], Any]:
    """An APIClient that sends ``Authorization: Bearer <automation token>``."""
    from rest_framework.test import APIClient

    def make(secret: str) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        return client

    return make


def edited_quota_yaml(dumped: Callable[..., Path], quota: int = 2_000_000) -> str:
    return dumped(lambda d: plan_entry(d, "echo", "pro").update(quota_per_month=quota)).read_text()


__all__ = ["edited_quota_yaml", "line_of", "load", "plan_entry", "version_entry", "yaml"]
