"""Portal and database down for a while: the gateway keeps serving with no added
errors, revoked keys stay revoked, and a gateway restarted during the outage comes
up by itself: from Redis while Redis is up, and from its on-disk snapshot when Redis
is gone too. When everything is back, every served request is billed.

Bounds: 40 good and 10 revoked-key calls as a baseline; then the portal
(``manage.py runserver``: one process, so one SIGKILL takes it all) is SIGKILLed and PostgreSQL is stopped
for the rest of the outage (about 15-25 s here): 40 + 10 calls, a gateway restart
and 20 + 10 calls; then Redis is SIGKILLed as well, the gateway restarted again
(from its snapshot) and 20 + 10 calls. "No added errors" means the outage answers
are exactly the baseline's: 200 for the good key, 401 for the revoked one. Lost = a
request the upstream served that is not billed after recovery (allowed: none;
the calls served while Redis was down are metered through the spill file).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.db import connections

from tests.e2e.conftest import (
    ROOT,
    Stack,
    billed_requests,
    database_url,
    publish_cast,
    requires_postgres,
    wait_drained,
    wait_for,
)
from tests.services import PostgresServer, _require, free_port, wait_for_port

pytestmark = [requires_postgres, pytest.mark.slow]


def _suite_postgres() -> PostgresServer:
    from tests import plugin

    for server in plugin._started:
        if isinstance(server, PostgresServer):
            return server
    pytest.skip("DATABASE_URL points at a PostgreSQL this suite did not start; it will not stop someone else's")


def _pg_ctl(pg: PostgresServer, *args: str) -> None:
    pg._run([_require("pg_ctl", "postgresql"), "-D", str(pg.workdir / "data"), *args])


def _pg_start(pg: PostgresServer) -> None:
    # The options tests/services.py starts it with: same port, same socket directory.
    options = (f"-c listen_addresses=127.0.0.1 -c port={pg.port} -c unix_socket_directories={pg.workdir} "
               "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
    _pg_ctl(pg, "-o", options, "-l", str(pg.workdir / "log"), "-w", "start")


def _start_portal(stack: Stack, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": database_url(), "REDIS_URL": stack.redis.url, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT, env=env, stdout=(stack.tmp / "portal.log").open("ab"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    wait_for_port(port, timeout=30)
    return proc


def _answers(stack: Stack, good: str, revoked: str, n_good: int, n_revoked: int) -> tuple[list[int], list[int]]:
    # A new connection per call, so both workers answer.
    return [stack.call(good).status_code for _ in range(n_good)], [stack.call(revoked).status_code
                                                                   for _ in range(n_revoked)]


def _snapshot_loads(url: str) -> float:
    text = httpx.get(f"{url}/_tollway/metrics").text
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith("tollway_gateway_snapshot_loads_total"))


def test_gateway_serves_through_a_portal_and_database_outage(make_stack: Any) -> None:
    from portal.keys import services as keys

    pg = _suite_postgres()
    stack: Stack = make_stack()
    cast = publish_cast(stack, redis_failure_mode="fail_open")
    old = keys.api_key_issue(application=cast.app, label="old", actor=cast.alice)
    keys.api_key_revoke(key=old.key, actor=cast.alice)
    portal_port = free_port()
    portal = _start_portal(stack, portal_port)
    try:
        wait_for(lambda: httpx.get(f"http://127.0.0.1:{portal_port}/healthz").status_code == 200, timeout=30,
                 message="portal never answered")
        gateway = stack.start_gateway()
        wait_for(lambda: stack.call(cast.key).status_code == 200, timeout=5, message="key never reached the gateway")
        baseline = _answers(stack, cast.key, old.secret, 40, 10)
        assert baseline == ([200] * 40, [401] * 10)

        # The outage: the portal is killed, the database stopped.
        portal.kill()
        portal.wait(timeout=10)
        connections.close_all()
        _pg_ctl(pg, "-m", "fast", "-w", "stop")
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{portal_port}/healthz", timeout=2)
        assert _answers(stack, cast.key, old.secret, 40, 10) == baseline

        # A gateway restarted now comes up (from Redis) and judges keys the same way.
        port = gateway.port
        gateway.stop()
        stack.gateways.remove(gateway)
        gateway = stack.start_gateway(port=port)
        assert _answers(stack, cast.key, old.secret, 20, 10) == ([200] * 20, [401] * 10)
        time.sleep(0.6)  # worker 0 rewrites its snapshot every 0.2 s when its cache changed

        # Redis goes too; a gateway restarted now has only its snapshot.
        stack.redis.kill()
        gateway.stop()
        stack.gateways.remove(gateway)
        gateway = stack.start_gateway(port=port)
        assert _snapshot_loads(gateway.url) >= 1
        assert _answers(stack, cast.key, old.secret, 20, 10) == ([200] * 20, [401] * 10)
    finally:
        if portal.poll() is None:
            portal.kill()
            portal.wait(timeout=10)
        if stack.redis.proc is None or stack.redis.proc.poll() is not None:
            stack.restart_redis()
        if not Path(pg.workdir / "data" / "postmaster.pid").exists():
            _pg_start(pg)

    # Recovery: Redis and the database back, the portal too; nothing served goes unbilled.
    portal = _start_portal(stack, portal_port)
    try:
        wait_for(lambda: httpx.get(f"http://127.0.0.1:{portal_port}/healthz").status_code == 200, timeout=30,
                 message="portal never came back")
        wait_drained(stack, timeout=90)
        served = stack.echo.served()
        assert served == 1 + 40 + 40 + 20 + 20
        assert billed_requests(cast.acme.pk) == served
    finally:
        portal.kill()
        portal.wait(timeout=10)
