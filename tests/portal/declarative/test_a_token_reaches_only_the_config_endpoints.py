"""An automation token authenticates /api/v1/config/* and nothing else: elsewhere it is
an unknown bearer token."""

from __future__ import annotations

import pytest

from portal.declarative.services import automation_token_create


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "url"),
    [("get", "/api/v1/apis/"), ("get", "/api/v1/applications/"), ("post", "/api/v1/apis/")],
)
def test_the_token_is_refused_outside_the_config_endpoints(olivia, echo_api, token_client, method, url):
    _, secret = automation_token_create(name="ci-deploy", actor=olivia)
    client = token_client(secret)
    assert client.get("/api/v1/config/").status_code == 200  # the same token works where it belongs

    response = getattr(client, method)(url, {"slug": "sneaky", "name": "Sneaky"}, format="json")

    assert response.status_code in (401, 403), response.content
