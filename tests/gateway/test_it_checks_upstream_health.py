"""A version's upstream_health, over real sockets with two real upstreams: an active check
that fails takes a target out of the rotation (no request reaches it) and passing checks
bring it back; passive ejection after consecutive failures, for a cool-down; per-version
retries (idempotent methods only) and breaker settings; every target out is 503
no-healthy-upstream. Health shows in Prometheus and in the node's Redis hash. With the
policy off nothing changes: no health requests, no gauge, no hash."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from gateway import contract
from gateway.route_policies import ActiveHealthCheck, PassiveEjection, UpstreamHealth, VersionPolicies
from tests.gateway.conftest import ALICE_APP, ECHO_API_ID, grant, wait_until
from tests.services import free_port

NODE = "health-node"


class Upstream:
    """An HTTP upstream in a thread that can be stopped and started on the same port;
    counts the requests it served (health checks apart) and answers ``status`` to them,
    ``health_status`` to GET /health."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.port = free_port()
        self.served = 0
        self.checks = 0
        self.status = 200
        self.health_status = 200
        self.server: ThreadingHTTPServer | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                if self.path == "/health":
                    owner.checks += 1
                    status = owner.health_status
                else:
                    owner.served += 1
                    status = owner.status
                body = json.dumps({"upstream": owner.name}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = _answer

            def log_message(self, *args: object) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@pytest.fixture
def pair():
    a, b = Upstream("a"), Upstream("b")
    yield a, b
    a.stop()
    b.stop()


def health(**kw) -> VersionPolicies:
    return VersionPolicies(upstream_health=UpstreamHealth(**kw))


ACTIVE = ActiveHealthCheck(path="/health", interval_s=0.2, timeout_s=0.5, healthy_threshold=2, unhealthy_threshold=2)


def setup(publish, world, upstreams, version="v1", **kw):
    publish.route(
        "", version=version, upstreams=tuple(contract.Upstream(url=u.url) for u in upstreams), policies=health(**kw)
    )
    publish.application(ALICE_APP, {ECHO_API_ID: grant(8801, rate_per_minute=10_000)})


def calls(gateway, world, n, version="v1", method="GET", **kw):
    with httpx.Client(headers={"X-API-Key": world.alice_key}) as client:
        return [client.request(method, f"{gateway.url}/echo/{version}/anything", **kw) for _ in range(n)]


def node_health(redis_client) -> dict[str, dict]:
    raw = redis_client.hgetall(contract.health_key(NODE))
    return {k.decode(): json.loads(v) for k, v in raw.items()}


def gauge(gateway, target: str) -> str | None:
    text = httpx.get(f"{gateway.url}/_tollway/metrics").text
    for line in text.splitlines():
        if line.startswith("tollway_gateway_upstream_healthy{") and f'target="{target}"' in line:
            return line.rsplit(" ", 1)[1]
    return None


def test_a_target_failing_its_checks_leaves_the_rotation_and_comes_back(
    start_gateway, publish, world, pair, redis_client
):
    a, b = pair
    setup(publish, world, pair, active=ACTIVE)
    gateway = start_gateway(GATEWAY_NODE_ID=NODE)
    assert all(r.status_code == 200 for r in calls(gateway, world, 10))
    assert a.served == 5
    assert b.served == 5
    assert wait_until(lambda: a.checks >= 2 and b.checks >= 2)
    field = f"echo/v1 {a.url}"
    assert wait_until(lambda: node_health(redis_client).get(field, {}).get("healthy") is True)
    assert gauge(gateway, a.url) == "1.0"

    a.health_status = 500
    assert wait_until(lambda: node_health(redis_client)[field]["healthy"] is False, timeout=5)
    assert node_health(redis_client)[field]["reason"] == "health check: status 500"
    assert gauge(gateway, a.url) == "0.0"
    a.served = b.served = 0
    responses = calls(gateway, world, 20)
    assert [r.status_code for r in responses] == [200] * 20
    assert {r.json()["upstream"] for r in responses} == {"b"}
    assert a.served == 0
    assert b.served == 20

    a.health_status = 200
    assert wait_until(lambda: gauge(gateway, a.url) == "1.0", timeout=5)
    a.served = b.served = 0
    calls(gateway, world, 10)
    assert a.served == 5
    assert b.served == 5
    assert wait_until(lambda: node_health(redis_client)[field]["healthy"] is True, timeout=5)


def test_a_stopped_target_fails_its_checks_and_is_back_once_restarted(start_gateway, publish, world, pair):
    a, b = pair
    setup(publish, world, pair, active=ACTIVE)
    gateway = start_gateway(GATEWAY_NODE_ID=NODE)
    a.stop()
    assert wait_until(lambda: gauge(gateway, a.url) == "0.0", timeout=5)
    b.served = 0
    assert [r.status_code for r in calls(gateway, world, 10)] == [200] * 10
    assert b.served == 10
    a.start()
    assert wait_until(lambda: gauge(gateway, a.url) == "1.0", timeout=5)
    calls(gateway, world, 10)
    assert a.served == 5


def test_every_target_unhealthy_is_503_no_healthy_upstream(start_gateway, publish, world, pair):
    a, b = pair
    setup(publish, world, pair, active=ACTIVE)
    gateway = start_gateway(GATEWAY_NODE_ID=NODE)
    a.health_status = b.health_status = 503
    assert wait_until(lambda: gauge(gateway, a.url) == "0.0" and gauge(gateway, b.url) == "0.0", timeout=5)
    a.served = b.served = 0
    r = calls(gateway, world, 1)[0]
    assert r.status_code == 503
    assert r.headers["Content-Type"] == "application/problem+json"
    assert r.json()["type"].endswith("/no-healthy-upstream")
    assert int(r.headers["Retry-After"]) >= 1
    assert a.served == b.served == 0  # not tried anyway
    b.health_status = 200
    assert wait_until(lambda: calls(gateway, world, 1)[0].status_code == 200, timeout=5)


def test_passive_ejection_after_consecutive_failures_for_a_cool_down(start_gateway, publish, world, pair):
    a, b = pair
    setup(publish, world, pair, passive=PassiveEjection(failures=2, eject_s=1.5))
    gateway = start_gateway(GATEWAY_NODE_ID=NODE)
    a.status = 500
    statuses = [r.status_code for r in calls(gateway, world, 4)]
    assert statuses.count(500) == 2
    assert a.served == 2
    ejected_at = time.monotonic()
    a.served = b.served = 0
    assert [r.status_code for r in calls(gateway, world, 10)] == [200] * 10
    assert a.served == 0
    assert b.served == 10
    assert gauge(gateway, a.url) == "0.0"
    a.status = 200
    time.sleep(max(0.0, 1.6 - (time.monotonic() - ejected_at)))
    calls(gateway, world, 10)
    assert a.served == 5  # back after the cool-down, without any active check
    assert a.checks == 0


def test_passive_ejection_counts_refused_connections(start_gateway, publish, world, pair):
    a, _b = pair
    # Retries (GET) go to b, so the client never notices; a is tried only until ejected.
    setup(publish, world, pair, passive=PassiveEjection(failures=1, eject_s=30), breaker_failures=100)
    gateway = start_gateway(GATEWAY_NODE_ID=NODE)
    a.stop()
    assert [r.status_code for r in calls(gateway, world, 10)] == [200] * 10
    assert wait_until(lambda: gauge(gateway, a.url) == "0.0")


def test_per_version_retries_apply_to_idempotent_methods_only(start_gateway, publish, world, pair):
    a, _b = pair
    # A breaker that never opens, so every request meets the dead target in its turn.
    setup(publish, world, pair, version="v1", retries=0, breaker_failures=1000)
    setup(publish, world, pair, version="v2", retries=2, breaker_failures=1000)
    gateway = start_gateway(GATEWAY_RETRIES="1")
    a.stop()
    no_retry = [r.status_code for r in calls(gateway, world, 10, version="v1")]
    assert no_retry.count(502) == 5
    assert no_retry.count(200) == 5
    assert [r.status_code for r in calls(gateway, world, 10, version="v2")] == [200] * 10
    assert [r.status_code for r in calls(gateway, world, 10, version="v2", method="PUT")] == [200] * 10
    posts = [r.status_code for r in calls(gateway, world, 10, version="v2", method="POST", content=b"x")]
    assert posts.count(502) == 5  # never retried, whatever the version says


def test_per_version_breaker_settings(start_gateway, publish, world, pair):
    a, _b = pair
    setup(publish, world, pair, retries=0, breaker_failures=1, breaker_cooldown_s=30)
    gateway = start_gateway()
    a.stop()
    statuses = [r.status_code for r in calls(gateway, world, 10)]
    # One failure opens a's breaker (the global default needs 5): every later call goes to b.
    assert statuses.count(502) == 1
    assert statuses.count(200) == 9


def test_with_the_policy_off_nothing_changes(start_gateway, publish, world, pair, redis_client):
    a, b = pair
    publish.route("", upstreams=(contract.Upstream(url=a.url), contract.Upstream(url=b.url)))
    publish.application(ALICE_APP, {ECHO_API_ID: grant(8801, rate_per_minute=10_000)})
    gateway = start_gateway(GATEWAY_NODE_ID=NODE)
    a.health_status = 500
    assert all(r.status_code == 200 for r in calls(gateway, world, 10))
    time.sleep(0.5)
    assert a.served == 5
    assert b.served == 5
    assert a.checks == 0
    assert b.checks == 0
    assert gauge(gateway, a.url) is None
    assert node_health(redis_client) == {}
    # 5xx answers are relayed and never eject a target.
    a.status = 500
    statuses = [r.status_code for r in calls(gateway, world, 20)]
    assert statuses.count(500) == 10
