"""The cache and websocket policies in the admin and on the version's page: a TTL of zero
is a form error (nothing saved or published), and developers read what the policies change.
(REST: tests/portal/api/test_it_refuses_bad_cache_and_websocket_policies.py.)"""

from __future__ import annotations

import json

import pytest

from portal.gateway_state.models import PublishOutbox
from tests.portal.test_admin_edits_methods_and_cors import _change

pytestmark = pytest.mark.django_db

def test_the_admin_refuses_a_zero_ttl(client, olivia, echo_api):
    client.force_login(olivia)
    v2 = echo_api.versions.get(label="v2")
    PublishOutbox.objects.all().delete()
    response = client.post(f"/admin/catalog/apiversion/{v2.pk}/change/",
                           _change(v2, policies=json.dumps({"cache": {"ttl_s": 0}})))
    assert response.status_code == 200
    assert "cache.ttl_s: 0 caches nothing" in response.content.decode()
    assert not PublishOutbox.objects.exists()


def test_the_version_page_tells_developers_about_websockets_and_caching(client, echo_api, olivia):
    from portal.catalog import services

    v2 = echo_api.versions.get(label="v2")
    assert "WebSockets" not in client.get("/apis/echo/v2/").content.decode()
    services.version_update(
        version=v2, actor=olivia,
        policies={"websocket": {"idle_timeout_s": 30}, "cache": {"ttl_s": 120, "shared": True}},
    )
    body = client.get("/apis/echo/v2/").content.decode()
    assert "<h2 id=\"ws-h\">WebSockets</h2>" in body
    assert "after 30 s without a message, after\n  3600 s in any case" in body
    assert "<h2 id=\"cache-h\">Caching</h2>" in body
    assert "for at most 120 s" in body
    assert "entries are shared by every application" in body
