"""Portal and database down: the gateway needs neither. It never imports Django and reads
only Redis, so with no portal process and no database it serves as before."""

from __future__ import annotations

import subprocess
import sys

import httpx

from tests.gateway.conftest import ROOT


def test_gateway_never_imports_django():
    code = (
        "import sys, gateway.__main__, gateway.app, gateway.state, gateway.proxy; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'portal', 'rest_framework')))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_it_serves_with_no_portal_and_no_database(start_gateway, world):
    # Nothing but Redis and the upstream is running for this test: no portal, no database URL.
    gateway = start_gateway(DATABASE_URL="postgres://nobody@127.0.0.1:1/none")
    headers = {"X-API-Key": world.alice_key}
    assert httpx.get(f"{gateway.url}/echo/v1/", headers=headers).status_code == 200
    assert httpx.get(f"{gateway.url}/echo/v1/", headers={"X-API-Key": world.charlie_key}).status_code == 401
