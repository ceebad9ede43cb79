"""API8 Security misconfiguration. With DEBUG off a failure shows a plain error page: no
traceback, no exception text, no URL list. The portal answers no cross-origin request
with CORS headers, and every page, error pages and the API's included, carries the CSP
and the other security headers. (`manage.py check --deploy` clean with production
settings: tests/portal/test_settings_fail_loudly.py::
test_it_passes_the_deploy_check_with_production_settings.)"""

from __future__ import annotations

import base64

import pytest
from django.test import Client, override_settings

from tests.security.boom_urls import FAILURE

pytestmark = pytest.mark.django_db
LEAK_MARKS = ("Traceback", 'File "', "RuntimeError", FAILURE, "SECRET_KEY", "settings.py", "Using the URLconf")
EVIL = "https://evil.example"


def _production_client() -> Client:
    # raise_request_exception=False: answer like the server would, instead of re-raising.
    return Client(raise_request_exception=False)


@pytest.mark.parametrize("path", ["/boom/", "/api/v1/boom/"])
def test_a_failure_shows_no_stack_trace_with_debug_off(path, caplog):
    with override_settings(DEBUG=False, ROOT_URLCONF="tests.security.boom_urls"):
        response = _production_client().get(path)

    assert response.status_code == 500
    body = response.content.decode()
    assert "Server error" in body or "server error" in body.lower()
    for mark in LEAK_MARKS:
        assert mark not in body, f"{mark!r} in the 500 page"
    assert FAILURE in caplog.text  # ...yet the operator's log has it


def test_the_same_failure_with_debug_on_would_show_one():
    """The check above can fail: with DEBUG on, Django's technical page shows everything."""
    with override_settings(DEBUG=True, ROOT_URLCONF="tests.security.boom_urls"):
        body = _production_client().get("/boom/").content.decode()

    assert "Traceback" in body
    assert FAILURE in body


@pytest.mark.parametrize("path", ["/no-such-page/", "/apis/no-such-api/", "/api/v1/no-such-thing/"])
def test_not_found_shows_no_url_list_with_debug_off(path):
    with override_settings(DEBUG=False):
        response = _production_client().get(path)

    assert response.status_code == 404
    body = response.content.decode()
    for mark in LEAK_MARKS:
        assert mark not in body, f"{mark!r} in the 404 page of {path}"


@pytest.mark.parametrize("path", ["/apis/echo/v9/", "/no-such-page/", "/apis/no-such-api/", "/api/v1/no-such-thing/"])
def test_not_found_shows_no_url_list_with_debug_on_either(path, echo_api, client, alice):
    """`make dev` runs with DEBUG on: a mistyped address still gets the portal's own 404
    page (a view's Http404 and an address no pattern matches alike), never Django's
    technical page with the site's URL list."""
    client.force_login(alice)
    with override_settings(DEBUG=True):
        response = client.get(path)

    assert response.status_code == 404
    body = response.content.decode()
    for mark in LEAK_MARKS:
        assert mark not in body, f"{mark!r} in the DEBUG 404 page of {path}"
    assert "admin/" not in body  # no pattern of the URLconf
    if not path.startswith("/api/"):  # the REST API answers its own JSON 404
        assert "Page not found" in body
        assert 'class="site-header"' in body  # the portal's look: its header, signed-in navigation included
        assert "/dashboard/" in body


def test_error_pages_carry_the_csp_and_security_headers():
    with override_settings(DEBUG=False, ROOT_URLCONF="tests.security.boom_urls"):
        client = _production_client()
        responses = [client.get("/boom/"), client.get("/no-such-page/"), client.get("/api/v1/nothing/")]

    for response in responses:
        policy = response["Content-Security-Policy"]
        assert "default-src 'self'" in policy
        assert "unsafe-inline" not in policy
        assert "frame-ancestors 'none'" in policy
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["X-Frame-Options"] == "DENY"


def test_the_rest_api_carries_the_security_headers(client, alice):
    client.force_login(alice)
    for path in ["/api/v1/apis/", "/api/schema/", "/api/docs/"]:
        response = client.get(path)
        assert response.status_code == 200, path
        assert "default-src 'self'" in response["Content-Security-Policy"], path
        assert "unsafe-inline" not in response["Content-Security-Policy"], path
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Referrer-Policy"] == "same-origin"


def _no_cors(response) -> None:
    allowing = [h for h in response.headers if h.lower().startswith("access-control-")]
    assert allowing == [], f"CORS headers {allowing} for a foreign origin on {response.request['PATH_INFO']}"


def test_the_portal_grants_no_cross_origin_access(client, alice, alice_app, echo_api):
    client.force_login(alice)
    for path in ["/api/v1/apis/", f"/api/v1/applications/{alice_app.pk}/", "/api/schema/", "/dashboard/"]:
        _no_cors(client.get(path, HTTP_ORIGIN=EVIL))
        _no_cors(client.options(path, HTTP_ORIGIN=EVIL, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
                                HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type"))


def test_the_token_endpoint_grants_no_cross_origin_access(client, alice, alice_app):
    from portal.keys import services as keys

    issued = keys.oauth_client_create(application=alice_app, actor=alice)
    basic = base64.b64encode(f"{issued.client_id}:{issued.client_secret}".encode()).decode()

    token = client.post("/o/token/", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=f"Basic {basic}",
                        HTTP_ORIGIN=EVIL)
    preflight = client.options("/o/token/", HTTP_ORIGIN=EVIL, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")

    assert token.status_code == 200
    _no_cors(token)
    _no_cors(preflight)
