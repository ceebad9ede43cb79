from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.django_db

OPENAPI = {
    "openapi": "3.0.3",
    "info": {"title": "Echo", "version": "2"},
    "paths": {"/echo": {"get": {"responses": {"200": {"description": "The request, echoed"}}}}},
}


@pytest.fixture
def documented(echo_api: Any, olivia: Any) -> Any:
    from portal.catalog import services

    v2 = echo_api.versions.get(label="v2")
    services.version_update(version=v2, actor=olivia, openapi=OPENAPI, changelog="* Added `/echo`")
    services.api_update(
        api=echo_api,
        actor=olivia,
        description="# Echo\n\nSays it back. <script>alert(1)</script> [x](javascript:alert(2)) <b onclick=x>b</b>",
    )
    return echo_api


def test_the_overview_is_sanitised_markdown(client: Any, documented: Any) -> None:
    body = client.get("/apis/echo/").content.decode()
    assert "<h1>Echo</h1>" in body
    assert "<script>alert(1)" not in body
    assert "javascript:" not in body
    assert "onclick" not in body


def test_versions_show_state_dates_and_successor(client: Any, documented: Any) -> None:
    body = client.get("/apis/echo/").content.decode()
    assert "badge-deprecated" in body
    assert 'Use <a href="/apis/echo/v2/">v2</a> instead.' in body
    assert "<code>/echo</code>" in body  # changelog rendered


def test_the_plan_table_compares_limits_prices_and_approval(client: Any, documented: Any) -> None:
    body = client.get("/apis/echo/").content.decode()
    for text in ("5 / s", "1,000 / day", "1,000,000 / month", "49.00 EUR", "0.50 EUR", "100,000", "Needs approval",
                 "Not billed"):
        assert text in body, text


def test_a_deprecated_version_page_points_to_its_successor(client: Any, documented: Any) -> None:
    body = client.get("/apis/echo/v1/").content.decode()
    assert "This version is deprecated" in body
    assert "http://127.0.0.1:8080/echo/v1" in body


def test_the_version_page_says_when_requests_are_validated(client: Any, documented: Any, olivia: Any) -> None:
    from portal.catalog import services

    assert "validates requests" not in client.get("/apis/echo/v2/").content.decode()
    v2 = documented.versions.get(label="v2")
    services.version_update(version=v2, actor=olivia, policies={"request_validation": "enforce"})
    body = client.get("/apis/echo/v2/").content.decode()
    assert "The gateway validates requests against this reference" in body
    assert "<code>400</code>" in body


def test_the_openapi_document_targets_the_gateway_with_a_key_header(client: Any, documented: Any) -> None:
    doc = client.get("/apis/echo/v2/openapi.json").json()
    assert doc["servers"] == [{"url": "http://127.0.0.1:8080/echo/v2", "description": "Tollway gateway"}]
    assert doc["components"]["securitySchemes"]["TollwayKey"] == {
        "type": "apiKey", "in": "header", "name": "X-API-Key",
        "description": "Your Tollway API key. Create one in your dashboard.",
    }
    assert doc["security"] == [{"TollwayKey": []}]
    assert client.get("/apis/echo/v1/openapi.json").status_code == 404


def test_the_reference_page_loads_swagger_locally_and_lists_only_my_keys(
    client: Any, alice: Any, alice_app: Any, charlie: Any, charlie_app: Any, documented: Any
) -> None:
    from portal.keys import services

    mine = services.api_key_issue(application=alice_app, label="mine", actor=alice).key
    theirs = services.api_key_issue(application=charlie_app, label="theirs", actor=charlie).key
    revoked = services.api_key_revoke(key=services.api_key_issue(application=alice_app, actor=alice).key, actor=alice)
    client.force_login(alice)
    body = client.get("/apis/echo/v2/reference/").content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in body
    assert "cdn" not in body.lower()
    assert mine.prefix in body
    assert theirs.prefix not in body
    assert revoked.prefix not in body
    assert "never stores keys in readable form" in body


def test_drafts_and_unknown_versions_are_404(client: Any, echo_api: Any, olivia: Any) -> None:
    from portal.catalog import services

    services.version_create(api=echo_api, label="v3", upstreams=[{"url": "http://127.0.0.1:8090"}], actor=olivia)
    for url in ["/apis/echo/v3/", "/apis/echo/v3/reference/", "/apis/echo/v3/openapi.json", "/apis/echo/v9/",
                "/apis/nope/"]:
        assert client.get(url).status_code == 404, url
