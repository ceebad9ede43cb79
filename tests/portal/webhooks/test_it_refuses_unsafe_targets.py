"""Outbound safety (portal/webhooks/outbound.py), one test per rule. The listener is real
and on 127.0.0.1; a rule holds when it receives nothing. Name resolution is the one seam:
a resolver function stands in for DNS answers no test machine can produce."""

from __future__ import annotations

import time

import pytest

from portal.core.errors import ApplicationError
from portal.webhooks import outbound
from portal.webhooks import services as webhooks
from portal.webhooks.models import WebhookDelivery
from tests.portal.webhooks.conftest import Reply

PRODUCTION = outbound.OutboundPolicy(allow_http=False, allowed_networks=(), timeout=2.0)
LOOPBACK_ALLOWED = outbound.OutboundPolicy(
    allow_http=True, allowed_networks=outbound.OutboundPolicy.from_settings().allowed_networks, timeout=2.0
)
NO_PRIVATE = outbound.OutboundPolicy(allow_http=True, allowed_networks=(), timeout=2.0)


def _post(url, policy, **kwargs):
    return outbound.post(url, body=b"{}", headers={}, policy=policy, **kwargs)


def test_it_allows_only_https_in_production(listener):
    with pytest.raises(outbound.TargetRefused, match="https"):
        _post("http://hooks.example.com/x", PRODUCTION)
    with pytest.raises(outbound.TargetRefused, match="https"):
        _post("ftp://hooks.example.com/x", PRODUCTION)
    assert _post(listener.url(), LOOPBACK_ALLOWED).status_code == 200  # development and tests: http to loopback


@pytest.mark.django_db
def test_the_service_refuses_an_http_url_when_http_is_off(settings, alice, acme):
    settings.WEBHOOK_ALLOW_HTTP = False
    with pytest.raises(ApplicationError) as refused:
        webhooks.webhook_endpoint_create(
            organization=acme, url="http://hooks.example.com/", event_types=["key.revoked"], actor=alice
        )
    assert refused.value.fields == {"url": ["The URL must use https."]}


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.1", "172.16.5.4", "192.168.1.1",  # private
        "127.0.0.1", "[::1]",  # loopback
        "169.254.169.254", "[fe80::1]",  # link-local (cloud metadata lives here)
        "0.0.0.0", "100.64.0.1", "224.0.0.1", "240.0.0.1",  # unspecified, shared, multicast, reserved
        "[::ffff:127.0.0.1]", "[fd00::1]",  # IPv4-mapped loopback, unique-local
    ],
)
def test_it_refuses_a_literal_non_public_address(address):
    with pytest.raises(outbound.TargetRefused, match="not a public address"):
        _post(f"http://{address}:9/x", NO_PRIVATE)


def test_it_refuses_localhost_by_name():
    with pytest.raises(outbound.TargetRefused, match="not a public address"):
        _post("http://localhost:9/x", NO_PRIVATE)


def test_it_refuses_credentials_in_the_url():
    with pytest.raises(outbound.TargetRefused, match="credentials"):
        _post("https://user:pw@hooks.example.com/x", PRODUCTION)


def test_loopback_is_allowed_only_by_the_operator_setting(listener):
    with pytest.raises(outbound.TargetRefused):
        _post(listener.url(), NO_PRIVATE)
    assert listener.received == []
    assert _post(listener.url(), LOOPBACK_ALLOWED).status_code == 200
    assert len(listener.received) == 1


def test_it_refuses_a_name_that_resolves_to_a_private_address(listener):
    def resolve(host, port):
        return ["93.184.216.34", "127.0.0.1"]  # one bad answer among good ones is enough to refuse

    with pytest.raises(outbound.TargetRefused, match=r"resolves to 127\.0\.0\.1"):
        _post(f"http://hooks.example.test:{listener.port}/x", NO_PRIVATE, resolve=resolve)
    assert listener.received == []


def test_it_connects_to_the_address_it_checked_not_a_second_answer(listener):
    """DNS rebinding: the name is resolved once; the connection goes to that checked address,
    with the name in the Host header. Were the name resolved again by the HTTP client, a
    rebinding server could answer 127.0.0.1 the second time."""
    calls = []

    def rebinding(host, port):
        calls.append(host)
        return ["127.0.0.1"] if len(calls) == 1 else ["10.9.9.9"]

    response = _post(f"http://hooks.example.test:{listener.port}/x", LOOPBACK_ALLOWED, resolve=rebinding)

    assert response.status_code == 200
    assert calls == ["hooks.example.test"]  # once, and .test names exist in no real DNS
    assert listener.received[0].headers["host"] == f"hooks.example.test:{listener.port}"

    calls.clear()

    def first_public_then_loopback(host, port):
        calls.append(host)
        return ["192.0.2.1"] if len(calls) == 1 else ["127.0.0.1"]  # 192.0.2.1: TEST-NET, never answers

    policy = outbound.OutboundPolicy(allow_http=True, allowed_networks=(), timeout=0.5)
    with pytest.raises((outbound.DeliveryFailed, outbound.TargetRefused)):
        _post(f"http://hooks.example.test:{listener.port}/x", policy, resolve=first_public_then_loopback)
    assert len(listener.received) == 1  # the rebinding answer was never used
    assert len(calls) == 1


def test_it_does_not_follow_redirects(listener, second_listener):
    listener.default = Reply(307, b"", headers={"Location": second_listener.url()})

    response = _post(listener.url(), LOOPBACK_ALLOWED)

    assert response.status_code == 307
    assert second_listener.received == []


def test_it_reads_a_bounded_part_of_the_response(listener):
    listener.default = Reply(200, b"x" * (8 * 1024 * 1024))

    started = time.monotonic()
    response = _post(listener.url(), LOOPBACK_ALLOWED)

    assert len(response.excerpt) == outbound.EXCERPT_CHARS
    assert time.monotonic() - started < 5


def test_it_times_out_a_slow_receiver(listener):
    listener.default = Reply(200, b"late", delay=3)
    policy = outbound.OutboundPolicy(allow_http=True, allowed_networks=LOOPBACK_ALLOWED.allowed_networks, timeout=0.5)

    started = time.monotonic()
    with pytest.raises(outbound.DeliveryFailed, match="Timeout"):
        _post(listener.url(), policy)
    assert time.monotonic() - started < 2


def test_it_ignores_proxy_settings_from_the_environment(monkeypatch, listener):
    monkeypatch.setenv("HTTP_PROXY", "http://10.0.0.1:3128")
    monkeypatch.setenv("ALL_PROXY", "http://10.0.0.1:3128")

    assert _post(listener.url(), LOOPBACK_ALLOWED).status_code == 200


@pytest.mark.django_db
def test_a_refused_target_is_a_failed_attempt_in_the_log(settings, listener, alice, acme, alice_app):
    from portal.keys import services as keys

    webhooks.webhook_endpoint_create(organization=acme, url=listener.url(), event_types=["key.revoked"], actor=alice)
    settings.WEBHOOK_ALLOWED_NETWORKS = []  # the operator withdrew loopback after the endpoint was made
    keys.api_key_revoke(key=keys.api_key_issue(application=alice_app, actor=alice).key, actor=alice)

    webhooks.webhook_delivery_attempt(delivery_id=WebhookDelivery.objects.get().pk)

    delivery = WebhookDelivery.objects.get()
    assert delivery.last_error.startswith("Refused:")
    assert delivery.status == "pending"  # retried later, like any failure
    assert listener.received == []
