"""Workers: GATEWAY_WORKERS processes share the port; the master replaces one that dies,
and a graceful stop takes every worker down with it."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx

from tests.gateway.conftest import fire


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def test_a_killed_worker_is_replaced(start_gateway, world):
    gateway = start_gateway(workers=2)
    before = children(gateway.proc.pid)
    assert len(before) == 2

    os.kill(before[0], signal.SIGKILL)
    deadline = time.monotonic() + 10
    after = children(gateway.proc.pid)
    while (len(after) != 2 or before[0] in after) and time.monotonic() < deadline:
        time.sleep(0.1)
        after = children(gateway.proc.pid)
    assert len(after) == 2
    assert before[0] not in after
    gateway.wait_ready()
    statuses = {s for s, _, _ in fire([("GET", f"{gateway.url}/echo/v1/", {"X-API-Key": world.alice_key})] * 20)}
    assert statuses == {200}


def test_sigterm_stops_master_and_workers(start_gateway, world):
    gateway = start_gateway(workers=2)
    workers = children(gateway.proc.pid)
    assert httpx.get(f"{gateway.url}/_tollway/health").status_code == 200
    gateway.proc.send_signal(signal.SIGTERM)
    assert gateway.proc.wait(timeout=15) == 0
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
