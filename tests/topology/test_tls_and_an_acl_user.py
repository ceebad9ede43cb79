"""Redis over TLS, with a CA the test generates and an ACL user (no default user): the
gateway's smoke path works (key auth, a revoked key refused, a revocation within 1 s),
the portal's client publishes; and a wrong CA stops the gateway at start-up with exit
code 2 and a message naming REDIS_TLS_CA_FILE, instead of a crash loop."""

from __future__ import annotations

import time

import pytest

from tests.gateway.conftest import ALICE_APP, CHARLIE_APP, ECHO_API_ID, SECRET, Echo, Publisher, fire, grant
from tests.topology.servers import TlsRedisServer
from tollway.redis_url import parse_redis_url, sync_client

pytestmark = pytest.mark.slow


def statuses(url: str, key: str, n: int = 8) -> set[int]:
    return {status for status, _, _ in fire([("GET", url, {"X-API-Key": key})] * n)}


def test_the_smoke_path_over_tls_with_an_acl_user(tls_redis: TlsRedisServer, echo_upstream: Echo, gateways) -> None:
    tls = {"REDIS_TLS_CA_FILE": str(tls_redis.certs["ca"])}
    client = sync_client(parse_redis_url(tls_redis.url, env=tls), socket_timeout=2, socket_connect_timeout=2)
    client.flushall()
    publish = Publisher(client)
    publish.route(echo_upstream.url)
    publish.application(ALICE_APP, {ECHO_API_ID: grant(8001)}, name="alice-app")
    publish.application(CHARLIE_APP, {ECHO_API_ID: grant(8003)}, name="charlie-app")
    alice = publish.key(ALICE_APP, key_id=1)
    charlie = publish.key(CHARLIE_APP, key_id=3, status="revoked")

    gateway = gateways(tls_redis.url, "tls", GATEWAY_KEY_HASH_SECRET=SECRET, **tls)
    url = f"{gateway.url}/echo/v1/anything"
    assert statuses(url, alice) == {200}
    assert statuses(url, charlie) == {401}

    publish.revoke(alice, ALICE_APP)
    revoked_at = time.monotonic()
    while statuses(url, alice) != {401}:
        assert time.monotonic() - revoked_at <= 1.0, "the revocation took more than 1 s"
        time.sleep(0.02)
    client.close()


def test_a_wrong_ca_stops_the_gateway_with_exit_code_2(tls_redis: TlsRedisServer, gateways) -> None:
    gateway = gateways(
        tls_redis.url, "wrong-ca", wait="no", GATEWAY_KEY_HASH_SECRET=SECRET,
        REDIS_TLS_CA_FILE=str(tls_redis.certs["wrong_ca"]),
    )
    assert gateway.proc is not None
    assert gateway.proc.wait(timeout=30) == 2
    output = gateway.log()
    assert "REDIS_TLS_CA_FILE" in output
    assert "does not verify" in output
    assert tls_redis.password not in output


def test_an_unreadable_ca_file_is_refused_naming_the_variable(tls_redis: TlsRedisServer, gateways, tmp_path) -> None:
    bogus = tmp_path / "not-a-ca.pem"
    bogus.write_text("not a certificate\n")
    gateway = gateways(tls_redis.url, "bad-ca", wait="no", GATEWAY_KEY_HASH_SECRET=SECRET, REDIS_TLS_CA_FILE=str(bogus))
    assert gateway.proc is not None
    assert gateway.proc.wait(timeout=30) == 2
    assert "REDIS_TLS_CA_FILE" in gateway.log()


def test_ready_says_when_redis_answers_but_the_state_cannot_be_read(tls_redis: TlsRedisServer, echo_upstream: Echo,
                                                                      gateways) -> None:
    import httpx

    tls = {"REDIS_TLS_CA_FILE": str(tls_redis.certs["ca"])}
    client = sync_client(parse_redis_url(tls_redis.url, env=tls), socket_timeout=2, socket_connect_timeout=2)
    Publisher(client).route(echo_upstream.url)
    gateway = gateways(tls_redis.url, "unreadable", workers=1, GATEWAY_KEY_HASH_SECRET=SECRET, **tls)
    ready = f"{gateway.url}/_tollway/ready"
    assert httpx.get(ready).status_code == 200
    try:
        # The socket stays up and PING works, but reading the state is refused (NOPERM).
        client.execute_command("ACL", "SETUSER", tls_redis.username, "-get", "-hgetall")
        deadline = time.monotonic() + 3
        while httpx.get(ready).status_code == 200:
            assert time.monotonic() < deadline, "/ready stayed 200 while the state could not be read"
            time.sleep(0.05)
        response = httpx.get(ready)
        assert response.status_code == 503
        assert response.json()["type"].endswith("state-unreadable")
    finally:
        client.execute_command("ACL", "SETUSER", tls_redis.username, "+get", "+hgetall")
    deadline = time.monotonic() + 3
    while httpx.get(ready).status_code != 200:
        assert time.monotonic() < deadline, "/ready did not come back once the state was readable again"
        time.sleep(0.05)
    client.close()
