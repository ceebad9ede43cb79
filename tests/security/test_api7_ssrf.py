"""API7 Server-side request forgery. The portal makes no outbound request from anything a
developer can set, and the only URLs the gateway fetches, upstreams, are operator-only.

Every URL-shaped value a developer can set (application, key and organization fields,
their profile, an OAuth2 client's redirect, post-logout and allowed-origin URIs, a
client_id that is a URL, dynamic client registration's jwks_uri and logo_uri) points
at a listener that counts connections. It must count none."""

from __future__ import annotations

import ast
import base64
import hashlib
import json
import time
from pathlib import Path

import pytest

from gateway import contract
from tests.gateway.conftest import ConnectionCounter

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("empty_cache")]
ROOT = Path(__file__).resolve().parents[2]
# Modules that could fetch a URL. Not one may be imported by the portal or analytics.
HTTP_CLIENTS = {"httpx", "requests", "urllib3", "aiohttp", "urllib.request", "http.client", "pycurl"}


@pytest.fixture
def probe():
    counter = ConnectionCounter()
    yield counter
    counter.close()


def _json(client, method, path, body):
    return getattr(client, method)(path, json.dumps(body), content_type="application/json")


def test_nothing_a_developer_sets_is_fetched(client, alice, acme, alice_app, echo_api, probe, redis_client):
    url = f"{probe.url}/latest/meta-data/"
    client.force_login(alice)

    writes = [
        _json(client, "post", "/api/v1/applications/", {"organization": acme.pk, "name": url, "description": url}),
        _json(client, "patch", f"/api/v1/applications/{alice_app.pk}/", {"description": url}),
        _json(client, "post", f"/api/v1/applications/{alice_app.pk}/keys/", {"label": url[:80]}),
        _json(client, "post", "/api/v1/organizations/", {"name": url}),
        client.post("/accounts/profile/", {"first_name": url[:150], "last_name": url[:150]}),
        # django-oauth-toolkit's own client registration: redirect, logout and CORS URIs.
        client.post("/o/applications/register/", {
            "name": "probe", "client_id": "probe-client", "client_secret": "probe-secret-0123456789",
            "client_type": "public", "authorization_grant_type": "authorization-code",
            "redirect_uris": url, "post_logout_redirect_uris": url, "allowed_origins": probe.url.replace("http://", "https://"),
            "algorithm": "",
        }),
        # RFC 7591 dynamic registration with URIs a server might dereference.
        _json(client, "post", "/o/register/", {"redirect_uris": [url], "jwks_uri": url, "logo_uri": url,
                                              "client_uri": url, "policy_uri": url, "tos_uri": url}),
    ]
    verifier = "v" * 64
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    authorize = {"response_type": "code", "redirect_uri": url, "code_challenge": challenge,
                 "code_challenge_method": "S256", "scope": "read"}
    reads = [
        client.get("/o/authorize/", {**authorize, "client_id": "probe-client"}),
        # A client_id that is a URL: a Client ID Metadata Document server would fetch it.
        client.get("/o/authorize/", {**authorize, "client_id": url}),
        client.get("/dashboard/"),
        client.get(f"/applications/{alice_app.pk}/"),
        client.get("/accounts/profile/"),
        client.get("/o/applications/"),
    ]
    consent = client.post("/o/authorize/", {**authorize, "client_id": "probe-client", "allow": "Authorize"})
    from portal.gateway_state import publish

    publish.outbox_flush()
    time.sleep(0.3)  # a fetch started in the background would have connected by now

    assert [r.status_code for r in writes[:4]] == [201, 200, 201, 201], [r.content[:200] for r in writes[:4]]
    assert writes[4].status_code == 302  # profile saved
    # Only the client-credentials endpoints are mounted: no self-service client
    # registration, no consent page, no dynamic registration (portal/urls.py).
    assert writes[5].status_code == 404
    assert reads[0].status_code == 404
    assert reads[1].status_code == 404
    assert reads[5].status_code == 404
    assert consent.status_code == 404
    assert writes[6].status_code == 404
    assert all(r.status_code < 500 for r in [*writes, *reads, consent])
    assert probe.accepted == 0, "the portal connected to a URL a developer set"
    assert all(probe.url not in (v or b"").decode(errors="replace")
               for v in redis_client.hgetall(contract.ROUTES_KEY).values())


def test_a_developer_cannot_point_an_upstream_anywhere(client, alice, echo_api, probe, redis_client):
    from portal.catalog.models import UpstreamTarget

    client.force_login(alice)
    v2 = echo_api.versions.get(label="v2")
    upstreams = [{"url": probe.url, "weight": 1}]

    attempts = [
        _json(client, "post", f"/api/v1/apis/{echo_api.pk}/versions/", {"label": "v9", "upstreams": upstreams}),
        _json(client, "patch", f"/api/v1/apis/{echo_api.pk}/versions/{v2.pk}/", {"upstreams": upstreams}),
        client.post(f"/admin/catalog/apiversion/{v2.pk}/change/", {"upstreams-0-url": probe.url}),
    ]

    assert [r.status_code for r in attempts[:2]] == [403, 403]
    assert attempts[2].status_code == 302
    assert "/admin/login/" in attempts[2]["Location"]
    assert not UpstreamTarget.objects.filter(url__startswith=probe.url).exists()
    assert probe.accepted == 0


def test_the_oauth_server_fetches_nothing_it_could(settings):
    """django-oauth-toolkit's outbound fetchers are off: Client ID Metadata Documents,
    dynamic registration and remote token introspection."""
    provider = settings.OAUTH2_PROVIDER
    assert not provider.get("CIMD_ENABLED", False)
    assert not provider.get("DCR_ENABLED", False)
    assert not provider.get("RESOURCE_SERVER_INTROSPECTION_URL")
    assert not provider.get("OIDC_ENABLED", False)


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


# The one exception, faced: webhooks must POST to URLs developers set. Only this module
# imports a client, and it refuses every unsafe target (tests/portal/webhooks/
# test_it_refuses_unsafe_targets.py, and the webhook test below).
ALLOWED_HTTP_CLIENTS = {"portal/webhooks/outbound.py": ["httpx"]}


def test_a_webhook_url_that_points_inside_is_refused_and_never_fetched(settings, client, alice, acme, probe):
    settings.WEBHOOK_ALLOWED_NETWORKS = []  # production: no private network allowed
    settings.WEBHOOK_ALLOW_HTTP = False
    client.force_login(alice)
    from portal.webhooks import services

    for url in [f"{probe.url}/latest/meta-data/", "http://169.254.169.254/latest/meta-data/",
                probe.url.replace("127.0.0.1", "localhost").replace("http://", "https://")]:
        response = _json(client, "post", "/api/v1/webhook-endpoints/",
                         {"organization": acme.pk, "url": url, "events": ["key.revoked"]})
        assert response.status_code == 400, response.content
        assert "url" in response.json()["error"]["fields"]
    # Made while loopback was allowed, then the setting changed: the attempt is refused too.
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.WEBHOOK_ALLOW_HTTP = True
    endpoint = services.webhook_endpoint_create(organization=acme, url=probe.url, event_types=["key.revoked"],
                                                actor=alice).endpoint
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    delivery = services.webhook_test_send(endpoint=endpoint, actor=alice)
    services.webhook_delivery_attempt(delivery_id=delivery.pk)
    time.sleep(0.3)
    assert probe.accepted == 0


def test_the_portal_and_analytics_have_no_http_client():
    """So that adding one (as webhooks did) is a decision this test makes someone face."""
    offenders = {}
    for package in ("portal", "analytics"):
        for path in (ROOT / package).rglob("*.py"):
            found = {name for name in _imports(path) if name in HTTP_CLIENTS or name.split(".")[0] in HTTP_CLIENTS}
            if found:
                offenders[str(path.relative_to(ROOT))] = sorted(found)
    assert offenders == ALLOWED_HTTP_CLIENTS
