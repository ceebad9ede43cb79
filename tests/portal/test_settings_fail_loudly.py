"""Settings come from the environment and are checked at start-up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from portal import env

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "PATH": os.environ["PATH"],
    "DEBUG": "0",
    "SECRET_KEY": "k" * 20 + "production-like-secret-0123456789-abcdefghij",
    "ALLOWED_HOSTS": "portal.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://portal.example.com",
    "DATABASE_URL": "sqlite:////tmp/tollway-deploy-check.sqlite3",
}


def _manage(*args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**PRODUCTION_ENV, **(extra_env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_it_passes_the_deploy_check_with_production_settings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_it_refuses_to_start_without_a_secret_key_when_debug_is_off():
    env_without_key = {k: v for k, v in PRODUCTION_ENV.items() if k != "SECRET_KEY"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env_without_key, capture_output=True, text=True,
        timeout=120,
    )

    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_it_reads_a_secret_from_a_file(tmp_path, monkeypatch):
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-a-file\n")
    monkeypatch.setenv("SOME_SECRET_FILE", str(secret_file))

    assert env.env("SOME_SECRET") == "from-a-file"


def test_it_rejects_a_bad_boolean(monkeypatch):
    monkeypatch.setenv("SOME_FLAG", "maybe")

    with pytest.raises(ImproperlyConfigured, match="SOME_FLAG"):
        env.env_bool("SOME_FLAG", False)


def test_it_rejects_a_bad_database_url():
    result = _manage("check", extra_env={"DATABASE_URL": "nosuchdb://x"})

    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr


def test_it_refuses_a_bad_redis_url_naming_the_variable():
    result = _manage("check", extra_env={"REDIS_URL": "redis+sentinel://s1:26379"})

    assert result.returncode != 0
    assert "REDIS_URL=" in result.stderr
    assert "<service>" in result.stderr


def test_a_cluster_needs_a_separate_celery_broker():
    cluster = {"REDIS_URL": "redis+cluster://127.0.0.1:7000"}
    refused = _manage("check", extra_env=cluster)
    assert refused.returncode != 0
    assert "CELERY_BROKER_URL" in refused.stderr

    separate = _manage("check", extra_env={**cluster, "CELERY_BROKER_URL": "redis+sentinel://127.0.0.1:26379/broker/0"})
    assert separate.returncode == 0, separate.stderr
