"""Fresh machine: `make run` serves the portal behind the production server, DEBUG off.

The portal is started exactly as `make run` starts it: the environment is the one the
Makefile gives its processes (`make run-env`: DEBUG off, ALLOWED_HOSTS, plain-http
cookie settings...), the preparation is the Makefile's (migrate, seed_demo,
collectstatic), and the command is the Procfile's ``portal`` line, run by a shell as
honcho runs it. Only what must not touch this checkout or the suite's services is
redirected: a fresh SQLite file, a Redis of its own, STATIC_ROOT and the secret key file
in the test's directory, a free port on 127.0.0.1.

Then: the marketplace answers 200; a bad URL (/apis/echo/v9/) gets the styled 404 page
with no URL list and no traceback; hashed static files are served (whitenoise) with
far-future caching, and so is the stylesheet of the request-free 500 page; a killed
server is restarted by bin/respawn; SIGTERM to the group (what honcho sends on Ctrl-C)
stops everything within a bound. About 20 s on a quiet machine, most of it migrate and
collectstatic.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import ROOT, wait_for
from tests.services import RedisServer, free_port

# What a page must never show with DEBUG off.
LEAKS = ("Using the URLconf", "Traceback", "DEBUG = True", "technical", "portal.urls", "settings.py")


def make_run_env(tmp: Path, port: int, redis_url: str) -> dict[str, str]:
    """`make run`'s environment, starting from what a developer's shell would have."""
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "CSRF_", "SESSION_", "SECURE_",
                                 "PORTAL_", "TOLLWAY_", "DATABASE_URL", "STATIC_ROOT", "PYTEST", "DJANGO_"))}
    key_file = tmp / "secret_key"
    key_file.write_text(secrets.token_urlsafe(50))
    base.update(PORTAL_PORT=str(port), SECRET_KEY_FILE=str(key_file))
    out = subprocess.run(["make", "-s", "--no-print-directory", "run-env"], cwd=ROOT, env=base, check=True,
                         capture_output=True, text=True, timeout=30).stdout
    env: dict[str, str] = json.loads(out)
    env.update(
        DATABASE_URL=f"sqlite:///{tmp / 'tollway.sqlite3'}",
        REDIS_URL=redis_url,
        STATIC_ROOT=str(tmp / "staticfiles"),
        TOLLWAY_DEMO_PASSWORD=secrets.token_urlsafe(16),  # else seed_demo keeps one in this checkout's var/
        # honcho runs the Procfile with the virtualenv first on PATH (the Makefile's `run`)
        PATH=f"{Path(sys.executable).parent}:{env['PATH']}",
        PYTHONUNBUFFERED="1",
    )
    return env


def procfile_line(name: str) -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {name} line in the Procfile")


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@dataclass
class Portal:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-5000:]

    def server_pid(self) -> int:
        """The wrapper's child: the production server's master process."""
        found = children(self.proc.pid)
        assert len(found) == 1, f"bin/respawn should have one child, has {found}\n{self.output()}"
        return found[0]


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    """One portal for the module (preparing it is most of the time); the test that
    kills and stops it comes last."""
    tmp_path = tmp_path_factory.mktemp("make-run")
    redis = RedisServer(appendonly=False).start()
    port = free_port()
    env = make_run_env(tmp_path, port, redis.url)
    assert env["DEBUG"] == "0"
    py = sys.executable
    for step in (["migrate", "--noinput"], ["seed_demo"], ["collectstatic", "--noinput", "-v", "0"]):
        subprocess.run([py, "manage.py", *step], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL,
                       timeout=180)
    log = tmp_path / "portal.log"
    # As honcho runs a Procfile line: a shell, in a session of its own.
    proc = subprocess.Popen(["/bin/sh", "-c", procfile_line("portal")], cwd=ROOT, env=env,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
    portal = Portal(proc=proc, url=f"http://127.0.0.1:{port}", log=log)
    try:
        wait_for(lambda: _answers(portal.url), timeout=60, interval=0.2,
                 message=lambda: f"the portal never answered:\n{portal.output()}")
        yield portal
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        for pid in children(proc.pid):
            os.killpg(pid, signal.SIGKILL)
        redis.cleanup()


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def test_make_run_serves_the_portal_behind_the_production_server(portal: Portal) -> None:
    server = portal.server_pid()
    assert "granian" in cmdline(server), cmdline(server)
    assert "--interface wsgi" in cmdline(server)

    home = httpx.get(f"{portal.url}/", timeout=10)
    assert home.status_code == 200
    assert 'class="site-header"' in home.text
    assert "Echo" in home.text
    assert "default-src 'self'" in home.headers["content-security-policy"]
    assert httpx.get(f"{portal.url}/apis/echo/v2/", timeout=10).status_code == 200

    # A bad URL: the portal's own 404 page, DEBUG off, nothing of the site's insides.
    for path in ("/apis/echo/v9/", "/no-such-page/"):
        missing = httpx.get(f"{portal.url}{path}", timeout=10)
        assert missing.status_code == 404, path
        assert "Page not found" in missing.text, missing.text[:2000]
        assert 'class="site-header"' in missing.text
        assert "portal/portal." in missing.text  # the portal's stylesheet: its look
        for leak in LEAKS:
            assert leak not in missing.text, f"{leak!r} in the 404 page of {path}"

    # Static files from whitenoise: the hashed stylesheet the pages link, cached for good.
    css = re.search(r'href="(/static/portal/portal\.[0-9a-f]{12}\.css)"', home.text)
    assert css, "pages should link the hashed (collected) stylesheet"
    sheet = httpx.get(f"{portal.url}{css.group(1)}", timeout=10)
    assert sheet.status_code == 200
    assert sheet.headers["content-type"].startswith("text/css")
    assert "immutable" in sheet.headers.get("cache-control", "")
    # 500.html is rendered without a request or context (so it cannot fail): its plain link works too.
    plain = re.search(r'href="(/static/[^"]+\.css)"', (ROOT / "templates" / "500.html").read_text())
    assert plain
    assert httpx.get(f"{portal.url}{plain.group(1)}", timeout=10).status_code == 200


def test_the_server_is_restarted_when_it_dies_and_stops_on_sigterm(portal: Portal) -> None:
    first = portal.server_pid()

    os.kill(first, signal.SIGKILL)

    # bin/respawn starts it again after 1 s; granian and Django need a few seconds more.
    wait_for(lambda: children(portal.proc.pid) and children(portal.proc.pid)[0] != first, timeout=10,
             message=lambda: f"not restarted:\n{portal.output()}")
    wait_for(lambda: _answers(portal.url), timeout=60, interval=0.2,
             message=lambda: f"the restarted portal never answered:\n{portal.output()}")
    assert "killed by SIGKILL; restarting in 1 s" in portal.output()
    second = portal.server_pid()
    workers = children(second)
    assert workers, "granian's workers"

    # What honcho does on Ctrl-C: SIGTERM to the line's process group.
    began = time.monotonic()
    os.killpg(portal.proc.pid, signal.SIGTERM)
    portal.proc.wait(timeout=10)
    assert time.monotonic() - began < 6
    for pid in (second, *workers):
        wait_for(lambda pid=pid: not cmdline(pid), timeout=3, message=f"{pid} ({cmdline(pid)}) left running")
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{portal.url}/healthz", timeout=2)
