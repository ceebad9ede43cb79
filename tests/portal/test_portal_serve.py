"""python -m portal.serve (the Procfile's portal line): its settings follow tollway.env's
rules, and a bad one stops it with exit code 2 naming the variable before anything starts
(bin/respawn then does not restart it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from portal.serve import server_argv

ROOT = Path(__file__).resolve().parents[2]


def test_the_default_is_granian_on_loopback() -> None:
    argv = server_argv({})
    assert argv[1:3] == ["-m", "granian"]
    assert argv[argv.index("--interface") + 1] == "wsgi"
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    assert argv[argv.index("--port") + 1] == "8000"
    assert argv[argv.index("--workers") + 1] == "2"
    assert argv[argv.index("--blocking-threads") + 1] == "4"
    assert argv[-1] == "portal.wsgi:application"


def test_settings_come_from_the_environment() -> None:
    argv = server_argv({"PORTAL_PORT": " 9001 ", "PORTAL_WORKERS": "3", "PORTAL_THREADS": "8", "PORTAL_HOST": "::1"})
    assert argv[argv.index("--port") + 1] == "9001"
    assert argv[argv.index("--workers") + 1] == "3"
    assert argv[argv.index("--blocking-threads") + 1] == "8"
    assert argv[argv.index("--host") + 1] == "::1"


def test_make_dev_gets_the_development_server() -> None:
    assert server_argv({"PORTAL_SERVER": "runserver", "PORTAL_PORT": "8001"})[1:] == [
        "manage.py", "runserver", "127.0.0.1:8001"]


@pytest.mark.parametrize(("name", "value"), [("PORTAL_WORKERS", "0"), ("PORTAL_THREADS", "many"),
                                             ("PORTAL_PORT", "70000"), ("PORTAL_SERVER", "gunicorn")])
def test_a_bad_setting_exits_2_naming_it(name: str, value: str) -> None:
    result = subprocess.run([sys.executable, "-m", "portal.serve"], cwd=ROOT, env={name: value, "PATH": "/usr/bin"},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"portal: configuration error: {name}=" in result.stderr
